"""What an export target is. Each target lives in its own module of engine/export and is
registered once in TARGETS (engine/export/__init__.py), from which the command line's
--format choices and help, the window's menu and the README's table are made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..runs import RunDir


@dataclass(frozen=True)
class Options:
    dtype: str = "bf16"
    """Weights of a merged model: bf16, fp16 or fp32."""
    quant: str = "q8_0"
    """GGUF weights: f16, q8_0, or all (one file each)."""
    status: Callable[[str], None] = lambda _: None
    adapter: str = "best"
    """Which adapter: the run's best evaluation's, or the last step's (engine/runs.py)."""


@dataclass(frozen=True)
class Target:
    name: str
    """--format's value; the folder the window writes is `<run name>-<name>`."""
    label: str
    """The window's menu entry."""
    help: str
    """What it writes, in a sentence: --format's help and the README's table."""
    write: Callable[[RunDir, Path, Options], None]
    """Writes the export into a new, empty folder (export() makes it appear atomically)."""
