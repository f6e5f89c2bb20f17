"""Causal-LM loss as a sum over trained tokens.

Summing (not averaging) per micro-batch and dividing by the trained tokens of the whole
accumulation window gives every token the same weight, however the window is split
into micro-batches (HF's per-batch mean does not). The logits are turned into fp32 one
chunk of rows at a time, so a 150k vocabulary never exists as a full fp32 tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data.render import IGNORE

CHUNK_TOKENS = 1024


def loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of next-token cross-entropy over positions whose label is not IGNORE."""
    vocab = logits.shape[-1]
    shift_logits = logits[:, :-1, :].reshape(-1, vocab)
    shift_labels = labels[:, 1:].reshape(-1).to(logits.device)
    keep = shift_labels != IGNORE
    shift_logits, shift_labels = shift_logits[keep], shift_labels[keep]
    total = logits.new_zeros((), dtype=torch.float32)
    for a in range(0, shift_labels.numel(), CHUNK_TOKENS):
        total = total + F.cross_entropy(
            shift_logits[a : a + CHUNK_TOKENS].float(), shift_labels[a : a + CHUNK_TOKENS], reduction="sum"
        )
    return total


def count_trained(labels: torch.Tensor) -> int:
    return int((labels[:, 1:] != IGNORE).sum())
