"""Training as a long background job (gui.tasks): the engine's Reporter turned into Qt signals.

`train` runs the engine's Trainer on a thread of the long-job pool. Every engine event
is reported through the job as plain data (dicts and strings, never tensors), and
`TrainController` turns it into its signal on the UI thread. The signals are declared
here once; the controller allows one training at a time.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine import logs
from engine.config import RunConfig
from engine.reporting import Reporter

from .tasks import Job, Tasks

log = logs.get("train")
KEY = "train"
SIGNALS = {"status": "status", "warning": "warning", "started": "started", "progress": "progress", "metrics": "metrics",
           "finished": "finished", "oom_recovery": "oom_recovered", "generations": "generations"}  # engine event -> signal


class _JobReporter(Reporter):
    """The engine's events go to the job; a stop asked of the job stops the training."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def event(self, kind: str, **data: Any) -> None:
        if kind in ("status", "warning", "oom_recovery", "started", "finished", "checkpoint"):
            log.log(logging.WARNING if kind in ("warning", "oom_recovery") else logging.INFO, "%s %s", kind,
                    data.get("text") or {k: v for k, v in data.items() if k != "summary"})
        if kind in SIGNALS:
            self.job.report((kind, dict(data)))

    def stop_requested(self) -> bool:
        return self.job.stopped()


def train(job: Job, cfg: RunConfig | None, resume_dir: str | None):
    """The long job: set up (or resume), fit, and hand the trained model over for comparing."""
    import gc
    import os

    import torch

    if cfg is not None and cfg.train.gpus > 1:
        return train_spread(job, cfg)

    from engine.chat import ChatSession
    from engine.training.train import Trainer

    if not torch.cuda.is_available():
        # CPU training: leave one core to the window, or the UI thread waits on the
        # OS scheduler for 100+ ms at a time (measured on 2 cores).
        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    reporter = _JobReporter(job)
    if resume_dir:
        trainer = Trainer.resume(resume_dir, reporter)
    else:
        trainer = Trainer(cfg, reporter)
        trainer.setup()
    # The model and libraries are loaded: exempt them from the cyclic garbage
    # collector, whose full passes over millions of objects stall every thread.
    gc.freeze()
    trainer.fit()
    # The trained model, still in memory: comparing needs no second load from disk.
    return ChatSession.attach(trainer.run.path, trainer.model, trainer.tokenizer, system_prompt=trainer.cfg.data.system_prompt)


def train_spread(job: Job, cfg: RunConfig) -> None:
    """Several GPUs: the same run as `tunedesk train --request … --gpus N` (one process per
    GPU under torchrun, engine/training/distributed.py), its rank 0's events read back
    line by line and reported as a single-process run's are. Stop asks every rank through
    the run folder's STOP file. The trained model is not in this process: Compare loads it."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from engine.errors import TuneDeskError
    from engine.runs import RunDir

    with tempfile.TemporaryDirectory(prefix="tunedesk-") as tmp:
        request, errors = Path(tmp) / "request.json", Path(tmp) / "stderr.txt"
        request.write_text(json.dumps(cfg.to_dict()), encoding="utf-8")
        with errors.open("w", encoding="utf-8") as err:
            child = subprocess.Popen([sys.executable, "-m", "engine.cli", "train", "--request", str(request), "--json-events"],
                                     stdout=subprocess.PIPE, stderr=err, text=True, encoding="utf-8")
            run: RunDir | None = None
            ended = False  # rank 0 reported a clean end: the run folder is whole whatever the exit code says
            for line in child.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # not an event (a library's print)
                kind = event.pop("event", "")
                if kind == "started":
                    run = RunDir(event["run_dir"])
                ended = ended or (kind == "finished" and event.get("status") != "failed")
                if kind in SIGNALS:
                    job.report((kind, event))
                if job.stopped() and run is not None and not run.stop_requested():
                    run.request_stop()
            code = child.wait()
        if code != 0:
            lines = [x for x in errors.read_text(encoding="utf-8").splitlines() if x.strip()]
            if ended:  # a process failed while shutting down, after the run was written: nothing is lost
                log.warning("a process of a finished %d-GPU run exited with %d:\n%s", cfg.train.gpus, code,
                            "\n".join(lines[-20:]))
                return None
            said = next((x.split("error: ", 1)[1] for x in reversed(lines) if "tunedesk train: error: " in x), None)
            log.error("the processes of a %d-GPU run ended with %d:\n%s", cfg.train.gpus, code, "\n".join(lines[-40:]))
            raise TuneDeskError(said or f"the {cfg.train.gpus} training processes ended with an error (exit {code}); "
                                        "the details are in the log (Help → Open log folder)")


class TrainController(QObject):
    """Starts and stops trainings, one at a time; the engine's events as signals."""

    started = Signal(object)  # {run_dir, total_steps, step}
    progress = Signal(object)  # {step, total_steps, epoch, tokens_per_s, eta_s, elapsed_s}
    metrics = Signal(object)  # {step, loss?, eval_loss?, lr?, grad_norm?, mem_bytes?, ...}
    status = Signal(str)
    warning = Signal(str)
    oom_recovered = Signal(object)  # {text, step, micro_batch, grad_accum, ...}
    finished = Signal(object)  # {run_dir, status, summary}
    generations = Signal(object)  # GRPO: {step, split, samples} (engine/reporting.py)
    failed = Signal(str, str)  # message, details
    model_ready = Signal(object)  # engine.chat.ChatSession over the trained model, still in memory
    starting = Signal()  # before a training loads anything: time to free what the last one left
    done = Signal()  # always last, after finished or failed

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tasks = Tasks(self)
        self.tasks.busy_changed.connect(self._busy_changed)

    @property
    def running(self) -> bool:
        return self.tasks.busy(KEY)

    def start(self, cfg: RunConfig | None = None, *, resume_dir: str | None = None) -> bool:
        if self.running:
            return False
        self.starting.emit()
        cfg = copy.deepcopy(cfg)  # the engine fills planned fields; the UI keeps its own
        self.tasks.run(KEY, lambda job: train(job, cfg, resume_dir), long=True,
                       unexpected="Training stopped on an unexpected error", on_progress=self._event,
                       on_done=self._trained, on_failed=self.failed.emit)
        return True

    def _trained(self, chat) -> None:
        if chat is not None:  # a run over several GPUs trained in other processes: nothing to hand over
            self.model_ready.emit(chat)

    def _event(self, event: tuple[str, dict[str, Any]]) -> None:
        kind, data = event
        getattr(self, SIGNALS[kind]).emit(str(data.get("text", "")) if kind in ("status", "warning") else data)

    def _busy_changed(self, _key: str, busy: bool) -> None:
        if not busy:
            self.done.emit()

    def stop(self) -> None:
        """The engine saves a checkpoint and stops after the current step."""
        self.tasks.stop(KEY)

    def wait(self, ms: int = 60000) -> bool:
        return self.tasks.wait(KEY, ms)
