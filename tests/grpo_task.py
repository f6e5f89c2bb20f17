"""Toy checkable tasks for GRPO's tests and demo: two-digit additions (a numeric answer a
match reward checks) and short questions. Written for the tests, not taken from anywhere."""

from __future__ import annotations

import json
import random
from pathlib import Path


def write_additions(path: Path, n: int = 40, seed: int = 0) -> Path:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(10, 49), rng.randint(10, 49)
        rows.append({"question": f"What is {a} + {b}? Reply with the number only.", "answer": str(a + b)})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
