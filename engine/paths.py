"""Where TuneDesk keeps things on disk.

`TUNEDESK_HOME` relocates everything (tests, portable installs); otherwise the OS
conventions from platformdirs apply.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir


def _home() -> Path | None:
    env = os.environ.get("TUNEDESK_HOME")
    return Path(env).expanduser() if env else None


def cache_dir() -> Path:
    """Converted models and tokenized data: safe to delete, rebuilt on demand."""
    home = _home()
    path = home / "cache" if home else Path(user_cache_dir("tunedesk", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Runs and logs: the user's work, never deleted by us."""
    home = _home()
    path = home / "data" if home else Path(user_data_dir("tunedesk", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_runs_dir() -> Path:
    return data_dir() / "runs"


def resources_dir() -> Path:
    """The bundled resources: beside the packages in a checkout, in _MEIPASS when frozen."""
    frozen = getattr(sys, "_MEIPASS", None)
    base = Path(frozen) if frozen else Path(__file__).resolve().parent.parent
    return base / "resources"


def samples_dir() -> Path:
    return resources_dir() / "samples"
