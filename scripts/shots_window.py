"""The offscreen window the screenshot scripts drive (scripts/screenshots.py,
scripts/screenshots_methods.py): 1280x800, a fresh settings folder, the engine loading;
`wait` pumps Qt's events until a condition holds, `shot` shows a page and saves it."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def open_window(out: Path, runs_dir: str | None = None):
    """(app, window, wait, shot) with the window shown and its engine loading."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TUNEDESK_HOME", tempfile.mkdtemp(prefix="tunedesk-shots-"))
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from gui import theme
    from gui.main_window import MainWindow

    theme.apply(app)
    w = MainWindow()
    w.resize(1280, 800)
    w.show()
    if runs_dir:
        w.session.cfg.out_dir = runs_dir
    w.session.load_engine()

    def wait(cond, what: str, timeout: float = 1800) -> None:
        end = time.monotonic() + timeout
        while not cond():
            app.processEvents()
            time.sleep(0.02)
            if time.monotonic() > end:
                raise SystemExit(f"timed out waiting for {what}")

    def shot(page: str, name: str) -> None:
        w.show_page(page)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)
        out.mkdir(parents=True, exist_ok=True)
        w.grab().save(str(out / f"{name}.png"))
        print("wrote", out / f"{name}.png")

    return app, w, wait, shot
