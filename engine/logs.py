"""The log file: everything the engine and the window report, kept on disk for when
something goes wrong (Help → Open log folder). Rotates at 2 MB, keeps 5 files."""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

from . import paths

LOGGER = "tunedesk"


def log_dir() -> Path:
    folder = paths.data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def setup() -> Path:
    """Attach the rotating file handler once; returns the log file's path."""
    path = log_dir() / "tunedesk.log"
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h, RotatingFileHandler) and Path(h.baseFilename) == path for h in logger.handlers):
        handler = RotatingFileHandler(path, maxBytes=2 * 1024**2, backupCount=5, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return path


def get(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER}.{name}" if name else LOGGER)
