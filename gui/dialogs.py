"""Help menu dialogs: Diagnostics (the doctor's checks) and About (versions)."""

from __future__ import annotations

from importlib import metadata

from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from .tasks import Tasks

LIBRARIES = ["torch", "transformers", "peft", "bitsandbytes", "datasets", "pyside6", "pyqtgraph", "gguf", "psutil",
             "nvidia-ml-py"]


def versions() -> dict[str, str]:
    out = {}
    for name in ["tunedesk", *LIBRARIES]:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


class TextDialog(QDialog):
    def __init__(self, parent: QWidget | None, title: str, intro: str) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(760, 420)
        layout = QVBoxLayout(self)
        label = QLabel(intro)
        label.setWordWrap(True)
        layout.addWidget(label)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setFont(QFont("monospace"))
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


def diagnostics(parent: QWidget | None) -> TextDialog:
    """The doctor's checks, run in the background (the bitsandbytes test can take seconds)."""
    from engine.doctor import format_checks, run_checks

    d = TextDialog(parent, "Diagnostics", "What TuneDesk found on this computer; every problem comes with its fix.")
    d.text.setPlainText("Checking…")
    d.tasks = Tasks(d)
    d.tasks.run("checks", lambda _job: format_checks(run_checks()), on_done=d.text.setPlainText,
                on_failed=lambda msg, _det: d.text.setPlainText(f"The checks failed: {msg}"))
    d.open()
    return d


def about(parent: QWidget | None) -> TextDialog:
    d = TextDialog(parent, "About TuneDesk", "<b>TuneDesk</b> — fine-tune an open language model on your own data, "
                                            "with the one GPU you have.")
    d.text.setPlainText("\n".join(f"{k:<14} {v}" for k, v in versions().items()))
    d.open()
    return d
