"""Synthetic token lengths of instruction-style data: median ~200, p95 ~800, max 2,048."""

import numpy as np


def instruction_lengths(n: int = 3000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(200), 0.85, n), 24, 2048).astype(int)


WORDS = ("the a of to and in is it you that was for on are with as his they be at one have this from or had by "
         "word but what some we can out other were all there when up use your how said an each she which do their "
         "time if will way about many then them write would like so these her long make thing see him two has look "
         "more day could go come did number sound no most people my over know water than call first who may down").split()


def write_instruction_jsonl(path, n: int = 400, seed: int = 0) -> None:
    """Question/answer rows whose token lengths follow instruction_lengths (one common word ~ one token)."""
    import json

    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for length in instruction_lengths(n, seed):
            q = max(4, int(length * 0.2))
            words = rng.choice(WORDS, size=length)
            f.write(json.dumps({"question": " ".join(words[:q]) + "?", "answer": " ".join(words[q:]) + "."}) + "\n")
