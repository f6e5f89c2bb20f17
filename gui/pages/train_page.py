"""Train: start / stop / resume, live plots, progress, and the engine's messages in plain words.

About 340 lines: one page's widgets and the handlers of the training's events (status,
warnings, metrics, progress, recoveries, the end), which share the page's state; the
background work is gui/worker.py's and the numbers are the engine's."""

from __future__ import annotations

import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QWidget,
)

from engine import paths
from engine.runs import RunDir

from .. import settings
from ..generations_view import GenerationsView
from ..method_plots import MethodPlots
from ..plots import plot_widget as _plot
from ..plots import smooth
from ..session import Session
from ..widgets import Banner, duration, page_layout, show_error
from ..worker import TrainController

SMOOTHING = 0.9  # exponential moving average of the training loss
REDRAW_MS = 200  # plots and labels are redrawn at most this often, however fast steps come


def _change(values: list[float]) -> list[float]:
    """Each loss as a percent change from the first (negative: better)."""
    return [100 * (v - values[0]) / values[0] for v in values] if values and values[0] else []


def guard_words(s: dict) -> str:
    """The end of a run in a sentence: which adapter it keeps, replay, and the meter's verdict."""
    parts = []
    if s.get("best_step") is not None:
        parts.append(f"The adapter is step {s['best_step']}'s, the best validation loss ({s['best_eval_loss']:.3f})"
                     + (f"; stopped early after {s['patience']} evaluations without a better one" if s.get("stopped_early")
                        else ""))
    if s.get("replay_rows"):
        parts.append(f"replay: {s['replay_rows']} of the base model's own answers ({s['replay_share']:.0%} of the mix)")
    from engine.eval.probe import headline

    if headline(s):
        parts.append(headline(s))
    return ("; ".join(parts) + ".") if parts else "The adapter is in the run folder."


class TrainPage(QWidget):
    training_finished = Signal(object)  # {run_dir, status, summary}

    def __init__(self, session: Session, controller: TrainController) -> None:
        super().__init__()
        self.session, self.controller = session, controller
        self.run_dir: str | None = None
        self.last_status: str | None = None
        root = page_layout(self, "Train", "Stop keeps a checkpoint; Resume continues from it. Runs are kept as folders.")

        top = QHBoxLayout()
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primary")
        self.start_button.setToolTip("Train with the current data, model and plan (Ctrl+Enter)")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Finish the current step, save a checkpoint and the adapter, stop (Esc)")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the stopped run from its last checkpoint")
        self.resume_button.clicked.connect(lambda: self.resume())
        self.open_button = QPushButton("Open run folder")
        self.open_button.clicked.connect(lambda: self.run_dir and QDesktopServices.openUrl(QUrl.fromLocalFile(self.run_dir)))
        for b in (self.start_button, self.stop_button, self.resume_button, self.open_button):
            top.addWidget(b)
        top.addStretch(1)
        self.out_label = QLabel()
        self.out_label.setObjectName("hint")
        change = QPushButton("Change…")
        change.setToolTip("Folder where run folders are created")
        change.clicked.connect(self._choose_out_dir)
        top.addWidget(self.out_label)
        top.addWidget(change)
        root.addLayout(top)

        self.progress = QProgressBar()
        self.progress.setFormat("Not started")
        self.progress.setValue(0)
        root.addWidget(self.progress)
        self.stats = QLabel("")
        root.addWidget(self.stats)
        self.banner = Banner()
        root.addWidget(self.banner)

        self.grid = grid = QGridLayout()
        self.loss_plot = _plot("Loss", "loss")
        self.loss_plot.addLegend(offset=(-10, 10))
        self.raw_curve = self.loss_plot.plot([], [], pen=pg.mkPen((150, 150, 150, 120)), name="training (raw)")
        self.smooth_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#3b82f6", width=2), name="training (smoothed)")
        self.eval_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#f59e0b", width=2), symbol="o", symbolSize=6,
                                              symbolBrush="#f59e0b", name="validation")
        # The forgetting meter beside the task: both losses as a change from step 0, so "the
        # task got better while general ability got worse" reads off one plot.
        self.meter_plot = _plot("Task vs general ability", "% change from the start")
        self.meter_plot.addLegend(offset=(-10, -40))  # bottom right: the curves start at 0, the top
        self.meter_plot.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen((150, 150, 150), style=Qt.PenStyle.DashLine)))
        self.task_curve = self.meter_plot.plot([], [], pen=pg.mkPen("#f59e0b", width=2), symbol="o", symbolSize=5,
                                               symbolBrush="#f59e0b", name="task (validation loss)")
        self.general_curve = self.meter_plot.plot([], [], pen=pg.mkPen("#a855f7", width=2), symbol="t", symbolSize=6,
                                                  symbolBrush="#a855f7", name="general (forgetting meter)")
        self.lr_plot = _plot("Learning rate", "lr")
        self.lr_curve = self.lr_plot.plot([], [], pen=pg.mkPen("#22c55e", width=2))
        self.mem_plot = _plot("Memory", "GiB")
        self.mem_curve = self.mem_plot.plot([], [], pen=pg.mkPen("#6366f1", width=2))
        self.util_plot = _plot("GPU utilization", "%")
        self.util_plot.setYRange(0, 100)
        self.util_curve = self.util_plot.plot([], [], pen=pg.mkPen("#ef4444", width=2))
        grid.addWidget(self.loss_plot, 0, 0)
        grid.addWidget(self.meter_plot, 0, 1)
        grid.addWidget(self.lr_plot, 1, 0)
        grid.addWidget(self.mem_plot, 1, 1)
        grid.addWidget(self.util_plot, 1, 2)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setPlaceholderText("What the engine does appears here.")
        grid.addWidget(self.log, 0, 2)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(2, 1)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)
        # A method's own metrics (DPO / ORPO's reward margin and preference accuracy, GRPO's
        # rewards): a row of plots of their own, shown once the run reports any.
        self.method_plots = MethodPlots()
        grid.addWidget(self.method_plots, 2, 0, 1, 3)
        grid.setRowStretch(2, 2)
        root.addLayout(grid, 1)
        self.generations = GenerationsView()  # GRPO's sampled answers; hidden for other methods
        root.addWidget(self.generations)

        self.series: dict[str, list] = {}
        self._reset_series()
        self._latest_progress: dict | None = None
        self._dirty = False
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_MS)
        self.redraw_timer.timeout.connect(self._redraw)
        self.util_timer = QTimer(self)
        self.util_timer.setInterval(2000)
        self.util_timer.timeout.connect(session.refresh_hardware)
        session.hardware_changed.connect(self._sample_util)

        c = controller
        c.started.connect(self._on_started)
        c.progress.connect(self._on_progress)
        c.metrics.connect(self._on_metrics)
        c.status.connect(lambda t: self._log(t))
        c.warning.connect(lambda t: self._log("⚠ " + t))
        c.oom_recovered.connect(self._on_oom)
        c.finished.connect(self._on_finished)
        c.failed.connect(self._on_failed)
        c.done.connect(self._on_done)
        c.generations.connect(self.generations.show_event)
        c.started.connect(lambda _d: self.generations.clear())
        self._update_out_label()
        self._update_buttons()

    # -- actions ---------------------------------------------------------------------------
    def can_start(self) -> str:
        """Empty when a training can start, else why not (in plain words)."""
        if self.controller.running:
            return "A training is already running."
        if not self.session.cfg.data.path:
            return "Choose a dataset first (on the Data page)."
        if not self.session.ready:
            return "The training engine is still loading."
        if self.session.data is not None:  # DPO / ORPO on rows without a rejected answer: say so before loading anything
            from engine.training.preflight import method_problem

            return method_problem(self.session.cfg.method.name, self.session.data, Path(self.session.cfg.data.path).name)
        return ""

    def start(self) -> bool:
        why = self.can_start()
        if why:
            self.banner.show_message("warning", why)
            return False
        self._reset_series()
        self.log.clear()
        self.banner.clear_message()
        self.run_dir, self.last_status = None, None
        self._log(f"Training {self.session.cfg.model.source} on {Path(self.session.cfg.data.path).name}")
        ok = self.controller.start(self.session.run_config())
        self._begin()
        return ok

    def resume(self, run_dir: str | None = None) -> bool:
        """Continue `run_dir` (default: the run this page last showed) from its last checkpoint."""
        if run_dir:
            self.run_dir = run_dir
        if self.controller.running or not self.run_dir:
            return False
        self.banner.clear_message()
        self._log(f"Resuming {self.run_dir}")
        self._reset_series(keep=True)
        ok = self.controller.start(resume_dir=self.run_dir)
        self._begin()
        return ok

    def stop(self) -> None:
        if self.controller.running:
            self.controller.stop()
            self._log("Stopping after this step; a checkpoint will be saved…")
            self.stop_button.setEnabled(False)

    def _begin(self) -> None:
        self.progress.setFormat("Preparing…")
        self.progress.setMaximum(0)  # busy until the first progress event
        self.redraw_timer.start()
        if self.session.hardware and self.session.hardware.gpu:
            self.util_timer.start()
        self._update_buttons()

    def _choose_out_dir(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder for run folders", self.session.cfg.out_dir or str(paths.default_runs_dir()))
        if d:
            self.session.cfg.out_dir = d
            settings.put("out_dir", d)
            self._update_out_label()

    def _update_out_label(self) -> None:
        self.out_label.setText(f"Runs go to {self.session.cfg.out_dir or paths.default_runs_dir()}")

    def _update_buttons(self) -> None:
        running = self.controller.running
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        resumable = bool(self.run_dir) and self.last_status == "stopped" and bool(RunDir(self.run_dir).checkpoints())
        self.resume_button.setEnabled(not running and resumable)
        self.open_button.setEnabled(bool(self.run_dir))

    # -- engine events ------------------------------------------------------------------------
    def _reset_series(self, keep: bool = False) -> None:
        if not keep:
            self.series = {k: [] for k in ("loss_x", "loss", "eval_x", "eval", "lr_x", "lr", "mem_x", "mem", "util_x", "util",
                                           "general_x", "general")}
            self.method_plots.clear()
        self._dirty = True

    def _on_started(self, d: dict) -> None:
        self.run_dir = d["run_dir"]
        self.progress.setMaximum(d["total_steps"])
        self.progress.setValue(d.get("step", 0))
        self.progress.setFormat(f"step {d.get('step', 0)} / {d['total_steps']}")
        self._log(f"Run folder: {d['run_dir']}")
        self._update_buttons()

    def _on_progress(self, d: dict) -> None:
        self._latest_progress = d
        self._dirty = True

    def _on_metrics(self, d: dict) -> None:
        s, step = self.series, d["step"]
        if "loss" in d:
            s["loss_x"].append(step)
            s["loss"].append(d["loss"])
        if "eval_loss" in d and d["eval_loss"] is not None:
            s["eval_x"].append(step)
            s["eval"].append(d["eval_loss"])
        if d.get("general_loss") is not None:
            s.setdefault("general_x", []).append(step)
            s.setdefault("general", []).append(d["general_loss"])
        if "lr" in d:
            s["lr_x"].append(step)
            s["lr"].append(d["lr"])
        if "mem_bytes" in d:
            s["mem_x"].append(step)
            s["mem"].append(d["mem_bytes"] / 2**30)
        self.method_plots.add(d)
        self._dirty = True

    def _sample_util(self) -> None:
        hw = self.session.hardware
        if self.controller.running and hw and hw.gpu and hw.gpu.utilization_pct is not None:
            step = self.series["loss_x"][-1] if self.series["loss_x"] else 0
            self.series["util_x"].append(step)
            self.series["util"].append(hw.gpu.utilization_pct)
            self._dirty = True

    def _on_oom(self, d: dict) -> None:
        self._log("⚠ " + d["text"])
        self.banner.show_message("warning", "The GPU ran out of memory; TuneDesk made the step smaller and carried on. "
                                            + d["text"])

    def _on_finished(self, d: dict) -> None:
        self.last_status = d["status"]
        s = d["summary"]
        loss = f"Validation loss {s['eval_loss_start']:.3f} → {s['eval_loss']:.3f}" if s.get("eval_loss") is not None and s.get("eval_loss_start") is not None else ""
        data = (f"{s['rows_used']:,} rows, {s['trained_tokens']:,} trained tokens" if s.get("rows_used") is not None else "")
        if d["status"] == "failed":  # the reason comes as a dialog too (_on_failed)
            text = f"Training failed at step {s['steps']}: {s.get('error') or 'see the log'}"
            self.banner.show_message("error", text)
        elif d["status"] == "finished":
            text = (f"Training finished: {s['steps']} steps in {duration(s['duration_s'])}, {data}. {loss}. "
                    f"{guard_words(s)}")
            if s.get("length"):
                text += " " + s["length"]
            warnings = [w for w in ((s.get("probe") or {}).get("warning"), (s.get("eos") or {}).get("warning")) if w]
            self.banner.show_message("warning" if warnings else "ok", " ".join([text, *warnings]))
        else:
            text = f"Stopped at step {s['steps']} of {s['total_steps']}; a checkpoint was kept — Resume continues from it."
            self.banner.show_message("warning", text)
        self._log(text)
        self.training_finished.emit(d)

    def _on_failed(self, message: str, details: str) -> None:
        self._log("✖ " + message)
        self.banner.show_message("error", message)
        show_error(self.window(), "Training stopped", message, details)

    def _on_done(self) -> None:
        self.util_timer.stop()
        self._redraw()
        self.redraw_timer.stop()
        if self.progress.maximum() == 0:
            self.progress.setMaximum(1)
            self.progress.setFormat("Not started")
        self._update_buttons()

    def _log(self, text: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    # -- throttled redraw -----------------------------------------------------------------------
    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        s = self.series
        self.raw_curve.setData(s["loss_x"], s["loss"])
        self.smooth_curve.setData(s["loss_x"], smooth(s["loss"], SMOOTHING))
        self.eval_curve.setData(s["eval_x"], s["eval"])
        self.task_curve.setData(s["eval_x"], _change(s["eval"]))
        self.general_curve.setData(s.get("general_x", []), _change(s.get("general", [])))
        self.lr_curve.setData(s["lr_x"], s["lr"])
        self.mem_curve.setData(s["mem_x"], s["mem"])
        if s["mem"]:  # from zero: auto-range would blow a 1 MB wobble up to the whole height
            self.mem_plot.setYRange(0, max(s["mem"]) * 1.1, padding=0)
        self.mem_plot.setTitle("GPU memory (peak)" if self.session.hardware and self.session.hardware.gpu else "Process memory (RAM)")
        self.util_curve.setData(s["util_x"], s["util"])
        self.method_plots.redraw()
        gpu = bool(self.session.hardware and self.session.hardware.gpu)
        if self.util_plot.isVisibleTo(self) != gpu:
            self.util_plot.setVisible(gpu)
            self.grid.addWidget(self.mem_plot, 1, 1, 1, 1 if gpu else 2)  # memory takes the free cell
        d = self._latest_progress
        if d:
            self.progress.setMaximum(d["total_steps"])
            self.progress.setValue(d["step"])
            self.progress.setFormat(f"step {d['step']} / {d['total_steps']}  (%p%)")
            self.stats.setText(
                f"Epoch {d['epoch']:.2f} · {d['tokens_per_s']:,.0f} tokens/s · elapsed {duration(d['elapsed_s'])} · "
                f"about {duration(d['eta_s'])} left"
                + (f" · loss {s['loss'][-1]:.3f}" if s["loss"] else "")
                + (f" · validation {s['eval'][-1]:.3f}" if s["eval"] else "")
            )

    def meter_points(self) -> dict[str, int]:
        """How many points the meter's curves hold (tests, screenshots)."""
        return {k: len(c.getData()[0] if c.getData()[0] is not None else []) for k, c in
                (("task", self.task_curve), ("general", self.general_curve))}

    def plot_points(self) -> dict[str, int]:
        """How many points the loss plot's curves hold (tests, screenshots)."""

        def n(curve) -> int:
            x = curve.getData()[0]
            return 0 if x is None else len(x)

        return {"loss": n(self.raw_curve), "eval": n(self.eval_curve)}
