"""Training in a QThread: the engine's Reporter turned into Qt signals.

A `TrainWorker` (a QObject moved to its own QThread) runs the engine's Trainer. Every
engine event becomes a signal carrying plain data (dicts and strings, never tensors);
Qt queues them to the UI thread. `TrainController` owns the thread and allows one
training at a time.
"""

from __future__ import annotations

import copy
import logging
import traceback
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine import logs
from engine.config import RunConfig
from engine.errors import TuneDeskError
from engine.reporting import Reporter

log = logs.get("train")


class _SignalReporter(Reporter):
    def __init__(self, worker: "TrainWorker") -> None:
        super().__init__()
        self.worker = worker

    def event(self, kind: str, **data: Any) -> None:
        self.worker.forward(kind, data)


class TrainWorker(QObject):
    started = Signal(object)  # {run_dir, total_steps, step}
    progress = Signal(object)  # {step, total_steps, epoch, tokens_per_s, eta_s, elapsed_s}
    metrics = Signal(object)  # {step, loss?, eval_loss?, lr?, grad_norm?, mem_bytes?, ...}
    status = Signal(str)
    warning = Signal(str)
    oom_recovered = Signal(object)  # {text, step, micro_batch, grad_accum, ...}
    finished = Signal(object)  # {run_dir, status, summary}
    failed = Signal(str, str)  # message, details
    model_ready = Signal(object)  # engine.chat.ChatSession over the trained model, still in memory
    done = Signal()  # always last, after finished or failed

    def __init__(self, cfg: RunConfig | None = None, resume_dir: str | None = None) -> None:
        super().__init__()
        self.cfg = copy.deepcopy(cfg)  # the engine fills planned fields; the UI keeps its own
        self.resume_dir = resume_dir
        self.reporter = _SignalReporter(self)

    def forward(self, kind: str, data: dict[str, Any]) -> None:
        if kind in ("status", "warning", "oom_recovery", "started", "finished", "checkpoint"):
            log.log(logging.WARNING if kind in ("warning", "oom_recovery") else logging.INFO, "%s %s", kind,
                    data.get("text") or {k: v for k, v in data.items() if k != "summary"})
        if kind in ("status", "warning"):
            getattr(self, kind).emit(str(data.get("text", "")))
            return
        signal = {"started": self.started, "progress": self.progress, "metrics": self.metrics,
                  "finished": self.finished, "oom_recovery": self.oom_recovered}.get(kind)
        if signal is not None:
            signal.emit(dict(data))

    @Slot()
    def run(self) -> None:
        try:
            import gc
            import os

            import torch

            from engine.training.train import Trainer

            if not torch.cuda.is_available():
                # CPU training: leave one core to the window, or the UI thread waits on the
                # OS scheduler for 100+ ms at a time (measured on 2 cores).
                torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
            if self.resume_dir:
                trainer = Trainer.resume(self.resume_dir, self.reporter)
            else:
                trainer = Trainer(self.cfg, self.reporter)
                trainer.setup()
            # The model and libraries are loaded: exempt them from the cyclic garbage
            # collector, whose full passes over millions of objects stall every thread.
            gc.freeze()
            trainer.fit()
            from engine.chat import ChatSession

            # Hand the trained model over for comparing: no second load from disk.
            self.model_ready.emit(ChatSession.attach(trainer.run.path, trainer.model, trainer.tokenizer,
                                                     system_prompt=trainer.cfg.data.system_prompt))
        except TuneDeskError as e:
            log.warning("training failed: %s", e)
            self.failed.emit(str(e), traceback.format_exc())
        except Exception as e:  # a bug or a library error: plain line first, trace in details
            log.exception("training crashed")
            self.failed.emit(f"Training stopped on an unexpected error: {type(e).__name__}: {e}", traceback.format_exc())
        finally:
            self.done.emit()

    def stop(self) -> None:
        """Thread-safe: the engine saves a checkpoint and stops after the current step."""
        self.reporter.request_stop()


class TrainController(QObject):
    """Starts and stops trainings; re-emits the worker's signals; one at a time."""

    started = Signal(object)
    progress = Signal(object)
    metrics = Signal(object)
    status = Signal(str)
    warning = Signal(str)
    oom_recovered = Signal(object)
    finished = Signal(object)
    failed = Signal(str, str)
    model_ready = Signal(object)
    starting = Signal()  # before a training loads anything: time to free what the last one left
    done = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread: QThread | None = None
        self.worker: TrainWorker | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None

    def start(self, cfg: RunConfig | None = None, *, resume_dir: str | None = None) -> bool:
        if self.running:
            return False
        self.starting.emit()
        self.thread, self.worker = QThread(), TrainWorker(cfg, resume_dir)
        self.worker.moveToThread(self.thread)
        for name in ("started", "progress", "metrics", "status", "warning", "oom_recovered", "finished", "failed", "model_ready"):
            getattr(self.worker, name).connect(getattr(self, name))
        self.thread.started.connect(self.worker.run)
        self.worker.done.connect(self.thread.quit)
        self.thread.finished.connect(self._cleanup)
        self.thread.start()
        return True

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def wait(self, ms: int = 60000) -> bool:
        return self.thread.wait(ms) if self.thread is not None else True

    def _cleanup(self) -> None:
        thread, worker = self.thread, self.worker
        self.thread = self.worker = None
        if worker is not None:
            worker.deleteLater()
        if thread is not None:
            thread.deleteLater()
        self.done.emit()
