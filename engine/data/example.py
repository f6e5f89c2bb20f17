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
