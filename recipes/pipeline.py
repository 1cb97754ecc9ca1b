"""`accelerate launch recipes/pipeline.py ...` is `text2token pipeline ...`; the code is `text2token.commands.pipeline`."""

from text2token.commands.pipeline import main

if __name__ == "__main__":
    main()
