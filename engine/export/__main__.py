"""`python -m engine.export` prints the README's table of export targets."""

from . import markdown

if __name__ == "__main__":
    print(markdown())
