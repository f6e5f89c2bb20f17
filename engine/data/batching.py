"""Batches with dynamic padding, grouped by length.

Padding every example to a fixed 512 tokens wastes most of the compute on variable
length chat data. Here each epoch is shuffled, cut into windows of 64 micro-batches,
and sorted by length inside a window, so a micro-batch holds examples of similar length
and is padded only to its own longest one, while the order across windows stays random.
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np

from .prepare import Example
from .render import IGNORE

WINDOW_BATCHES = 64


def epoch_batches(examples: Sequence[Example], micro_batch: int, seed: int, epoch: int) -> list[list[int]]:
    """Index lists of the micro-batches of one epoch; deterministic in (seed, epoch)."""
    order = list(range(len(examples)))
    random.Random(seed * 1000 + epoch).shuffle(order)
    window = micro_batch * WINDOW_BATCHES
    batches: list[list[int]] = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: len(examples[i]))
        batches += [chunk[i : i + micro_batch] for i in range(0, len(chunk), micro_batch)]
    # Shuffle the batches too, so the longest ones do not always come last in a window.
    random.Random(seed * 1000 + epoch + 1).shuffle(batches)
    return batches


def eval_batches(examples: Sequence[Example], micro_batch: int) -> list[list[int]]:
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]))
    return [order[i : i + micro_batch] for i in range(0, len(order), micro_batch)]


def collate(examples: Sequence[Example], pad_id: int):
    """Right-padded tensors: input_ids, attention_mask, labels (IGNORE on padding)."""
    import torch

    width = max(len(e) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e)
        ids[row, :n] = torch.from_numpy(np.asarray(e.input_ids, dtype=np.int64))
        labels[row, :n] = torch.from_numpy(np.asarray(e.labels, dtype=np.int64))
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
