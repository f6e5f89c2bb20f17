"""Data: choose a file (dialog, drag & drop or a bundled sample) or a dataset from the
Hugging Face Hub, see how it was read; labeled data's instruction and label names."""

from __future__ import annotations

import html
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
    QProgressBar, QPushButton, QSpinBox, QSplitter, QTableWidget, QTableWidgetItem, QTextBrowser, QVBoxLayout, QWidget
)

from engine.data import formats

from ..example_view import row_html
from ..session import FIRST_SAMPLE, SAMPLES, Session
from ..tasks import Tasks
from ..widgets import Banner, page_layout

SAMPLE_NAMES = {
    "pirate_trivia.jsonl": "Pirate trivia (alpaca)",
    "support_desk.json": "Router support (Q&&A)",
    "chat_messages.jsonl": "Cooking chat (messages)",
}
FILE_FILTER = "Datasets (*.jsonl *.json *.csv *.tsv *.parquet *.txt *.gz);;All files (*)"
FORMATS = [("Detected automatically", None)] + [(f.label, f.name) for f in formats.FORMATS]
HUB_KEY = "hub"
HUB_ROWS = 1000  # the Hub field's default: the tutorials take a subset, and streaming it is quick
LABELED = "labeled"
EXAMPLES_LABEL = ("Rendered examples — <span style='background: rgba(34,197,94,.28)'>highlighted</span> "
                  "text is what the model learns to write")
PAIRS_LABEL = ("Preference pairs — DPO / ORPO make the <span style='background: rgba(34,197,94,.28)'>chosen</span> "
               "answer more likely than the <span style='background: rgba(239,68,68,.24)'>rejected</span> one")




class DataPage(QWidget):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.setAcceptDrops(True)
        root = page_layout(self, "Your data", "A JSONL, JSON, CSV, Parquet or TXT file — or drop one here. "
            "TuneDesk detects its shape and shows exactly what it will train on.")
        pick = QHBoxLayout()
        self.open_button = QPushButton("Open dataset…")
        self.open_button.setObjectName("primary")
        self.open_button.setToolTip("Choose a dataset file (Ctrl+O)")
        self.open_button.clicked.connect(self.choose_file)
        pick.addWidget(self.open_button)
        pick.addWidget(QLabel("or try a sample:"))
        self.sample_buttons: dict[str, QPushButton] = {}
        for name, label in SAMPLE_NAMES.items():
            if (SAMPLES / name).is_file():
                b = QPushButton(label)
                b.setToolTip(str(SAMPLES / name))
                b.clicked.connect(lambda _=False, n=name: self.open_path(SAMPLES / n))
                self.sample_buttons[name] = b
                pick.addWidget(b)
        pick.addStretch(1)
        root.addLayout(pick)
        root.addLayout(self._hub_row())
        self.file_label = QLabel("No dataset chosen yet.")
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        root.addWidget(self.file_label)
        self.banner = Banner()
        root.addWidget(self.banner)
        # A failed Hub fetch's message stays until the user's next action: a load that was
        # already under way (the first run's sample, read while the window opens) must not
        # replace it with its own report.
        self._hub_error = False

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        shape_box = QGroupBox("Shape and fields")
        form = QFormLayout(shape_box)
        self.format_combo = QComboBox()
        for label, value in FORMATS:
            self.format_combo.addItem(label, value)
        self.format_combo.setToolTip("Override the detected shape when it is wrong")
        self.format_combo.currentIndexChanged.connect(self._show_roles)
        form.addRow("Format", self.format_combo)
        self.role_edits: dict[str, QLineEdit] = {}
        for role in formats.ROLES:
            e = QLineEdit()
            e.setPlaceholderText("(tools / functions, when a row has them)" if role == "tools" else "(not used)")
            e.setToolTip("The file's field that holds each row's function schemas" if role == "tools"
                         else f"The file's field that holds the {role}")
            self.role_edits[role] = e
            form.addRow(role.capitalize(), e)
        self.instruction_edit = QLineEdit()
        self.instruction_edit.setToolTip("Labeled data: the instruction before each text; the answer is the label")
        form.addRow("Instruction", self.instruction_edit)
        self.label_names_edit = QLineEdit()
        self.label_names_edit.setPlaceholderText("e.g. negative, positive (for labels 0, 1)")
        self.label_names_edit.setToolTip("Labeled data: names of integer labels in order (0 is the first); "
                                         "empty: a ClassLabel's names, or the labels as written")
        form.addRow("Label names", self.label_names_edit)
        self.apply_button = QPushButton("Apply mapping")
        self.apply_button.setToolTip("Read the file again with this shape and these fields")
        self.apply_button.clicked.connect(self.apply_mapping)
        form.addRow("", self.apply_button)
        self.form = form
        ll.addWidget(shape_box)
        counts_box = QGroupBox("Rows")
        cl = QVBoxLayout(counts_box)
        self.counts_label = QLabel("–")
        self.counts_label.setWordWrap(True)
        cl.addWidget(self.counts_label)
        self.skipped_table = QTableWidget(0, 2)
        self.skipped_table.setHorizontalHeaderLabels(["Row", "Why it was skipped"])
        self.skipped_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.skipped_table.verticalHeader().hide()
        self.skipped_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        cl.addWidget(self.skipped_table)
        ll.addWidget(counts_box, 1)
        split.addWidget(left)

        right = QWidget()
        rl = QGridLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        self.examples_label = QLabel(EXAMPLES_LABEL)
        rl.addWidget(self.examples_label, 0, 0)
        self.examples = QTextBrowser()
        rl.addWidget(self.examples, 1, 0)
        self.hist = pg.PlotWidget()
        self.hist.setMinimumHeight(170)
        self.hist.setLabel("bottom", "tokens per example")
        self.hist.setLabel("left", "rows")
        self.hist.setMenuEnabled(False)
        rl.addWidget(self.hist, 2, 0)
        rl.setRowStretch(1, 3)
        rl.setRowStretch(2, 2)
        split.addWidget(right)
        split.setSizes([380, 820])
        root.addWidget(split, 1)

        self.tasks = Tasks(self)
        self.tasks.busy_changed.connect(lambda key, busy: self._hub_busy(busy) if key == HUB_KEY else None)
        session.data_loading.connect(self._loading)
        session.data_changed.connect(self._show_report)
        session.data_failed.connect(self._failed)
        self._show_roles()
        if session.first_run:
            self.welcome = ("Welcome to TuneDesk! The Pirate trivia sample and the built-in demo model are ready: click "
                            "▶ Train and it learns to answer like a pirate, offline, in about a minute. Then open your "
                            "own file here.")
            self.banner.show_message("ok", self.welcome)

    # -- choosing a file --------------------------------------------------------------
    def choose_file(self) -> None:
        d = self.session.cfg.data
        start = str(Path(d.path).parent) if d.path and not d.from_hub else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a dataset", start, FILE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path) -> None:
        self._hub_error = False
        self.session.load_data(str(path))

    def dragEnterEvent(self, e) -> None:
        if e.mimeData().hasUrls() and any(u.isLocalFile() for u in e.mimeData().urls()):
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:
        files = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if files:
            self.open_path(files[0])
            e.acceptProposedAction()

    def apply_mapping(self) -> None:
        """Read the dataset again with the form's format, fields, instruction and label names."""
        fmt = self.format_combo.currentData()
        mapping = {r: e.text().strip() for r, e in self.role_edits.items() if e.isVisible() and e.text().strip()} if fmt else None
        d, shown = self.session.cfg.data, self.session.data_report or {}
        d.format, d.mapping = fmt, mapping or None
        # What the form shows is kept only when edited (the default instruction follows the label names);
        # an emptied field goes back to the default.
        names = [x.strip() for x in self.label_names_edit.text().split(",") if x.strip()]
        d.labels = (names if names != shown.get("labels") else d.labels) if names else None
        text = self.instruction_edit.text().strip()
        d.instruction = (text if text != shown.get("instruction") else d.instruction) if text else None
        self._hub_error = False
        self.session.load_data()

    def _show_roles(self) -> None:
        fmt = self.format_combo.currentData()
        shown = set(formats.BY_NAME[fmt].roles) if fmt else set()
        for role, e in self.role_edits.items():
            e.setVisible(role in shown)
            self.form.labelForField(e).setVisible(role in shown)
        for e in (self.instruction_edit, self.label_names_edit):
            e.setVisible(fmt == LABELED)
            self.form.labelForField(e).setVisible(fmt == LABELED)

    # -- from the Hub -----------------------------------------------------------------------
    def _hub_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("From the Hub:"))
        self.hub_edit = QLineEdit()
        self.hub_edit.setPlaceholderText("owner/name, e.g. stanfordnlp/imdb")
        self.hub_edit.setToolTip("A dataset on the Hugging Face Hub (or a folder laid out like one), read through "
                                 "the datasets library; loading scripts are never run")
        self.hub_edit.returnPressed.connect(self.fetch_hub)
        self.hub_config = QLineEdit()
        self.hub_config.setPlaceholderText("configuration")
        self.hub_config.setToolTip("The dataset's configuration (subset); empty: its default")
        self.hub_split = QLineEdit()
        self.hub_split.setPlaceholderText("train")
        self.hub_split.setToolTip("The split to train on (empty: train)")
        self.hub_rows = QSpinBox()
        self.hub_rows.setRange(0, 10_000_000)
        self.hub_rows.setSingleStep(100)
        self.hub_rows.setValue(HUB_ROWS)
        self.hub_rows.setSpecialValueText("all rows")
        self.hub_rows.setPrefix("first ")
        self.hub_rows.setToolTip("Stream only the first N rows (0: download the whole split)")
        self.hub_button = QPushButton("Fetch")
        self.hub_button.clicked.connect(self.fetch_hub)
        self.hub_progress = QProgressBar()
        self.hub_progress.setMaximumWidth(160)
        self.hub_progress.hide()
        self.hub_cancel = QPushButton("Cancel")
        self.hub_cancel.clicked.connect(self.cancel_hub)
        self.hub_cancel.hide()
        row.addWidget(self.hub_edit, 3)
        row.addWidget(self.hub_config, 1)
        row.addWidget(self.hub_split, 1)
        for w in (self.hub_rows, self.hub_button, self.hub_progress, self.hub_cancel):
            row.addWidget(w)
        return row

    def fetch_hub(self) -> None:
        """Fetch the dataset in the background (progress, cancel), then inspect it as a file is."""
        from engine.data import hub

        dataset = self.hub_edit.text().strip()
        self._hub_error = False
        if not dataset:
            self.banner.show_message("error", "Type a dataset's id, e.g. stanfordnlp/imdb.")
            return
        if Path(dataset).expanduser().is_file():
            self.open_path(dataset)  # an existing file wins
            return
        n = self.hub_rows.value()
        src = hub.HubSource(dataset, self.hub_config.text().strip() or None,
                            self.hub_split.text().strip() or hub.DEFAULT_SPLIT, n if n >= 2 else None)
        self.banner.show_message("ok", f"Fetching {src.describe()}…")
        self.hub_progress.setRange(0, 0)
        self.tasks.run(HUB_KEY, lambda job: hub.fetch(src, status=job.report, progress=lambda d, t: job.report((d, t)),
                                                      cancelled=job.stopped),
                       on_progress=self._hub_progress, on_done=lambda _rows: self._hub_fetched(src),
                       on_failed=self._hub_failed)

    def cancel_hub(self) -> None:
        self._hub_error = False
        self.tasks.cancel(HUB_KEY)
        self.banner.show_message("warning", "Cancelled: the dataset was not fetched.")

    def _hub_progress(self, value) -> None:
        if isinstance(value, str):
            self.banner.show_message("ok", value)
        else:
            done, total = value
            self.hub_progress.setRange(0, max(total, 1))
            self.hub_progress.setValue(done)
            self.hub_progress.setFormat(f"{done:,} of {total:,} rows")

    def _hub_fetched(self, src) -> None:
        self.session.load_hub(src.id, config=src.config, split=src.split, max_samples=src.max_samples)

    def _hub_failed(self, message: str, _details: str) -> None:
        self._hub_error = True
        self.banner.show_message("error", message)

    def _hub_busy(self, busy: bool) -> None:
        self.hub_progress.setVisible(busy)
        self.hub_cancel.setVisible(busy)
        self.hub_button.setEnabled(not busy)

    # -- showing what was read ----------------------------------------------------------
    def _source(self, path: str) -> str:
        return path if self.session.cfg.data.from_hub else Path(path).name

    def _loading(self, path: str) -> None:
        if not self._hub_error:
            self.banner.clear_message()
        name = html.escape(self._source(path))
        self.file_label.setText(f"<b>{name}</b> — reading…" if path else "No dataset chosen yet.")
        if path and self.session.model is None:
            self.file_label.setText(f"<b>{name}</b> — waiting for the model's tokenizer…")

    def _failed(self, message: str, _details: str) -> None:
        self.file_label.setText(f"<b>{html.escape(self._source(self.session.cfg.data.path))}</b>")
        self.banner.show_message("error", message)
        self.counts_label.setText("–")
        self.skipped_table.setRowCount(0)
        self.examples.clear()
        self.hist.clear()

    def _show_report(self) -> None:
        r = self.session.data_report
        d = self.session.cfg.data
        where = (f"Hugging Face Hub dataset, {html.escape(d.hub_config or 'default configuration')}, split "
                 f"{html.escape(d.hub_split or 'train')}" + (f", first {d.max_samples:,} rows" if d.max_samples else "")
                 if d.from_hub else html.escape(r["file"]))
        self.file_label.setText(f"<b>{html.escape(self._source(r['file']))}</b> — {where}")
        self.format_combo.blockSignals(True)
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(r["format"])))
        self.format_combo.blockSignals(False)
        self._show_roles()
        for role, e in self.role_edits.items():
            e.setText(r["mapping"].get(role, ""))
        self.instruction_edit.setText(r.get("instruction", ""))
        self.label_names_edit.setText(", ".join(r.get("labels", [])) if r.get("numbered") else "")
        L = r.get("lengths") or {}
        self.counts_label.setText(
            f"<b>{r['rows']:,}</b> rows read, <b>{r['kept']:,}</b> kept ({r['train']:,} to train, {r['val']:,} to validate), "
            f"<b>{len(r['skipped']):,}</b> skipped."
            + (f"<br>Tokens per example: median {L['p50']:,}, 95% under {L['p95']:,}, longest {L['max']:,}." if L else "")
            + "".join(f"<br>• {html.escape(n)}" for n in r["notes"])
        )
        self.skipped_table.setRowCount(len(r["skipped"]))
        for i, s in enumerate(r["skipped"]):
            self.skipped_table.setItem(i, 0, QTableWidgetItem(str(s["row"])))
            self.skipped_table.setItem(i, 1, QTableWidgetItem(s["reason"]))
        bad = sum(r["skipped_by_kind"].values()) if r.get("skipped_by_kind") else 0
        if self._hub_error:
            pass  # the failed fetch's message stands (see __init__)
        elif bad:
            self.banner.show_message("warning", f"{bad} row(s) cannot be used and will be left out; the table says why.")
        else:
            text = f"All {r['rows']:,} rows are usable ({r['format']} format)."
            if self.session.first_run and Path(r["file"]).name == FIRST_SAMPLE:
                text = f"{self.welcome} {text}"
            self.banner.show_message("ok", text)
        pairs = any("rejected" in ex for ex in r["examples"])
        self.examples_label.setText(PAIRS_LABEL if pairs else EXAMPLES_LABEL)
        self.examples.setHtml("<hr>".join(row_html(ex) for ex in r["examples"]))
        self.hist.clear()
        if L:
            edges, counts = L["histogram"]["edges"], L["histogram"]["counts"]
            self.hist.addItem(pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts, brush="#3b82f6"))
            self.hist.addItem(pg.InfiniteLine(pos=L["p95"], angle=90, pen=pg.mkPen("#ef4444", style=Qt.PenStyle.DashLine),
                                              label="p95", labelOpts={"position": 0.9}))
