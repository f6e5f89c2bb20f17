"""One tokenized row: its ids and which tokens carry loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .render import IGNORE


@dataclass
class Example:
    row: int
    input_ids: np.ndarray  # int32
    trained: np.ndarray  # bool, True where the token carries loss

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def labels(self) -> np.ndarray:
        return np.where(self.trained, self.input_ids, IGNORE)


@dataclass
class Pair:
    """One preference row (DPO, ORPO): the same prompt answered twice, the chosen answer and
    the rejected one, each a whole tokenized sequence with only its answer trained."""

    row: int
    chosen: Example
    rejected: Example

    def __len__(self) -> int:
        """Tokens of both sequences: what a step spends on this row."""
        return len(self.chosen) + len(self.rejected)

    @property
    def longest(self) -> int:
        """The longer sequence: what a padded batch and the plan's length must hold."""
        return max(len(self.chosen), len(self.rejected))

    @property
    def input_ids(self) -> np.ndarray:
        """Both sequences' ids, for counting and checks (never a model input)."""
        return np.concatenate([self.chosen.input_ids, self.rejected.input_ids])

    @property
    def trained(self) -> np.ndarray:
        """Both sequences' trained masks, for counting (never a model input)."""
        return np.concatenate([self.chosen.trained, self.rejected.trained])


def answered(e: Example | Pair) -> Example:
    """The sequence whose answer is the row's reference: a pair's chosen one (Compare,
    the end-of-run check, supervised training on a preference file)."""
    return e.chosen if isinstance(e, Pair) else e
