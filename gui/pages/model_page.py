"""Model: the built-in demo, a local folder, a .gguf file or a Hub id, and its card."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from ..session import Session
from ..widgets import Banner, page_layout

CARD_ROWS = [("name", "Model"), ("architecture", "Architecture"), ("parameters", "Parameters"), ("layers", "Layers"),
             ("hidden_size", "Hidden size"), ("heads", "Attention heads"), ("vocabulary", "Vocabulary"),
             ("context_length", "Context length"), ("tied_embeddings", "Tied embeddings"),
             ("chat_template", "Chat template"), ("reasoning_model", "Reasoning model (<think>)")]


class ModelPage(QWidget):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        root = page_layout(self, "The model", "Start with the built-in demo: it is small, works offline and trains on a CPU. "
            "Bigger models need an NVIDIA GPU.")
        box = QGroupBox("Source")
        grid = QVBoxLayout(box)
        self.group = QButtonGroup(self)
        self.demo_radio = QRadioButton("Built-in demo — SmolLM2-135M-Instruct (offline, 135 M parameters)")
        self.folder_radio = QRadioButton("A model folder on this computer (Hugging Face format)")
        self.gguf_radio = QRadioButton("A .gguf file")
        self.hub_radio = QRadioButton("A model from the Hugging Face Hub")
        self.folder_edit, self.gguf_edit, self.hub_edit = QLineEdit(), QLineEdit(), QLineEdit()
        rows = [(self.demo_radio, None, "", None),
                (self.folder_radio, self.folder_edit, "folder with config.json and *.safetensors", self._browse_folder),
                (self.gguf_radio, self.gguf_edit, "model.gguf", self._browse_gguf),
                (self.hub_radio, self.hub_edit, "owner/name, e.g. Qwen/Qwen2.5-0.5B-Instruct", None)]
        for radio, edit, placeholder, browse in rows:
            self.group.addButton(radio)
            grid.addWidget(radio)
            if edit is None:
                continue
            row = QHBoxLayout()
            edit.setPlaceholderText(placeholder)
            edit.textEdited.connect(lambda _t, r=radio: r.setChecked(True))  # typing a source picks it
            row.addWidget(edit)
            if browse is not None:
                b = QPushButton("Browse…")
                b.clicked.connect(browse)
                row.addWidget(b)
            grid.addLayout(row)
        actions = QHBoxLayout()
        self.load_button = QPushButton("Use this model")
        self.load_button.setObjectName("primary")
        self.load_button.clicked.connect(self.apply)
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.clicked.connect(session.cancel_download)
        self.cancel_button.hide()
        self.progress = QProgressBar()
        self.progress.hide()
        actions.addWidget(self.load_button)
        actions.addWidget(self.progress, 1)
        actions.addWidget(self.cancel_button)
        actions.addStretch(0)
        grid.addLayout(actions)
        root.addWidget(box)
        self.banner = Banner()
        root.addWidget(self.banner)

        card_box = QGroupBox("Model card")
        self.card_form = QFormLayout(card_box)
        self.card_labels: dict[str, QLabel] = {}
        for key, label in CARD_ROWS:
            v = QLabel("–")
            self.card_labels[key] = v
            self.card_form.addRow(label, v)
        root.addWidget(card_box)
        root.addStretch(1)

        session.model_loading.connect(self._loading)
        session.model_changed.connect(self._loaded)
        session.model_failed.connect(self._failed)
        session.download_progress.connect(self._download_progress)
        self._select(session.cfg.model.source)

    def _select(self, source: str) -> None:
        if source in ("", "demo"):
            self.demo_radio.setChecked(True)
        elif source.lower().endswith(".gguf"):
            self.gguf_radio.setChecked(True)
            self.gguf_edit.setText(source)
        elif "/" in source and not source.startswith(("/", ".", "~")) and ":" not in source:
            self.hub_radio.setChecked(True)
            self.hub_edit.setText(source)
        else:
            self.folder_radio.setChecked(True)
            self.folder_edit.setText(source)

    def source(self) -> str:
        if self.folder_radio.isChecked():
            return self.folder_edit.text().strip()
        if self.gguf_radio.isChecked():
            return self.gguf_edit.text().strip()
        if self.hub_radio.isChecked():
            return self.hub_edit.text().strip()
        return "demo"

    def apply(self) -> None:
        src = self.source()
        if not src:
            self.banner.show_message("error", "Give a folder, a .gguf file or a Hub id first.")
            return
        self.session.load_model(src)

    def _browse_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Choose a model folder")
        if d:
            self.folder_edit.setText(d)
            self.folder_radio.setChecked(True)

    def _browse_gguf(self) -> None:
        f, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF file", "", "GGUF models (*.gguf)")
        if f:
            self.gguf_edit.setText(f)
            self.gguf_radio.setChecked(True)

    def _loading(self, source: str) -> None:
        self.banner.show_message("warning", f"Loading {source}…" if self.session.ready else "Starting the engine…")
        self.load_button.setEnabled(False)
        for v in self.card_labels.values():
            v.setText("–")

    def _download_progress(self, done: int, total: int) -> None:
        self.progress.show()
        self.cancel_button.show()
        self.progress.setMaximum(max(1, total // 1024))
        self.progress.setValue(done // 1024)
        self.progress.setFormat(f"{done / 2**20:,.0f} of {total / 2**20:,.0f} MB")

    def _done(self) -> None:
        self.load_button.setEnabled(True)
        self.progress.hide()
        self.cancel_button.hide()

    def _loaded(self) -> None:
        self._done()
        card = self.session.model.card
        for key, label in self.card_labels.items():
            value = card.get(key, "–")
            label.setText("yes" if value is True else "no" if value is False else str(value))
        self.banner.show_message("ok", f"{card['name']} is ready.")

    def _failed(self, message: str, _details: str) -> None:
        self._done()
        self.banner.show_message("error", message)
