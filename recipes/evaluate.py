"""`accelerate launch recipes/evaluate.py ...` is `text2token evaluate ...`; the code is `text2token.commands.evaluate`."""

from text2token.commands.evaluate import main

if __name__ == "__main__":
    main()
