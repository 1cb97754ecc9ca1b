"""Offline evaluation: mteb 2.x tasks on frozen public-text snapshots, an mteb
encoder wrapper for any embedder, baselines, and a table-producing runner.

Submodules are imported explicitly (``from text2token.evaluation.suite import
run_offline_suite``) so that importing the package does not pull in mteb.
"""
