"""The jobs behind `text2token <subcommand>`: each module has a function that takes parsed arguments
(`train`, `run_pipeline`, `evaluate`, `compare`) and a `main(argv)` that parses a command line for it.
`recipes/*.py` are thin wrappers over these `main`s, so `accelerate launch recipes/train.py` keeps working.
"""
