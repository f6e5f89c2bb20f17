"""`python -m engine.data.formats` prints the README's table of data formats."""

from . import markdown

if __name__ == "__main__":
    print(markdown())
