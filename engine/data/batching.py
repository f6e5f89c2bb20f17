"""Batches with dynamic padding, grouped by length.

Padding every example to a fixed 512 tokens wastes most of the compute on variable
length chat data. Here each epoch is shuffled, cut into windows of 64 groups, sorted by
length inside a window and cut into groups, and the groups are shuffled: consecutive
examples have similar lengths, so a micro-batch is padded only to its own longest one,
while the order across the epoch stays random. A micro-batch is the next few examples of
that flat order, so halving the micro-batch (out-of-memory recovery) keeps exactly the
same examples in the same step.

Packing (TrainConfig.packing): a step's examples are laid end to end in rows of at most
max_seq_len tokens (first-fit decreasing, spread evenly over as few rows: pack_evenly),
so a forward pass carries several short examples per row instead of one padded one.
Position ids restart at 0 for every example; from them transformers builds a
block-diagonal causal mask (attention_mask None, and no KV cache: models/loss.py), so no
token attends across examples, and the first token of each example is never a target
(it would be predicted from the previous example's last token).
"""

from __future__ import annotations

import os
import random
from typing import Sequence

import numpy as np

from .example import Example
from .render import IGNORE

WINDOW_GROUPS = 64
# On a GPU, batch widths are rounded up to a multiple of this many tokens (never past the
# plan's length): the GPU libraries plan each new shape on the host (cuBLAS's heuristics,
# cuDNN's attention graphs: ~3 ms per new shape on an H200, bench/README.md), and packed
# steps made a new width nearly every step. The extra positions are padding: no loss, no
# attention from real tokens. The CPU has no such planning, so it gets no rounding.
# TUNEDESK_PAD_MULTIPLE=1 turns it off (the benchmarks measure it).
GPU_PAD_MULTIPLE = int(os.environ.get("TUNEDESK_PAD_MULTIPLE", "64"))


def padded_width(width: int, cap: int | None = None, multiple: int = 1) -> int:
    rounded = -(-width // multiple) * multiple
    return max(width, min(rounded, cap)) if cap else rounded


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


def collate(examples: Sequence[Example], pad_id: int, cap: int | None = None, multiple: int = 1):
    """Right-padded tensors: input_ids, attention_mask, labels (IGNORE on padding), as wide
    as the longest example rounded up to `multiple` (at most `cap`)."""
    import torch

    width = padded_width(max(len(e) for e in examples), cap, multiple)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e)
        ids[row, :n] = torch.from_numpy(np.asarray(e.input_ids, dtype=np.int64))
        labels[row, :n] = torch.from_numpy(np.asarray(e.labels, dtype=np.int64))
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of `lengths` in rows of at most `capacity` tokens (first-fit decreasing):
    few rows, and the same examples whatever their order."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(capacity - lengths[i])
    return rows


def pack_evenly(lengths: Sequence[int], capacity: int, step: int = 1) -> list[list[int]]:
    """As few rows as pack_rows makes at `capacity`, each as short as it can be: the
    narrowest row length (searched in `step`s) at which first-fit decreasing still needs no
    more rows. A micro-batch is as wide as its fullest row, and first-fit fills the first
    rows to the brim and leaves the last one short, so that one row's padding was computed
    in every row of its micro-batch: on instruction data an eighth of a packed step's tokens
    (bench/padding.py). The same rows and micro-batches, never wider than the plan's length."""
    rows = pack_rows(lengths, capacity)
    if len(rows) < 2:
        return rows
    step = max(1, step)
    width = -(-max(max(lengths), -(-sum(lengths) // len(rows))) // step) * step
    while width < capacity:
        narrower = pack_rows(lengths, width)
        if len(narrower) <= len(rows):
            return narrower
        width += step
    return rows


def collate_packed(rows: Sequence[Sequence[Example]], pad_id: int, cap: int | None = None, multiple: int = 1):
    """Rows of packed examples: input_ids, position_ids, labels, and attention_mask (1 on
    real tokens: for counting; the model gets None and attends by position ids)."""
    import torch

    width = padded_width(max(sum(len(e) for e in row) for row in rows), cap, multiple)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        at = 0
        for e in row:
            n = len(e)
            ids[r, at : at + n] = torch.from_numpy(np.asarray(e.input_ids, dtype=np.int64))
            labels[r, at + 1 : at + n] = torch.from_numpy(np.asarray(e.labels[1:], dtype=np.int64))
            pos[r, at : at + n] = torch.arange(n)
            mask[r, at : at + n] = 1
            at += n
        pos[r, at:] = torch.arange(width - at)  # the padding is one more block of its own
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "position_ids": pos}
