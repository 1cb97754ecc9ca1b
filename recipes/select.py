"""`accelerate launch recipes/select.py ...` is `text2token select ...`; the code is `text2token.commands.select`."""

from text2token.commands.select import main

if __name__ == "__main__":
    main()
