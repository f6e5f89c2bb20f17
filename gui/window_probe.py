"""Can the window start here? `tunedesk doctor` runs this module in a child process
(`python -m gui.window_probe`, or `tunedesk --window-probe` in the frozen app): when Qt
cannot load its platform plugin it aborts the whole process, which must not be doctor's.

Prints `plugins <folder>` before trying (so the parent can look at the plugin files even
after an abort), then `platform <name>` once a QGuiApplication stands, with the platform
the user's environment selects (QT_QPA_PLATFORM, or Qt's own choice)."""

from __future__ import annotations

import sys


def main() -> int:
    from PySide6.QtCore import QLibraryInfo

    print("plugins", QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath), flush=True)
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication(["tunedesk"])
    print("platform", app.platformName(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
