"""`tunedesk`: with no arguments the desktop window, `--self-test` the installation check,
anything else the command line (engine/cli.py).

This entry sits above both gui/ and engine/: the window is a client of the engine, and
the engine never imports the window (pyproject.toml's import-linter contracts).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--self-test"]:
        from gui.self_test import run_self_test  # Qt only when asked for

        return run_self_test()
    if args == ["--window-probe"]:  # doctor's window check, in the frozen app (engine/doctor.py)
        from gui.window_probe import main as probe

        return probe()
    if not args:
        try:
            from gui.app import run_app
        except ImportError as e:  # a build without the window: the command line still works
            from engine.cli import build_parser

            build_parser().print_help()
            print(f"\nThe desktop window cannot start here ({e}); use the subcommands above.", file=sys.stderr)
            return 0
        return run_app()
    from engine.cli import main as cli

    return cli(args)


if __name__ == "__main__":
    sys.exit(main())
