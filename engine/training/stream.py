"""Which training examples come next: this epoch's order (grouped by length in units of
the planned micro-batch, shuffled per epoch from the seed), the position in it, and the
step's micro-batches collated (or packed) for the model. The position is what a
checkpoint keeps, so a resumed run continues with the very next examples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..data.batching import collate, collate_packed, epoch_order, pack_evenly, pack_rows
from ..models.speed import slow_path


@dataclass
class Position:
    """Where the data stream is: which epoch, and how many of its examples are used."""

    epoch: int = 0
    index: int = 0


class DataStream:
    def __init__(self, examples: list, group: int, seed: int) -> None:
        self.examples, self.group, self.seed = examples, group, seed
        self.pos = Position()
        self._order: tuple[int, list[int]] = (-1, [])

    def order(self, epoch: int) -> list[int]:
        if self._order[0] != epoch:
            self._order = (epoch, epoch_order(self.examples, self.group, self.seed, epoch))
        return self._order[1]

    def next_batch(self, size: int) -> list[int]:
        """The next micro-batch: the next examples of this epoch's order."""
        order = self.order(self.pos.epoch)
        if self.pos.index >= len(order):
            self.pos = Position(self.pos.epoch + 1, 0)
            order = self.order(self.pos.epoch)
        take = order[self.pos.index : self.pos.index + size]
        self.pos.index += len(take)
        return take

    @property
    def epoch_float(self) -> float:
        return self.pos.epoch + self.pos.index / max(1, len(self.examples))

    def mark(self) -> Position:
        return Position(self.pos.epoch, self.pos.index)

    def rewind(self, to: Position) -> None:
        """Back to `to`: a step that ran out of memory takes the same examples again."""
        self.pos = Position(to.epoch, to.index)

    def reshuffled(self, examples: list) -> None:
        """The rows were truncated anew (recovery shortened them): their order is drawn again."""
        self.examples, self._order = examples, (-1, [])
        self.pos.index = min(self.pos.index, len(examples))

    def state(self) -> dict[str, Any]:
        return {"epoch": self.pos.epoch, "index": self.pos.index, "group": self.group}

    def load(self, state: dict[str, Any]) -> None:
        self.pos, self.group, self._order = Position(state["epoch"], state["index"]), state["group"], (-1, [])


def step_batches(examples: list, idx: list[list[int]], micro_batch: int, seq_len: int, pad_id: int,
                 packing: bool, multiple: int = 1) -> list[dict[str, torch.Tensor]]:
    """A step's micro-batches: one example per row, or packed into rows of up to seq_len
    tokens in micro-batches of micro_batch rows (the planned shape, with less padding)."""
    if not packing:
        return [collate([examples[i] for i in b], pad_id, seq_len, multiple) for b in idx if b]
    chosen = [examples[i] for b in idx for i in b]
    # Widths are searched in the steps they are rounded to (8 on the CPU: a few tries a step).
    lengths = [len(e) for e in chosen]
    layout = pack_rows(lengths, seq_len) if slow_path("even") else pack_evenly(lengths, seq_len, max(multiple, 8))
    rows = [[chosen[i] for i in r] for r in layout]
    return [collate_packed(rows[k : k + micro_batch], pad_id, seq_len, multiple) for k in range(0, len(rows), micro_batch)]
