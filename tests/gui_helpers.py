"""Helpers for the GUI tests: an isolated settings file and a window with the demo loaded."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings


@pytest.fixture
def gui_settings(tmp_path, monkeypatch):
    """Each test gets its own settings file (QSettings would otherwise carry over)."""
    from gui import settings

    path = tmp_path / "gui.ini"
    monkeypatch.setattr(settings, "settings", lambda: QSettings(str(path), QSettings.Format.IniFormat))
    return path


@pytest.fixture
def window(qtbot, gui_settings, tmp_path, demo_folder):
    """The real main window, engine and demo model loaded, runs going to tmp_path."""
    from gui import theme
    from gui.main_window import MainWindow

    theme.apply(qtbot_app())
    w = MainWindow()
    w.session.cfg.out_dir = str(tmp_path / "runs")
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    with qtbot.waitSignal(w.session.model_changed, timeout=120_000):
        w.session.load_engine()
    yield w
    if w.controller.running:
        w.controller.stop()
        w.controller.wait(120_000)


def qtbot_app():
    from PySide6.QtWidgets import QApplication

    return QApplication.instance()


def load_sample(qtbot, w, name: str = "pirate_trivia.jsonl") -> None:
    with qtbot.waitSignal(w.session.data_changed, timeout=60_000):
        w.data_page.sample_buttons[name].click()
