"""The `tunedesk` subcommands that outgrew engine/cli.py, one module per group of commands
(engine/cli.py keeps the top-level parser and the dispatch), and the RUN argument every
command on a run shares."""

from __future__ import annotations

import argparse

RUNS_DIR_HELP = "the folder that holds the runs (default: the user data folder's runs, where train puts them)"


def run_argument(p: argparse.ArgumentParser, dest: str) -> None:
    p.add_argument(dest, metavar="RUN", help="the run: its name as `tunedesk runs` lists it (or any part of the name "
                                            "that only one run has, or 'last'), or its folder")
    p.add_argument("--runs-dir", default=None, metavar="DIR", help=RUNS_DIR_HELP + "; where RUN names are looked up")
