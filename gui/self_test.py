"""`tunedesk --self-test`: does this installation (a checkout or the frozen app) work?

One line per check, in order: the window, the engine, the hardware probe, a 2-step
training of the demo model on the bundled pirate sample, one answer from that run.
Exit code 0 when every check passed. Qt is imported inside the window check only, so
a broken Qt still lets the engine checks run and report.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

SAMPLE = "pirate_trivia.jsonl"
PROMPT = "What is the capital of Australia?"


def _window(state: dict[str, Any]) -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before the QApplication
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    from . import theme
    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(["tunedesk"])
    theme.apply(app)
    window = MainWindow()
    window.show()
    app.processEvents()
    title = window.windowTitle()
    # hide + delete rather than close(): closeEvent saves the window geometry into the
    # user's settings, which would end the first-run defaults of a fresh install.
    window.hide()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return f"'{title}' window on the {app.platformName()} platform"


def _engine(state: dict[str, Any]) -> str:
    import torch
    import transformers

    import engine
    from engine import chat, cli  # noqa: F401 - importing them is the check
    from engine.training import train

    cli.quiet_libraries()
    return f"engine {engine.__version__}, torch {torch.__version__}, transformers {transformers.__version__}"


def _hardware(state: dict[str, Any]) -> str:
    from engine.hardware import probe

    info = probe(tempfile.gettempdir())
    gpu = f"GPU {info.gpu.name}" if info.gpu else "no NVIDIA GPU (CPU training)"
    return f"{gpu}, {info.cpu_cores} CPU cores, {info.ram_total_bytes / 1024**3:.1f} GiB RAM"


def _train(state: dict[str, Any]) -> str:
    from engine import cli, paths
    from engine.training.train import train

    # The config exactly as `tunedesk train SAMPLE --max-steps 2 --out TMP` builds it.
    args = cli.build_parser().parse_args(
        ["train", str(paths.samples_dir() / SAMPLE), "--max-steps", "2", "--out", state["tmp"], "--name", "self-test"]
    )
    run_dir, summary = train(cli.train_config(args))
    if summary["status"] != "finished" or summary["steps"] != 2:
        raise RuntimeError(f"training ended {summary['status']} after {summary['steps']} steps")
    state["run"] = run_dir
    return f"demo model, 2 steps on {SAMPLE}, loss {summary['train_loss']:.3f}, {summary['device']}"


def _chat(state: dict[str, Any]) -> str:
    from engine.chat import ChatSession, GenerationSettings

    if "run" not in state:
        raise RuntimeError("no tuned run to answer with (the training check failed)")
    text = ChatSession(state["run"]).answer(PROMPT, settings=GenerationSettings(max_new_tokens=24))
    if not text:
        raise RuntimeError("the tuned model gave an empty answer")
    return f"{PROMPT!r} -> {text[:80]!r}"


CHECKS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("window", _window), ("engine", _engine), ("hardware", _hardware), ("train", _train), ("chat", _chat),
]


def run_self_test(out: Callable[[str], None] = print) -> int:
    failed = 0
    # The run is thrown away; the converted demo model stays in the user cache.
    # ignore_cleanup_errors: on Windows a file still memory-mapped cannot be deleted yet.
    with tempfile.TemporaryDirectory(prefix="tunedesk-self-test-", ignore_cleanup_errors=True) as tmp:
        state: dict[str, Any] = {"tmp": tmp}
        for name, check in CHECKS:
            t0 = time.perf_counter()
            try:
                detail, ok = check(state), True
            except Exception as e:  # a self-test reports every failure as one line
                detail, ok = f"{type(e).__name__}: {e}", False
            failed += not ok
            out(f"{'OK  ' if ok else 'FAIL'} {name:<8} {detail} ({time.perf_counter() - t0:.1f} s)")
    out(f"self-test {'passed' if not failed else f'FAILED ({failed} of {len(CHECKS)} checks)'}")
    return 1 if failed else 0
