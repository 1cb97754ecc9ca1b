"""`accelerate launch recipes/compare.py ...` is `text2token compare ...`; the code is `text2token.commands.compare`."""

from text2token.commands.compare import main

if __name__ == "__main__":
    main()
