"""Settings remembered between sessions (QSettings in an INI file in the user data
folder, so TUNEDESK_HOME moves them with everything else)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from engine import paths


def settings() -> QSettings:
    return QSettings(str(paths.data_dir() / "tunedesk-gui.ini"), QSettings.Format.IniFormat)


def get(key: str, default: str = "") -> str:
    value = settings().value(key, default)
    return value if isinstance(value, str) else default


def put(key: str, value) -> None:
    s = settings()
    s.setValue(key, value)
    s.sync()
