"""The Compare page's "Tools" row: the function schemas both models may call, taken from
the run's dataset (the default when it has some), a JSON file, or none. The engine writes
them into the prompt as training wrote them (engine.data.render.generation_prompt)."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from engine.errors import TuneDeskError


class ToolsField(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.tools: list[dict] | None = None
        self.dataset: list[dict] = []  # the loaded run's dataset's schemas
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Tools"))
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setToolTip("Function schemas written into the prompt, so an answer can be a call")
        row.addWidget(self.summary, 1)
        self.data_button = QPushButton("From the run's data")
        self.data_button.setToolTip("The schemas the run's dataset offered, rendered as training rendered them")
        self.data_button.clicked.connect(lambda: self.set_tools(self.dataset or None, "from the run's data"))
        self.file_button = QPushButton("Open JSON…")
        self.file_button.setToolTip("A JSON file: a list of function schemas ({name, description, parameters})")
        self.file_button.clicked.connect(self.choose_file)
        self.none_button = QPushButton("None")
        self.none_button.clicked.connect(lambda: self.set_tools(None))
        for b in (self.data_button, self.file_button, self.none_button):
            row.addWidget(b)
        self.set_dataset([])

    def set_dataset(self, tools: list[dict]) -> None:
        """A run was loaded: offer (and use) its dataset's schemas."""
        self.dataset = list(tools)
        self.data_button.setEnabled(bool(tools))
        self.set_tools(self.dataset or None, "from the run's data")

    def set_tools(self, tools: list[dict] | None, where: str = "") -> None:
        self.tools = tools
        if not tools:
            self.summary.setText("none — plain questions")
            return
        names = ", ".join(html.escape(t["function"]["name"]) for t in tools)
        self.summary.setText(f"<b>{len(tools)}</b> function(s) {html.escape(where, quote=False)}: {names}")

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Tool schemas", str(Path.home()), "JSON (*.json);;All files (*)")
        if path:
            self.load_file(path)

    def load_file(self, path: str) -> str:
        """Use the schemas of a JSON file; '' or the sentence saying why it cannot be used."""
        from engine.data.tool_sets import load_tools_file

        try:
            self.set_tools(load_tools_file(path), f"from {Path(path).name}")
        except TuneDeskError as e:
            self.summary.setText(f"<span style='color:#dc2626'>{html.escape(str(e))}</span>")
            self.tools = None
            return str(e)
        return ""
