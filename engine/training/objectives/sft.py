"""Supervised fine-tuning: next-token cross-entropy on the answers' tokens."""

from __future__ import annotations

import torch

from ...data.batching import GPU_PAD_MULTIPLE
from ...errors import FitError
from ...models.loss import batch_loss_sum, count_trained
from .. import steps
from ..stream import step_batches
from .base import Objective


def pad_multiple(device: torch.device) -> int:
    """Batch widths round up to this (engine/data/batching.py: GPU libraries plan per shape)."""
    return GPU_PAD_MULTIPLE if device.type == "cuda" else 1


class SupervisedObjective(Objective):
    name = "sft"

    def step_batches(self, idx: list[list[int]]) -> tuple[list[dict[str, torch.Tensor]], int, int]:
        t = self.t
        p, ranks = t.plan, t.ranks
        batches = step_batches(t.data.train, idx[ranks.rank :: ranks.world], p.micro_batch, p.seq_len,
                               t.tokenizer.pad_token_id, t.cfg.train.packing, pad_multiple(t.device))
        trained, tokens = map(int, ranks.total(sum(count_trained(b["labels"]) for b in batches),
                                               sum(int(b["attention_mask"].sum()) for b in batches)))
        if trained == 0:  # never report success for a step that learned nothing
            raise FitError(f"step {t.step + 1} has no answer tokens to train on "
                           f"(rows {', '.join(str(t.data.train[i].row) for b in idx for i in b[:3])}); nothing was trained")
        return batches, trained, tokens

    def accumulate(self, batches: list[dict[str, torch.Tensor]], trained: int) -> dict[str, float]:
        t = self.t
        t.model.train()
        total = 0.0
        for b in batches:
            with t._autocast():
                loss = batch_loss_sum(t.model, b, t.device) / max(1, trained)
            self.backward(loss)
            total += float(loss.detach())
        return {"loss": total}

    def evaluate(self) -> dict[str, float] | None:
        t = self.t
        loss = steps.evaluate(t.model, t.data.val, t.plan.micro_batch, t.tokenizer.pad_token_id,
                              t.device, t._autocast, t.ranks)
        return None if loss is None else {"eval_loss": loss}

    def probe(self, micro_batch: int, seq_len: int) -> None:
        t = self.t
        steps.probe(t.model, micro_batch, seq_len, t.device, t._autocast)
