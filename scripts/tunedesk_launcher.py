"""Entry script for the frozen (PyInstaller) app: the same `main` as the console script,
so `TuneDesk/tunedesk --self-test`, the subcommands and the window (no arguments) all
work from the built folder."""

import multiprocessing
import sys

from tunedesk import main

if __name__ == "__main__":
    # A frozen app re-runs its own exe for any child process (torch / tokenizers may spawn
    # one); freeze_support makes that child do its job instead of starting the app again.
    multiprocessing.freeze_support()
    sys.exit(main())
