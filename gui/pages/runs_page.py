"""Runs: every run folder, its config and curves; resume, train again, compare, delete,
and the loss curves of two runs over each other. Listing the folder and exporting run
in the background (gui.tasks)."""

from __future__ import annotations

import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from engine import paths
from engine.export import (
    LABELS as EXPORTS,  # the menu: one entry per registered export target
)
from engine.runs import RunDir

from ..session import Session
from ..tasks import Tasks
from ..widgets import Banner, duration, page_layout

COLUMNS = [("name", "Run"), ("created", "Date"), ("model", "Model"), ("dataset", "Dataset"), ("method", "Method"), ("status", "Status"),
           ("steps", "Steps"), ("rows_used", "Rows"), ("trained_tokens", "Trained tokens"), ("train_loss", "Train loss"),
           ("eval_loss", "Eval loss"), ("best", "Best (the adapter)"), ("general", "General ability"),
           ("duration_s", "Duration")]
COLORS = ["#3b82f6", "#f59e0b", "#22c55e", "#ef4444"]


def _cell(key: str, value) -> str:
    if value is None:
        return "–"
    if key == "created":
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(value))
    if key in ("train_loss", "eval_loss"):
        return f"{value:.3f}"
    if key == "method":
        return str(value).upper()
    if key == "duration_s":
        return duration(value)
    if key == "general":
        return {"kept": "kept", "worse": "⚠ worse"}.get(value, str(value))
    if key in ("rows_used", "trained_tokens"):
        return f"{value:,}"
    return str(value)


class RunsPage(QWidget):
    resume_requested = Signal(str)
    compare_requested = Signal(str)
    retrain_requested = Signal(str)

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.rows: list[dict] = []
        self.tasks = Tasks(self)
        self.tasks.busy_changed.connect(lambda _key, _busy: self._update_buttons())
        root = page_layout(self, "Runs", "Every training is a folder. Select one to see its settings and curves; select two to "
            "overlay their loss curves.")
        bar = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for key, label, tip, slot in (
            ("refresh", "Refresh", "Read the runs folder again", self.refresh),
            ("resume", "Resume", "Continue a stopped or crashed run from its last checkpoint", self._resume),
            ("retrain", "Train again with these settings", "Load this run's settings into the Plan page", self._retrain),
            ("compare", "Compare", "Open this run on the Compare page", self._compare),
            ("open", "Open folder", "Show the run folder", self._open_folder),
            ("export", "Export…", "Adapter, merged model, GGUF or Ollama", self._export_menu),
            ("delete", "Delete…", "Delete the run folder (asks first)", self._delete),
        ):
            b = QPushButton(label)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            self.buttons[key] = b
            bar.addWidget(b)
        bar.addStretch(1)
        root.addLayout(bar)
        self.banner = Banner()
        root.addWidget(self.banner)
        split = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([c[1] for c in COLUMNS])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._selected)
        split.addWidget(self.table)
        detail = QSplitter(Qt.Orientation.Horizontal)
        self.config_view = QPlainTextEdit()
        self.config_view.setReadOnly(True)
        self.config_view.setPlaceholderText("The selected run's settings")
        self.plot = pg.PlotWidget(title="Loss")
        self.plot.setLabel("bottom", "step")
        self.plot.addLegend(offset=(-10, 10))
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        detail.addWidget(self.config_view)
        detail.addWidget(self.plot)
        detail.setSizes([420, 780])
        split.addWidget(detail)
        split.setSizes([300, 400])
        root.addWidget(split, 1)
        self._selected()

    def showEvent(self, e) -> None:
        super().showEvent(e)
        self.refresh()

    def refresh(self) -> None:
        """List the runs folder again; the newest listing wins."""
        from engine.runs import list_runs

        folder = self.session.cfg.out_dir or paths.default_runs_dir()
        self.tasks.run("list", lambda _job: list_runs(folder), on_done=self._listed,
                       on_failed=lambda message, _details: self.banner.show_message("error", message))

    def _listed(self, rows: list[dict]) -> None:
        keep = {r["path"] for r in self.selected()}
        self.rows = rows
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            for c, (key, _) in enumerate(COLUMNS):
                value = f"{r['steps']} / {r['total_steps']}" if key == "steps" and r.get("total_steps") else r.get(key)
                if key == "best" and r.get("best_step") is not None:
                    value = (f"★ step {r['best_step']} · {r['best_eval_loss']:.3f}"
                             + (" · stopped early" if r.get("stopped_early") else ""))
                self.table.setItem(i, c, QTableWidgetItem(_cell(key, value)))
            if r["path"] in keep:
                self.table.selectRow(i)
        self.table.blockSignals(False)
        self._selected()

    def selected(self) -> list[dict]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.rows[i] for i in rows if i < len(self.rows)]

    def select(self, path: str) -> None:
        for i, r in enumerate(self.rows):
            if r["path"] == path:
                self.table.selectRow(i)

    @staticmethod
    def _settings_text(path: str) -> str:
        """What the run used (its plan), then what the user set (its request)."""
        run = RunDir(path)
        plan, summary = run.plan(), run.summary() or {}
        lines = [f"Plan it ran: {plan['headline']}"] if plan.get("headline") else []
        if summary.get("length"):
            lines.append(summary["length"])
        if summary.get("error"):
            lines.append(f"Failed: {summary['error']}")
        if summary.get("best_step") is not None:
            lines.append(f"The adapter: step {summary['best_step']}'s, the best validation loss "
                         f"({summary['best_eval_loss']:.3f})" + (", stopped early" if summary.get("stopped_early") else "")
                         + ("; the last step's is in last/" if run.adapter_step("last") != summary["best_step"] else ""))
        if summary.get("eval_pref_accuracy") is not None:
            lines.append(f"{summary.get('method', '').upper()}: the tuned model prefers the chosen answer in "
                         f"{summary['eval_pref_accuracy']:.0%} of the validation pairs (from "
                         f"{summary['eval_pref_accuracy_start']:.0%} at the start)")
        if summary.get("replay_rows"):
            lines.append(f"Replay: {summary['replay_rows']} answers of the base model, {summary['replay_share']:.0%} of the mix")
        probe = summary.get("probe") or {}
        if probe.get("task"):
            from engine.eval.probe import headline

            lines.append("Forgetting meter: " + headline(summary))
        lines += [w for w in (probe.get("warning"), (summary.get("eos") or {}).get("warning")) if w]
        lines += ["", "Your settings (null: left to the planner):", run.request_text()]
        return "\n".join(lines).lstrip()

    def _selected(self) -> None:
        sel = self.selected()
        one = sel[0] if len(sel) == 1 else None
        self._update_buttons()
        self.config_view.setPlainText(self._settings_text(one["path"]) if one else "")
        self.plot.clear()
        self.best_marks = 0
        for n, r in enumerate(sel[:4]):
            metrics = RunDir(r["path"]).metrics()
            pts = [(m["step"], m["loss"]) for m in metrics if "loss" in m]
            evs = [(m["step"], m["eval_loss"]) for m in metrics if m.get("eval_loss") is not None]
            color = COLORS[n % len(COLORS)]
            if pts:
                self.plot.plot(*zip(*pts), pen=pg.mkPen(color, width=2), name=f"{r['name']} train")
            if evs:
                self.plot.plot(*zip(*evs), pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine), symbol="o",
                               symbolSize=5, symbolBrush=color, name=f"{r['name']} eval")
            best = [(x, y) for x, y in evs if x == r.get("best_step")]
            if best:  # the adapter the run keeps
                self.plot.plot(*zip(*best[-1:]), pen=None, symbol="star", symbolSize=16, symbolBrush=color,
                               name=f"{r['name']} best (the adapter)")
                self.best_marks += 1

    def _update_buttons(self) -> None:
        one = self._one()
        self.buttons["resume"].setEnabled(bool(one and one["resumable"]))
        self.buttons["export"].setEnabled(bool(one and one["has_adapter"]) and not self.tasks.busy("export"))
        for key in ("retrain", "open"):
            self.buttons[key].setEnabled(one is not None)
        self.buttons["compare"].setEnabled(bool(one and one["has_adapter"]))
        self.buttons["delete"].setEnabled(one is not None and one["status"] != "running")

    def curves(self) -> int:
        """The loss curves shown (the best marks apart)."""
        return len(self.plot.getPlotItem().listDataItems()) - self.best_marks

    best_marks = 0  # stars on the plot: each selected run's best evaluation, whose adapter the run keeps

    # -- actions ---------------------------------------------------------------------------------
    def _one(self) -> dict | None:
        sel = self.selected()
        return sel[0] if len(sel) == 1 else None

    def _resume(self) -> None:
        if one := self._one():
            self.resume_requested.emit(one["path"])

    def _retrain(self) -> None:
        if one := self._one():
            self.retrain_requested.emit(one["path"])

    def _compare(self) -> None:
        if one := self._one():
            self.compare_requested.emit(one["path"])

    def _open_folder(self) -> None:
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        if one := self._one():
            QDesktopServices.openUrl(QUrl.fromLocalFile(one["path"]))

    def _export_menu(self) -> None:
        from PySide6.QtWidgets import QMenu

        menu = QMenu(self)
        for fmt, label in EXPORTS.items():
            menu.addAction(label, lambda f=fmt: self._export_to_chosen_folder(f))
        menu.exec(self.buttons["export"].mapToGlobal(self.buttons["export"].rect().bottomLeft()))

    def _export_to_chosen_folder(self, fmt: str) -> None:
        from PySide6.QtWidgets import QFileDialog

        one = self._one()
        if one is None:
            return
        parent = QFileDialog.getExistingDirectory(self, "Export into this folder", str(Path(one["path"]).parent))
        if parent:
            self.export(fmt, str(Path(parent) / f"{one['name']}-{fmt}"))

    def export(self, fmt: str, out: str) -> None:
        """Export the selected run in the background; the banner tells how it went."""
        from engine.export import export

        one = self._one()
        if one is None or self.tasks.busy("export"):
            return
        self.banner.show_message("warning", f"Exporting {one['name']} as {EXPORTS[fmt].lower()}… (a merged or GGUF "
                                            f"export loads the whole model: this can take minutes)")
        path = one["path"]
        self.tasks.run("export", lambda _job: export(path, fmt, out),
                       on_done=lambda written: self.banner.show_message("ok", f"Exported to {written}"),
                       on_failed=lambda message, _details: self.banner.show_message("error", f"Export failed: {message}"))

    def confirm_delete(self, name: str) -> bool:
        return QMessageBox.question(self, "Delete run", f"Delete the run folder “{name}” and everything in it?",
                                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                    QMessageBox.StandardButton.No) == QMessageBox.StandardButton.Yes

    def _delete(self) -> None:
        one = self._one()
        if one is None or one["status"] == "running" or not self.confirm_delete(one["name"]):
            return
        RunDir(one["path"]).delete()
        self.banner.show_message("ok", f"Deleted {one['name']}.")
        self.refresh()
