"""Start the desktop app: the window shows first, the engine (torch) loads behind it."""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


def run_app(argv: list[str] | None = None) -> int:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("TuneDesk")
    app.setOrganizationName("TuneDesk")
    from engine import logs

    from . import theme
    from .main_window import MainWindow

    logs.setup()
    logs.get("gui").info("TuneDesk started")
    theme.apply(app)
    app.setWindowIcon(icon())
    window = MainWindow()
    window.show()
    QTimer.singleShot(0, window.session.load_engine)
    return app.exec()


def icon():
    from pathlib import Path

    from PySide6.QtGui import QIcon

    return QIcon(str(Path(__file__).resolve().parents[1] / "resources" / "icons" / "tunedesk.svg"))


if __name__ == "__main__":
    sys.exit(run_app())
