"""Export a run: the PEFT adapter (with a README); the base model with the adapter merged
in, as a plain safetensors folder that any transformers-based tool loads; that model as
GGUF (llama.cpp, LM Studio); or GGUF + Modelfile for Ollama.

One module per target, registered once in TARGETS: the command line's --format choices
and help, the window's menu (LABELS) and the README's table (`python -m engine.export`
prints it; tests/test_registries.py checks the README against it) all come from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..atomic import atomic_dir
from ..errors import TuneDeskError
from ..runs import RunDir
from . import adapter, gguf, merged, ollama
from .target import Options, Target

TARGETS: list[Target] = [
    adapter.TARGET,
    merged.TARGET,
    gguf.TARGET,
    ollama.TARGET,
]
BY_NAME = {t.name: t for t in TARGETS}
LABELS = {t.name: t.label for t in TARGETS}


def export(run_dir: str | Path, fmt: str, out: str | Path, *, dtype: str = "bf16", quant: str = "q8_0",
           status: Callable[[str], None] = lambda _: None, adapter: str = "best") -> Path:
    """Write target `fmt` of the run into `out`, a new or empty folder that appears whole."""
    run = RunDir.open(run_dir)
    if fmt not in BY_NAME:
        raise TuneDeskError(f"unknown export format '{fmt}' (one of {', '.join(BY_NAME)})")
    run.adapter_for(adapter)  # a plain message for an unknown choice, before anything is written
    if not run.has_adapter():
        raise TuneDeskError(f"{run.path}: this run has no saved adapter to export")
    folder = Path(out).expanduser()
    if folder.exists() and any(folder.iterdir()):
        raise TuneDeskError(f"{folder}: the folder exists and is not empty; choose a new one")
    with atomic_dir(folder) as tmp:
        BY_NAME[fmt].write(run, tmp, Options(dtype=dtype, quant=quant, status=status, adapter=adapter))
    return folder


def markdown() -> str:
    """The README's table of export targets."""
    rows = ["| `--format` | in the window | what it writes |", "| --- | --- | --- |"]
    return "\n".join(rows + [f"| `{t.name}` | {t.label} | {t.help} |" for t in TARGETS])
