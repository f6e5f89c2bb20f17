"""Entry script for the frozen (PyInstaller) app: the same `main` as the console script."""

import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
