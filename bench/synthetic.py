"""Synthetic token lengths of instruction-style data: median ~200, p95 ~800, max 2,048."""

import numpy as np


def instruction_lengths(n: int = 3000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(200), 0.85, n), 24, 2048).astype(int)
