"""The interface the training loop asks of a method."""

from __future__ import annotations

from typing import Any

import torch


class Objective:
    """One training method's step. `trainer` (engine/training/train.py) gives the model, the
    tokenizer, the prepared data, the plan, the device, the autocast context, the optimizer
    and the ranks; an objective reads them and keeps nothing of its own across steps that a
    checkpoint would need (or says so in state())."""

    name = "base"

    def __init__(self, trainer) -> None:
        self.t = trainer

    def step_batches(self, idx: list[list[int]]) -> tuple[list[Any], int, int]:
        """This rank's micro-batches for the step's example indices (one list per
        micro-batch, all ranks'), and the step's trained and total tokens over all ranks."""
        raise NotImplementedError

    def accumulate(self, batches: list[Any], trained: int) -> dict[str, float]:
        """Forward and backward over this rank's micro-batches: {"loss": its share, …}.
        Every value is this rank's share; the loop sums them over ranks."""
        raise NotImplementedError

    def evaluate(self) -> dict[str, float] | None:
        """{"eval_loss": …, …} over the validation examples; None without any."""
        raise NotImplementedError

    def probe(self, micro_batch: int, seq_len: int) -> None:
        """Calibration's step at the plan's largest shape (may raise torch.OutOfMemoryError)."""
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """The method's own figures for summary.json (e.g. GRPO's rewards at the start and the end)."""
        return {}

    def report(self, summary: dict[str, Any]) -> None:
        """The method's closing line(s) through the Reporter (the CLI's and the window's log)."""

    def state(self) -> dict[str, Any]:
        return {}

    def load(self, state: dict[str, Any]) -> None:
        pass

    def backward(self, loss: torch.Tensor) -> None:
        self.t.optim.backward(loss)
