"""`accelerate launch recipes/train.py ...` is `text2token train ...`; the code is `text2token.commands.train`."""

from text2token.commands.train import main

if __name__ == "__main__":
    main()
