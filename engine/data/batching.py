"""Batches with dynamic padding, grouped by length.

Padding every example to a fixed 512 tokens wastes most of the compute on variable
length chat data. Here each epoch is shuffled, cut into windows of 64 groups, sorted by
length inside a window and cut into groups, and the groups are shuffled: consecutive
examples have similar lengths, so a micro-batch is padded only to its own longest one,
while the order across the epoch stays random. A micro-batch is the next few examples of
that flat order, so halving the micro-batch (out-of-memory recovery) keeps exactly the
same examples in the same step.
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np

from .prepare import Example
from .render import IGNORE

WINDOW_GROUPS = 64


def epoch_order(examples: Sequence[Example], group: int, seed: int, epoch: int) -> list[int]:
    """The example order of one epoch; deterministic in (group, seed, epoch)."""
    order = list(range(len(examples)))
    random.Random(seed * 1000 + epoch).shuffle(order)
    window = group * WINDOW_GROUPS
    groups: list[list[int]] = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: len(examples[i]))
        groups += [chunk[i : i + group] for i in range(0, len(chunk), group)]
    # Shuffle the groups too, so the longest ones do not always come last in a window.
    random.Random(seed * 1000 + epoch + 1).shuffle(groups)
    return [i for g in groups for i in g]


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
