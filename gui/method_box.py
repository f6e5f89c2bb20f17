"""The Plan page's Method choice: how the model learns from the rows (config.MethodConfig)
— SFT, DPO, ORPO or GRPO — with each method's settings, the plan's sentence about it, and
a plain warning when the data does not suit the method (DPO on rows without a rejected
answer) before Train is pressed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from engine.config import MethodConfig

from .session import Session
from .widgets import Banner

METHOD_ITEMS = [
    ("SFT — learn to write the answers", "sft"),
    ("DPO — prefer the chosen answer to the rejected one", "dpo"),
    ("ORPO — learn the chosen answer and prefer it, no reference", "orpo"),
    ("GRPO — sample answers, reward the ones that check out", "grpo"),
]
PREFERENCE = ("dpo", "orpo")


def parse_rewards(rewards: list[str]) -> dict[str, str | None]:
    """['match', 'length:20-200', 'regex:^\\d+$'] -> {kind: its argument ('' when none)}."""
    out: dict[str, str | None] = {}
    for r in rewards:
        kind, _, arg = r.partition(":")
        out[kind] = arg
    return out


class MethodBox(QGroupBox):
    def __init__(self, session: Session) -> None:
        super().__init__("Method")
        self.session = session
        form = QFormLayout(self)
        self.method = QComboBox()
        for label, value in METHOD_ITEMS:
            self.method.addItem(label, value)
        self.method.setToolTip("How the model learns from your rows. SFT imitates the answers; DPO and ORPO need rows "
                               "with a chosen and a rejected answer; GRPO needs prompts with checkable answers.")
        self.about = QLabel("")
        self.about.setObjectName("hint")
        self.about.setTextFormat(Qt.TextFormat.PlainText)
        self.about.setWordWrap(True)
        top = QHBoxLayout()
        self.method.setMinimumWidth(330)
        top.addWidget(self.method)
        top.addWidget(self.about, 1)
        form.addRow("Method", top)
        self.banner = Banner()
        form.addRow(self.banner)

        d = MethodConfig()
        self.beta = QDoubleSpinBox()
        self.beta.setRange(0.01, 10.0)
        self.beta.setDecimals(2)
        self.beta.setSingleStep(0.05)
        self.beta.setToolTip(f"DPO: how far the tuned model may move from the base (larger: less far). ORPO: the weight "
                             f"of the preference term beside the chosen answer's loss. Default {d.beta}.")
        self.group = QSpinBox()
        self.group.setRange(2, 64)
        self.group.setToolTip("GRPO: answers sampled per prompt; each is scored against the others of its group.")
        self.completion = QSpinBox()
        self.completion.setRange(8, 8192)
        self.completion.setSingleStep(32)
        self.completion.setToolTip("GRPO: the longest sampled answer, in tokens (its KV cache is planned for).")
        self.kl = QDoubleSpinBox()
        self.kl.setRange(0.0, 1.0)
        self.kl.setDecimals(3)
        self.kl.setSingleStep(0.01)
        self.kl.setSpecialValueText("0 (none)")
        self.kl.setToolTip("GRPO: pull towards the base model (the adapter switched off); 0: none.")
        self.rewards = QWidget()
        rl = QHBoxLayout(self.rewards)
        rl.setContentsMargins(0, 0, 0, 0)
        self.r_match = QCheckBox("final answer matches")
        self.r_match.setToolTip("1 when the answer's final value equals the row's reference answer (numbers as numbers)")
        self.r_format = QCheckBox("<think>…</think> format")
        self.r_format.setToolTip("1 when the answer reasons inside <think>…</think> and then answers")
        self.r_length = QCheckBox("length")
        self.r_length.setToolTip("1 when the answer's length in tokens is within the bounds")
        self.len_min, self.len_max = QSpinBox(), QSpinBox()
        for s, v in ((self.len_min, 0), (self.len_max, 256)):
            s.setRange(0, 8192)
            s.setValue(v)
            s.setSuffix(" tok")
        self.r_regex = QCheckBox("regex")
        self.regex = QLineEdit()
        self.regex.setPlaceholderText(r"e.g. ^Answer: \d+$")
        self.regex.setToolTip("1 when the answer matches this regular expression (Python syntax)")
        for w in (self.r_match, self.r_format, self.r_length, self.len_min, QLabel("–"), self.len_max, self.r_regex):
            rl.addWidget(w)
        rl.addWidget(self.regex, 1)
        self.rows = {"beta": self.beta, "group": self.group, "completion": self.completion, "kl": self.kl,
                     "rewards": self.rewards}
        for w in (self.beta, self.group, self.completion, self.kl):  # a number, not a full-width field
            w.setMaximumWidth(160)
        for label, key in (("Beta", "beta"), ("Answers per prompt", "group"), ("Completion tokens", "completion"),
                           ("KL weight", "kl"), ("Rewards", "rewards")):
            form.addRow(label, self.rows[key])
        self.form = form
        self.load()
        self.method.currentIndexChanged.connect(self._edited)
        for w in (self.beta, self.group, self.completion, self.kl, self.len_min, self.len_max):
            w.valueChanged.connect(self._edited)
        for w in (self.r_match, self.r_format, self.r_length, self.r_regex):
            w.toggled.connect(self._edited)
        self.regex.textChanged.connect(self._edited)
        session.data_changed.connect(self.check)

    # -- fields <-> config ---------------------------------------------------------------
    def _widgets(self) -> list:
        return [self.method, self.beta, self.group, self.completion, self.kl, self.len_min, self.len_max, self.r_match,
                self.r_format, self.r_length, self.r_regex, self.regex]

    def load(self) -> None:
        """Show the session's method (a past run's too) without echoing the edits back."""
        m = self.session.cfg.method
        for w in self._widgets():
            w.blockSignals(True)
        try:
            self.method.setCurrentIndex(max(0, self.method.findData(m.name)))
            self.beta.setValue(m.beta)
            self.group.setValue(m.group)
            self.completion.setValue(m.completion_tokens)
            self.kl.setValue(m.kl)
            r = parse_rewards(m.rewards)
            self.r_match.setChecked("match" in r)
            self.r_format.setChecked("format" in r)
            self.r_length.setChecked("length" in r)
            if r.get("length"):
                lo, _, hi = r["length"].partition("-")
                self.len_min.setValue(int(lo or 0))
                self.len_max.setValue(int(hi or 0))
            self.r_regex.setChecked("regex" in r)
            self.regex.setText(r.get("regex") or "")
        finally:
            for w in self._widgets():
                w.blockSignals(False)
        self._show()

    def rewards_list(self) -> list[str]:
        out = []
        if self.r_match.isChecked():
            out.append("match")
        if self.r_format.isChecked():
            out.append("format")
        if self.r_length.isChecked():
            out.append(f"length:{self.len_min.value()}-{max(self.len_min.value(), self.len_max.value())}")
        if self.r_regex.isChecked() and self.regex.text().strip():
            out.append(f"regex:{self.regex.text().strip()}")
        return out or ["match"]  # GRPO needs a reward; the answer's match is the one every row can have

    def _edited(self) -> None:
        m = self.session.cfg.method
        m.name = self.method.currentData()
        m.beta = round(self.beta.value(), 4)
        m.group, m.completion_tokens, m.kl = self.group.value(), self.completion.value(), round(self.kl.value(), 4)
        m.rewards = self.rewards_list()
        self._show()
        self.session.edited()

    # -- showing ----------------------------------------------------------------------------
    def _show(self) -> None:
        from engine.fit.methods import reason

        name = self.method.currentData()
        for key, w in self.rows.items():
            visible = (key == "beta" and name in PREFERENCE) or (key != "beta" and name == "grpo")
            self.form.setRowVisible(w, visible)
        self.regex.setEnabled(self.r_regex.isChecked())
        self.about.setText(reason(self.session.cfg.method))
        self.check()

    def check(self) -> None:
        """Does the loaded data suit the method? A plain line under the choice."""
        problem = self.problem()
        data = self.session.data
        if problem:
            self.banner.show_message("error", problem)
        elif data is not None and data.pairs and self.session.cfg.method.name not in PREFERENCE:
            self.banner.show_message("warning", f"This file holds preference pairs: {self.session.cfg.method.name.upper()} "
                                                "trains on each row's chosen answer only. Choose DPO or ORPO to learn from both.")
        else:
            self.banner.clear_message()

    def problem(self) -> str:
        """Why the chosen method cannot train on the loaded data ('' when it can, or no data yet)."""
        data = self.session.data
        if data is None:
            return ""
        from pathlib import Path

        from engine.training.preflight import method_problem

        return method_problem(self.session.cfg.method.name, data, Path(self.session.cfg.data.path).name)
