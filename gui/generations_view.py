"""GRPO's sampled answers on the Train page: the latest step's group for one prompt (or
the greedy validation answers), each with its reward and parts, read-only. Hidden until a
run sends its first "generations" event (engine/training/objectives/grpo.py), so SFT,
DPO and ORPO runs never see it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

COLUMNS = ("Reward", "Answer", "Question", "Reference")


class GenerationsView(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        self.title = QLabel("")
        lay.addWidget(self.title)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        head.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        head.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        lay.addWidget(self.table)
        self.setMaximumHeight(190)
        self.hide()

    def show_event(self, d: dict) -> None:
        """A "generations" event: {step, split, samples: [{prompt, completion, reward, parts, reference, ended, tokens}]}."""
        from engine.training.objectives.grpo import question  # torch loads behind the window

        samples = d.get("samples") or []
        if not samples:
            return
        mean = sum(s["reward"] for s in samples) / len(samples)
        which = ("validation answers (greedy)" if d.get("split") == "eval" else
                 f"{len(samples)} sampled answers to one prompt")
        self.title.setText(f"<b>Step {d.get('step', 0)}</b>: {which}, mean reward {mean:.2f}")
        self.table.setRowCount(len(samples))
        for i, s in enumerate(samples):
            parts = ", ".join(f"{k} {v:.2f}" for k, v in (s.get("parts") or {}).items())
            answer = s["completion"].replace("\n", " ⏎ ") + ("" if s.get("ended") else " …")
            cells = (f"{s['reward']:.2f}", answer, question(s["prompt"]), s.get("reference", "").replace("\n", " ⏎ "))
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{parts}\n\n{s['completion']}" if j < 2 else s["prompt"] if j == 2 else text)
                if j == 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(i, j, item)
        self.show()

    def clear(self) -> None:
        self.table.setRowCount(0)
        self.hide()

