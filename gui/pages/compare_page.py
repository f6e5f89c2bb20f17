"""Compare: one prompt, answered by the base model and the tuned one side by side, from
one copy of the weights (the adapter switched off, then on); a conversation on each
side; and the same on the validation set as a table.

About 320 lines: the page's two chats and its validation table share one loaded run and
one background key ("chat"), so they stay one widget; generation is engine/chat's."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QPlainTextEdit,
    QPushButton, QSpinBox, QSplitter, QTableWidget, QTableWidgetItem, QTextBrowser, QVBoxLayout, QWidget
)

from engine import paths

from ..session import Session
from ..tasks import Tasks
from ..tools_field import ToolsField
from ..widgets import Banner, page_layout

SIDES = ("base", "tuned")
KEY = "chat"  # loading a run, answering, the validation table: one at a time, they share the model


def calls_line(answer: str) -> str:
    """Under an answer given with tools: the well-formed calls it makes, or that it makes none."""
    from engine.data.tool_form import calls_in

    calls = calls_in(answer)
    said = "; ".join(f"{c['name']}({', '.join(f'{k}={v!r}' for k, v in c['arguments'].items())})" for c in calls)
    return (f"<div style='color:#15803d'>✓ {len(calls)} well-formed call(s): {html.escape(said)}</div>" if calls
            else "<div style='color:gray'>no well-formed call</div>")


def render_turns(turns: list[tuple[str, str]], show_thinking: bool, tools: bool = False) -> str:
    """A conversation as HTML; a <think> block folded to its length unless asked for; with
    `tools`, each finished answer followed by the calls it makes."""
    from engine.chat import split_thinking

    out = []
    for role, text in turns:
        if role == "user":
            out.append(f"<p style='margin:6px 0'><b>You:</b> {html.escape(text)}</p>")
            continue
        thought, answer = split_thinking(text)
        block = ""
        if thought:
            block = (f"<div style='color:gray; white-space:pre-wrap'>💭 {html.escape(thought)}</div>" if show_thinking
                     else f"<div style='color:gray'>💭 reasoning, {len(thought):,} characters (tick “Show reasoning”)</div>")
        calls = calls_line(answer) if tools and answer else ""
        out.append(f"<div style='margin:6px 0 12px 0'>{block}<span style='white-space:pre-wrap'>{html.escape(answer)}</span>"
                   f"{calls}</div>")
    return "".join(out)


class ComparePage(QWidget):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.chat = None  # engine.chat.ChatSession of the chosen run
        self.turns: dict[str, list[tuple[str, str]]] = {s: [] for s in SIDES}
        self.tasks = Tasks(self)
        self.tasks.busy_changed.connect(lambda _key, _busy: self._update_buttons())
        root = page_layout(self, "Compare", "The same prompt, answered by the model before and after training. Both answers come from "
            "one copy of the weights: the adapter is switched off for the base model.")
        top = QHBoxLayout()
        self.run_combo = QComboBox()
        self.run_combo.setMinimumWidth(420)
        self.run_combo.setToolTip("The run whose adapter is compared")
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(self.load_selected)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh_runs)
        top.addWidget(QLabel("Run"))
        top.addWidget(self.run_combo, 1)
        top.addWidget(self.load_button)
        top.addWidget(refresh)
        root.addLayout(top)
        self.tools_field = ToolsField()
        root.addWidget(self.tools_field)
        self.banner = Banner()
        root.addWidget(self.banner)
        self.meter = QLabel("")  # the forgetting meter's line for the loaded run (engine/eval/probe.py)
        self.meter.setWordWrap(True)
        self.meter.setToolTip("Loss change from the base model: on the run's validation rows (task) and on TuneDesk's "
                              "built-in general questions (the forgetting meter)")
        root.addWidget(self.meter)

        gen = QGroupBox("Generation")
        g = QHBoxLayout(gen)
        self.max_new = QSpinBox()
        self.max_new.setRange(1, 4096)
        self.max_new.setValue(200)
        self.max_new.setToolTip("Longest answer, in tokens")
        self.greedy = QCheckBox("Greedy")
        self.greedy.setChecked(True)
        self.greedy.setToolTip("Always the likeliest next token: the same answer every time")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.05, 2.0)
        self.temperature.setValue(0.7)
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.05, 1.0)
        self.top_p.setValue(0.9)
        self.rep = QDoubleSpinBox()
        self.rep.setRange(1.0, 2.0)
        self.rep.setSingleStep(0.05)
        self.rep.setValue(1.1)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.show_thinking = QCheckBox("Show reasoning")
        self.show_thinking.toggled.connect(lambda _on: self._redraw())
        for label, w in (("Max new tokens", self.max_new), ("", self.greedy), ("Temperature", self.temperature),
                         ("Top-p", self.top_p), ("Repetition penalty", self.rep), ("Seed", self.seed), ("", self.show_thinking)):
            if label:
                g.addWidget(QLabel(label))
            g.addWidget(w)
        g.addStretch(1)
        root.addWidget(gen)

        split = QSplitter(Qt.Orientation.Vertical)
        panes = QWidget()
        pl = QGridLayout(panes)
        pl.setContentsMargins(0, 0, 0, 0)
        self.panes: dict[str, QTextBrowser] = {}
        for col, (side, label) in enumerate((("base", "Before: base model"), ("tuned", "After: tuned model"))):
            pl.addWidget(QLabel(f"<b>{label}</b>"), 0, col)
            self.panes[side] = QTextBrowser()
            pl.addWidget(self.panes[side], 1, col)
        ask = QHBoxLayout()
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Type a prompt, e.g. Who are you?")
        self.prompt.setMaximumHeight(70)
        self.ask_button = QPushButton("Ask both")
        self.ask_button.setObjectName("primary")
        self.ask_button.clicked.connect(self.ask)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.clear_button = QPushButton("New conversation")
        self.clear_button.clicked.connect(self.clear)
        ask.addWidget(self.prompt, 1)
        col = QVBoxLayout()
        for b in (self.ask_button, self.stop_button, self.clear_button):
            col.addWidget(b)
        ask.addLayout(col)
        pl.addLayout(ask, 2, 0, 1, 2)
        split.addWidget(panes)

        val = QWidget()
        vl = QVBoxLayout(val)
        vl.setContentsMargins(0, 0, 0, 0)
        vrow = QHBoxLayout()
        self.val_n = QSpinBox()
        self.val_n.setRange(1, 500)
        self.val_n.setValue(8)
        self.val_button = QPushButton("Compare on the validation set")
        self.val_button.setToolTip("Answer N held-out rows both ways; a table, saved as Markdown and JSON in the run folder")
        self.val_button.clicked.connect(self.compare_validation)
        self.val_label = QLabel("")
        self.val_label.setObjectName("hint")
        self.val_label.setWordWrap(True)
        self.acc_button = QPushButton("Accuracy")
        self.acc_button.setToolTip("Labeled data: the share of N validation rows each model answers with the right "
                                   "label (greedy, a few tokens), before and after training")
        self.acc_button.clicked.connect(self.measure_accuracy)
        vrow.addWidget(QLabel("Rows"))
        vrow.addWidget(self.val_n)
        vrow.addWidget(self.val_button)
        vrow.addWidget(self.acc_button)
        vrow.addWidget(self.val_label, 1)
        vl.addLayout(vrow)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Reference", "Base", "Tuned", "Loss base", "Loss tuned"])
        for c in range(3):
            self.table.horizontalHeader().setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        vl.addWidget(self.table)
        split.addWidget(val)
        split.setSizes([480, 220])
        root.addWidget(split, 1)
        self.refresh_runs()
        self._update_buttons()

    # -- runs --------------------------------------------------------------------------------
    def refresh_runs(self, select: str | None = None) -> None:
        from engine.runs import list_runs

        current = select or self.run_combo.currentData()
        self.run_combo.clear()
        for r in list_runs(self.session.cfg.out_dir or paths.default_runs_dir()):
            if r["has_adapter"]:
                self.run_combo.addItem(f"{r['name']}  ({r['model']}, {r['dataset']}, {r['status']})", r["path"])
        if current:
            self.run_combo.setCurrentIndex(max(0, self.run_combo.findData(current)))
        if not self.run_combo.count():
            self.banner.show_message("warning", "No trained run yet: train one first on the Train page.")

    def open_run(self, run_dir: str) -> None:
        """Select `run_dir` and load it (after a training, or from the Runs page)."""
        self.refresh_runs(select=run_dir)
        self.load_selected()

    @property
    def busy(self) -> bool:
        return self.tasks.busy(KEY)

    def attach(self, chat) -> None:
        """Use a session over the model a training just finished with (no reload)."""
        if self.busy:
            return
        self.refresh_runs(select=str(chat.run.path))
        self._loaded(chat)
        self.banner.show_message("ok", f"{chat.run.path.name} is ready (the trained model, still in memory): "
                                       "ask both models anything.")

    def release(self) -> None:
        """Forget the session (a new training needs the memory)."""
        if not self.busy:
            self.chat = None
            self._update_buttons()

    def load_selected(self) -> None:
        run_dir = self.run_combo.currentData()
        if not run_dir or self.busy:
            return
        from engine.chat import ChatSession

        self.chat = None
        self.banner.show_message("warning", f"Loading {Path(run_dir).name}…")
        self.tasks.run(KEY, lambda _job: ChatSession(run_dir), on_done=self._loaded, on_failed=self._failed)

    def _loaded(self, chat) -> None:
        self.chat = chat
        self.tools_field.set_dataset(chat.dataset_tools())
        self.clear()
        self._show_meter(chat.run.summary() or {})
        self.banner.show_message("ok", f"{chat.run.path.name} is loaded: ask both models anything.")
        self._update_buttons()

    def _show_meter(self, summary: dict) -> None:
        from engine.eval.probe import headline

        line = headline(summary)
        warning = (summary.get("probe") or {}).get("warning", "")
        self.meter.setText(f"<b>{html.escape(line)}</b>" + (f"<br>⚠ {html.escape(warning)}" if warning else "") if line else "")
        self.meter.setVisible(bool(line))

    def _failed(self, message: str, _details: str) -> None:
        self.banner.show_message("error", message)

    # -- asking ---------------------------------------------------------------------------------
    def settings(self):
        from engine.chat import GenerationSettings

        return GenerationSettings(max_new_tokens=self.max_new.value(), greedy=self.greedy.isChecked(),
                                  temperature=self.temperature.value(), top_p=self.top_p.value(),
                                  repetition_penalty=self.rep.value(), seed=self.seed.value())

    def ask(self) -> None:
        text = self.prompt.toPlainText().strip()
        if not text or self.chat is None or self.busy:
            return
        self.prompt.clear()
        for side in SIDES:
            self.turns[side] += [("user", text), ("assistant", "")]
        self._redraw()
        conversations = {side: self._messages(side) for side in SIDES}
        chat, settings, tools = self.chat, self.settings(), self.tools_field.tools

        def generate(job) -> None:
            """Base first, then tuned (one model, the adapter toggled); Stop ends it early."""
            for side in SIDES:
                chat.answer(conversations[side], base=side == "base", settings=settings, stop=job.stopped, tools=tools,
                            on_piece=lambda text, side=side: job.report((side, text)))
                if job.stopped():
                    return

        self.tasks.run(KEY, generate, on_progress=self._piece, on_failed=self._failed)

    def _messages(self, side: str) -> list[dict]:
        from engine.chat import split_thinking

        # Earlier answers go back without their reasoning, as chat templates expect.
        return [{"role": r, "content": t if r == "user" else split_thinking(t)[1]} for r, t in self.turns[side][:-1]]

    def _piece(self, piece: tuple[str, str]) -> None:
        side, text = piece
        role, so_far = self.turns[side][-1]
        self.turns[side][-1] = (role, so_far + text)
        self._redraw(side)

    def stop(self) -> None:
        self.tasks.stop(KEY)

    def clear(self) -> None:
        self.turns = {s: [] for s in SIDES}
        self._redraw()

    def _redraw(self, only: str | None = None) -> None:
        for side in (only,) if only else SIDES:
            pane = self.panes[side]
            pane.setHtml(render_turns(self.turns[side], self.show_thinking.isChecked(), bool(self.tools_field.tools)))
            pane.verticalScrollBar().setValue(pane.verticalScrollBar().maximum())

    def answers(self) -> dict[str, str]:
        """The last answer on each side (tests, screenshots)."""
        return {s: (self.turns[s][-1][1] if self.turns[s] else "") for s in SIDES}

    # -- validation set ------------------------------------------------------------------------
    def compare_validation(self) -> None:
        if self.chat is None or self.busy:
            return
        from engine.chat.compare import validation_compare

        self.val_label.setText("Answering…")
        chat, n, settings = self.chat, self.val_n.value(), self.settings()
        self.tasks.run(KEY, lambda job: validation_compare(chat, n=n, settings=settings,
                                                           progress=lambda done, total: job.report((done, total))),
                       on_progress=lambda p: self.val_label.setText(f"Answering… {p[0]} of {p[1]}"),
                       on_done=self._validation_done, on_failed=self._failed)

    def _validation_done(self, result: dict) -> None:
        rows = result["examples"]
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            for c, key in enumerate(("reference", "base", "tuned", "base_loss", "tuned_loss")):
                self.table.setItem(i, c, QTableWidgetItem(str(r[key])))
        self.table.resizeRowsToContents()
        self.val_label.setText(f"Mean loss of the references: base {result['mean_base_loss']}, tuned {result['mean_tuned_loss']}. "
                               f"Saved in {Path(result['run']) / 'compare'} (validation.md, validation.json).")

    def measure_accuracy(self) -> None:
        if self.chat is None or self.busy:
            return
        from engine.chat.accuracy import label_accuracy, sentence

        self.val_label.setText("Measuring accuracy…")
        chat, n = self.chat, self.val_n.value()
        self.tasks.run(KEY, lambda job: label_accuracy(chat, limit=n, stop=job.stopped,
                                                       progress=lambda done, total: job.report((done, total))),
                       on_progress=lambda p: self.val_label.setText(f"Measuring accuracy… {p[0]} of {p[1]} rows"),
                       on_done=lambda r: self.val_label.setText(f"<b>{sentence(r).replace('->', '→')}</b>. Saved in "
                                                                f"{Path(r['run']) / 'compare'} (accuracy.json)."),
                       on_failed=self._failed)

    def _update_buttons(self) -> None:
        ready = self.chat is not None and not self.busy
        self.ask_button.setEnabled(ready)
        self.val_button.setEnabled(ready)
        self.acc_button.setEnabled(ready)
        self.stop_button.setEnabled(self.busy and self.chat is not None)
        self.load_button.setEnabled(not self.busy and self.run_combo.count() > 0)
