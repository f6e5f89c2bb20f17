"""Training defaults sized to the data: learning rate, epochs, LoRA rank and evaluation
cadence from the number of training rows and their lengths, each with its reason (the
Plan page shows them beside the memory plan's). A value the request sets is kept and
said to be "Set by you".

Why these numbers: on the demo model (SmolLM2-135M-Instruct, CPU, effective batch 4),
an identity set of ~100 rows was half learned at 2e-4 over ~60 steps and fully at 5e-4
(issue 17); short runs need the higher rate, and the best-adapter keeping and replay
(engine/training/) hold back what a higher rate overshoots. Long runs take the usual
LoRA rate. Tiny files get more passes (a few dozen steps, not one) and a warning."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

TINY_ROWS = 30  # fewer training rows than this: warned, and trained for more passes
SMALL_STEPS = 150  # runs shorter than this get the higher learning rate
MIN_STEPS = 30  # a run of a small file makes at least this many steps (within MAX_EPOCHS)
MAX_EPOCHS = 10
EVALUATIONS = 12  # evaluations per run: patience 3 is a quarter of it
SET_BY_YOU = "Set by you."


@dataclass
class Schedule:
    lr: float
    epochs: float
    lora_r: int
    eval_every: int
    total_steps: int
    reasons: dict[str, str] = field(default_factory=dict)
    warning: str = ""


def rank(train_rows: int | None) -> tuple[int, str]:
    """The LoRA rank for a file of `train_rows` rows (before the memory search, which may lower it)."""
    r = 32 if (train_rows or 0) > 5_000 else 16
    return r, f"Rank {r}: " + ("a large file has room for more capacity" if r == 32 else
                               "enough for a persona, a style or a format")


def choose(train_rows: int, lengths, examples_per_step: int, *, lr: float | None = None, epochs: float | None = None,
           lora_r: int | None = None, eval_every: int | None = None, max_steps: int | None = None) -> Schedule:
    rows = max(1, int(train_rows or 0))
    per_epoch = max(1, math.ceil(rows / max(1, examples_per_step)))
    reasons: dict[str, str] = {}
    warning = ""
    if epochs is None:
        n = 3.0 if per_epoch * 3 >= MIN_STEPS else float(min(MAX_EPOCHS, math.ceil(MIN_STEPS / per_epoch)))
        if rows > 20_000:
            n = 1.0
        elif rows > 5_000:
            n = 2.0
        epochs = n
        reasons["epochs"] = (f"{n:g} passes over {rows:,} training rows ({per_epoch} step(s) each): "
                             + ("a large file learns in fewer passes." if rows > 5_000 else
                                "3 passes is the usual LoRA recipe." if n == 3 else
                                f"a small file needs more passes to make at least {MIN_STEPS} steps."))
    else:
        reasons["epochs"] = SET_BY_YOU
    steps = max_steps or max(1, math.ceil(epochs * rows / max(1, examples_per_step)))
    if lr is None:
        lr = 5e-4 if steps < SMALL_STEPS else 2e-4 if steps < 3_000 else 1e-4
        reasons["lr"] = (f"{lr:g} for a run of {steps} steps: "
                         + ("a short run needs a higher rate; the best evaluation's adapter is kept and replay holds "
                            "the rest of the model in place." if steps < SMALL_STEPS else
                            "the usual LoRA rate." if steps < 3_000 else "a long run learns at a gentler rate."))
    else:
        reasons["lr"] = SET_BY_YOU
    if lora_r is None:
        lora_r, reasons["lora_r"] = rank(rows)
    if eval_every is None:
        eval_every = max(1, round(steps / EVALUATIONS))
        reasons["eval_every"] = (f"Every {eval_every} step(s): about {min(steps, EVALUATIONS)} evaluations in {steps} "
                                 "steps, so early stopping and the forgetting meter see the run turn.")
    else:
        reasons["eval_every"] = SET_BY_YOU
    if rows < TINY_ROWS:
        warning = (f"Only {rows} training row(s): the adapter will learn them by heart rather than the pattern behind "
                   f"them. It trains {epochs:g} passes ({steps} steps); 100 or more rows in varied wordings teach better.")
    return Schedule(float(lr), float(epochs), int(lora_r), int(eval_every), int(steps), reasons, warning)
