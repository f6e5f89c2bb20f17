"""Plan: the hardware, the planner's choices with their reasons, the memory breakdown.
Every field can be edited (Auto = the planner decides); the estimate follows live."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.fit.schedule import SET_BY_YOU

from .. import theme
from ..method_box import MethodBox
from ..session import Session
from ..widgets import Banner, MemoryBar, gib, page_layout

AUTO = "Auto"


def _combo(items: list[tuple[str, object]], tip: str) -> QComboBox:
    c = QComboBox()
    for label, value in items:
        c.addItem(label, value)
    c.setToolTip(tip)
    return c


def _spin(lo: int, hi: int, tip: str, special: str = "", step: int = 1) -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setSingleStep(step)
    if special:
        s.setSpecialValueText(special)
    s.setToolTip(tip)
    return s


class PlanPage(QWidget):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.current_plan = None
        outer = page_layout(self, "The plan", "TuneDesk picks settings that fit your card. Leave a field on Auto, or set it yourself: "
            "the estimate updates as you type.")
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        body = QWidget()
        scroll.setWidget(body)
        root = QVBoxLayout(body)
        outer.addWidget(scroll, 1)

        hw_box = QGroupBox("This computer")
        hw = QGridLayout(hw_box)
        self.gpu_label = QLabel("Probing the GPU…")
        self.gpu_label.setWordWrap(True)
        self.ram_label = QLabel("")
        self.vram_meter = QProgressBar()
        self.vram_meter.setToolTip("GPU memory in use right now (all programs)")
        hw.addWidget(self.gpu_label, 0, 0, 1, 2)
        hw.addWidget(QLabel("GPU memory in use"), 1, 0)
        hw.addWidget(self.vram_meter, 1, 1)
        hw.addWidget(self.ram_label, 2, 0, 1, 2)
        root.addWidget(hw_box)

        mem_box = QGroupBox("Memory estimate")
        ml = QVBoxLayout(mem_box)
        self.total_label = QLabel("Choose a model to see the estimate.")
        ml.addWidget(self.total_label)
        self.bar = MemoryBar()
        ml.addWidget(self.bar)
        self.legend_row = QWidget()
        legend = QHBoxLayout(self.legend_row)
        legend.setContentsMargins(0, 0, 0, 0)
        self.legend: dict[str, QLabel] = {}
        for name, color in theme.SERIES.items():
            lab = QLabel(f"<span style='color:{color}'>■</span> {name}")
            self.legend[name] = lab
            legend.addWidget(lab)
        legend.addWidget(QLabel("<span style='color:#dc2626'>┆</span> budget"))
        legend.addStretch(1)
        ml.addWidget(self.legend_row)
        self.banner = Banner()
        ml.addWidget(self.banner)
        root.addWidget(mem_box)

        self.method_box = MethodBox(session)  # how the model learns: SFT, DPO, ORPO, GRPO and their settings
        root.addWidget(self.method_box)

        box = QGroupBox("Settings")
        self.form = QFormLayout(box)
        self.reason: dict[str, QLabel] = {}
        self.quant = _combo([(AUTO, None), ("4-bit (NF4)", "4bit"), ("8-bit", "8bit"), ("None (16-bit weights)", "none")],
                            "How the frozen weights are stored on the GPU. 4-bit makes 7B models fit 8 GB cards; "
                            "None is fastest when it fits. GPU only.")
        self.ckpt = _combo([(AUTO, None), ("On", True), ("Off", False)],
                           "Gradient checkpointing recomputes activations in the backward pass: far less memory, ~30% slower.")
        self.lean = _combo([(AUTO, None), ("On", True), ("Off", False)],
                           "Long examples on a small card (with checkpointing): activations wait in RAM and LoRA dropout "
                           "is off. Lets a 7B model train 6,000-token examples on an 8 GB card; 3–19% slower.")
        self.micro = _spin(0, 256, "Examples per forward pass. More is faster but needs more memory.", AUTO)
        self.effective = _spin(0, 1024, "Examples per optimizer step (micro-batch × accumulation). Auto: 16 on a GPU, 4 on a CPU.", AUTO)
        self.seq = _spin(0, 131072, "Longest example in tokens. Longer rows are skipped and reported, never cut. "
                                    "Auto: from your data's lengths.", AUTO, 64)
        self.optim = _combo([(AUTO, None), ("AdamW", "adamw"), ("AdamW 8-bit", "adamw_8bit")],
                            "The optimizer. 8-bit AdamW keeps its states in a quarter of the memory (GPU only).")
        self.pack = _combo([("Off", False), ("On", True)],
                           "Lay several short examples end to end in one row (no attention between them): fewer, fuller "
                           "forward passes. 2.3× faster on a GPU in our benchmark; no gain on a CPU.")
        self.rank = _spin(0, 256, "LoRA rank: the adapter's capacity. 8–32 suits a persona or a format. "
                                  "Auto: sized to your data.", AUTO)
        self.epochs = QDoubleSpinBox()
        self.epochs.setRange(0, 100)
        self.epochs.setSingleStep(0.5)
        self.epochs.setSpecialValueText(AUTO)
        self.epochs.setToolTip("Passes over your training rows. Auto: 3, more for a small file.")
        self.max_steps = _spin(0, 1_000_000, "Stop after this many optimizer steps (overrides epochs).", "All epochs")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(0, 0.01)
        self.lr.setSingleStep(0.00005)
        self.lr.setSpecialValueText(AUTO)
        self.lr.setToolTip("Peak learning rate (cosine schedule with warmup). Auto: 5e-4 for a short run, 2e-4 for a longer one.")
        self.eval_every = _spin(0, 100000, "Measure the validation loss (and the forgetting meter) every N steps. "
                                           "Auto: about 12 times per run.", AUTO)
        self.patience = _spin(0, 50, "Stop when the validation loss has not improved for this many evaluations. The adapter "
                                     "kept is the best evaluation's either way.", "Off")
        self.replay = _combo([("Auto (20%)", None), ("Off", 0.0), ("10%", 0.1), ("20%", 0.2), ("30%", 0.3), ("40%", 0.4)],
                             "Before training, the base model answers general prompts; this share of the training mix is "
                             "made of those answers, so the model keeps what it knew (against forgetting).")
        self.ckpt_every = _spin(1, 100000, "Save a resumable checkpoint every N steps.")
        self.vram = QDoubleSpinBox()
        self.vram.setRange(0, 512)
        self.vram.setSpecialValueText("This computer's GPU")
        self.vram.setSuffix(" GB")
        self.vram.setToolTip("Plan for another card size, e.g. 8 for an RTX 4060.")
        self.gpus = _spin(1, 16, "Spread the run over several GPUs of this PC, one process each: every card holds the "
                                 "whole model and trains on its share of each step (data-parallel), planned for the "
                                 "smallest card.")
        rows = [("Quantization", self.quant, "quantization"), ("Gradient checkpointing", self.ckpt, "gradient_checkpointing"),
                ("Lean memory", self.lean, "lean_memory"),
                ("Micro-batch", self.micro, "micro_batch"), ("Effective batch", self.effective, "grad_accum"),
                ("Max sequence length", self.seq, "seq_len"), ("Optimizer", self.optim, "optimizer"),
                ("Pack short examples", self.pack, ""), ("LoRA rank", self.rank, "lora_r"), ("Epochs", self.epochs, "epochs"),
                ("Max steps", self.max_steps, ""),
                ("Learning rate", self.lr, "lr"), ("Evaluate every", self.eval_every, "eval_every"),
                ("Early stopping after", self.patience, ""), ("Replay of general answers", self.replay, ""),
                ("Checkpoint every", self.ckpt_every, ""), ("Plan for a card of", self.vram, ""),
                ("GPUs", self.gpus, "processes")]
        for label, widget, key in rows:
            cell = QHBoxLayout()
            widget.setMinimumWidth(190)
            cell.addWidget(widget)
            if key:
                r = QLabel("")
                r.setObjectName("hint")
                r.setTextFormat(Qt.TextFormat.RichText)  # escaped text: "Set by you. …" has no tag to tell Qt
                r.setWordWrap(True)
                self.reason[key] = r
                cell.addWidget(r, 1)
            else:
                cell.addStretch(1)
            self.form.addRow(label, cell)
        root.addWidget(box)
        root.addStretch(1)

        self._set_fields()
        for w in (self.quant, self.ckpt, self.lean, self.optim, self.pack, self.replay):
            w.currentIndexChanged.connect(self._edited)
        for w in (self.micro, self.effective, self.seq, self.rank, self.max_steps, self.eval_every, self.ckpt_every, self.gpus,
                  self.patience):
            w.valueChanged.connect(self._edited)
        for w in (self.epochs, self.lr, self.vram):
            w.valueChanged.connect(self._edited)
        for sig in (session.model_changed, session.data_changed, session.hardware_changed, session.config_changed):
            sig.connect(self.refresh)
        session.hardware_changed.connect(self._show_hardware)
        self.meter_timer = QTimer(self)
        self.meter_timer.setInterval(3000)
        self.meter_timer.timeout.connect(session.refresh_hardware)

    def showEvent(self, e) -> None:
        super().showEvent(e)
        self.meter_timer.start()
        self.session.refresh_hardware()

    def hideEvent(self, e) -> None:
        super().hideEvent(e)
        self.meter_timer.stop()

    # -- fields <-> config ---------------------------------------------------------------
    def load_fields(self) -> None:
        """Show the session's settings (e.g. a past run's); edits are not echoed back meanwhile."""
        widgets = [self.quant, self.ckpt, self.lean, self.optim, self.pack, self.micro, self.effective, self.seq, self.rank, self.epochs,
                   self.max_steps, self.lr, self.eval_every, self.ckpt_every, self.vram, self.gpus, self.patience, self.replay]
        for w in widgets:
            w.blockSignals(True)
        try:
            self._set_fields()
        finally:
            for w in widgets:
                w.blockSignals(False)
        self.method_box.load()
        self.refresh()

    def _set_fields(self) -> None:
        c = self.session.cfg
        self.quant.setCurrentIndex(max(0, self.quant.findData(c.model.quantization)))
        self.ckpt.setCurrentIndex(max(0, self.ckpt.findData(c.model.gradient_checkpointing)))
        self.lean.setCurrentIndex(max(0, self.lean.findData(c.model.lean_memory)))
        self.optim.setCurrentIndex(max(0, self.optim.findData(c.train.optimizer)))
        self.pack.setCurrentIndex(max(0, self.pack.findData(c.train.packing)))
        self.micro.setValue(c.train.micro_batch or 0)
        self.effective.setValue(c.train.effective_batch or 0)
        self.seq.setValue(c.data.max_seq_len or 0)
        self.rank.setValue(c.lora.r or 0)
        self.epochs.setValue(c.train.epochs or 0)
        self.max_steps.setValue(c.train.max_steps or 0)
        self.lr.setValue(c.train.lr or 0)
        self.eval_every.setValue(c.train.eval_every or 0)
        self.patience.setValue(c.train.patience if c.train.early_stop else 0)
        self.replay.setCurrentIndex(max(0, self.replay.findData(c.train.replay_share)))
        self.ckpt_every.setValue(c.train.checkpoint_every)
        self.vram.setValue(c.train.vram_gb or 0)
        self.gpus.setValue(c.train.gpus)

    def _edited(self) -> None:
        c = self.session.cfg
        c.model.quantization = self.quant.currentData()
        c.model.gradient_checkpointing = self.ckpt.currentData()
        c.model.lean_memory = self.lean.currentData()
        c.train.optimizer = self.optim.currentData()
        c.train.packing = bool(self.pack.currentData())
        c.train.micro_batch = self.micro.value() or None
        c.train.grad_accum = None  # always derived: effective batch / micro-batch
        c.train.effective_batch = self.effective.value() or None
        c.data.max_seq_len = self.seq.value() if self.seq.value() >= 16 else None
        c.lora.r, c.lora.alpha = self.rank.value() or None, None
        c.train.epochs = self.epochs.value() or None
        c.train.max_steps = self.max_steps.value() or None
        c.train.lr = self.lr.value() or None
        c.train.eval_every, c.train.checkpoint_every = self.eval_every.value() or None, self.ckpt_every.value()
        c.train.early_stop = self.patience.value() > 0
        c.train.patience = self.patience.value() or c.train.patience
        c.train.replay_share = self.replay.currentData()
        c.train.vram_gb = self.vram.value() or None
        c.train.gpus = self.gpus.value()
        self.session.edited()

    # -- showing ----------------------------------------------------------------------------
    def _show_hardware(self) -> None:
        hw = self.session.hardware
        g = hw.gpu if hw else None
        if g is None:
            self.gpu_label.setText("<b>No NVIDIA GPU found</b> — training runs on the CPU: fine for the demo model, "
                                   "very slow for real ones.")
            self.gpu_label.setToolTip("\n".join(hw.warnings if hw else []))  # the probe's technical reason
            self.vram_meter.setEnabled(False)
            self.vram_meter.setFormat("no GPU")
            self.vram_meter.setValue(0)
        else:
            self.gpu_label.setText(
                f"<b>{html.escape(g.name)}</b> — {gib(g.total_bytes)} ({gib(g.free_bytes)} free), driver {html.escape(g.driver)}, "
                f"bf16 {'yes' if g.bf16 else 'no (fp16)'}" + "".join(f"<br>{html.escape(w)}" for w in hw.warnings))
            self.vram_meter.setEnabled(True)
            self.vram_meter.setMaximum(max(1, g.total_bytes // 2**20))
            self.vram_meter.setValue(g.used_bytes // 2**20)
            self.vram_meter.setFormat(f"{gib(g.used_bytes)} of {gib(g.total_bytes)}")
        cards = len(hw.gpus) if hw else 0
        self.gpus.setMaximum(max(1, cards, self.session.cfg.train.gpus))
        self.gpus.setEnabled(cards >= 2 or self.session.cfg.train.gpus > 1)
        if hw:
            self.ram_label.setText(f"RAM {gib(hw.ram_total_bytes)} ({gib(hw.ram_available_bytes)} available) · "
                                   f"{hw.cpu_cores} CPU cores · {gib(hw.disk_free_bytes)} free for runs")

    def refresh(self) -> None:
        p = self.session.plan()
        self.current_plan = p
        if p is None:
            return
        user = set(self._user_keys(p))
        for key, label in self.reason.items():
            value = getattr(p, key, "")
            text = p.reasons.get(key, "")
            if key == "grad_accum":
                value = f"{p.micro_batch} × {p.grad_accum}"
            if key == "processes" and not text:
                text = "One GPU." if p.device == "cuda" else ""
            shown = {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value
            if key in user and text.startswith(SET_BY_YOU):  # the planner's reason already says so
                text = text[len(SET_BY_YOU):].strip()
            label.setText(("Set by you. " if key in user else f"<b>Auto: {shown}</b>" + (" — " if text else "")) + html.escape(text))
        if p.device == "cpu":
            self.total_label.setText("<b>CPU plan</b> — " + html.escape(p.reasons.get("device", "")))
            self.bar.hide()
            self.legend_row.hide()
            if p.data_warning:
                self.banner.show_message("warning", p.data_warning)
            else:
                self.banner.clear_message()
            return
        self.bar.show()
        self.legend_row.show()
        total = self.session.hardware.gpu.total_bytes if (self.session.hardware and self.session.hardware.gpu) else p.budget_bytes
        self.bar.set_values(p.breakdown, p.budget_bytes, total)
        for name, lab in self.legend.items():
            lab.setText(f"<span style='color:{theme.SERIES[name]}'>■</span> {name} {gib(p.breakdown.get(name, 0))}")
        self.total_label.setText(f"Estimated peak <b>{gib(p.estimate_bytes)}</b> of a <b>{gib(p.budget_bytes)}</b> budget "
                                 f"(the card minus the CUDA context and a 5% margin)"
                                 + (f", on each of {p.processes} GPUs." if p.processes > 1 else "."))
        if not p.fits:
            self.banner.show_message("error", f"This will not fit: about {gib(p.estimate_bytes)} for {gib(p.budget_bytes)}. "
                                              f"{p.suggestion} If you train anyway, TuneDesk retries smaller steps when memory runs out.")
        else:
            self.banner.show_message("warning" if p.data_warning else "ok", f"Fits this card. {p.data_warning}".strip())

    def _user_keys(self, p) -> list[str]:
        keys = list(p.user_set)  # what the request set, as the planner saw it
        if self.session.cfg.train.effective_batch:
            keys.append("grad_accum")
        c = self.session.cfg
        keys += [k for k, v in (("lora_r", c.lora.r), ("epochs", c.train.epochs), ("lr", c.train.lr),
                                ("eval_every", c.train.eval_every)) if v is not None]
        if self.session.cfg.train.gpus > 1:
            keys.append("processes")
        return keys
