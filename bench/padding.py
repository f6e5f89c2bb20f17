"""How much of each batching scheme's compute is padding (CPU, no model needed).

    python3 -m bench.padding --out bench/results/padding/padding.json [--micro-batch 9] [--seq-len 2112]

On the benchmarks' instruction-style lengths (bench/synthetic.py: median ~200, p95 ~800,
max 2,048), one epoch is batched four ways, with the engine's own functions:
- pad_512: the seed recipe, every example padded (or cut) to 512 tokens, batch 2;
- random: dynamic padding (each micro-batch padded to its own longest), random order;
- grouped: dynamic padding in the engine's length-grouped order (engine/data/batching.py);
- packed_ffd: rows of up to --seq-len tokens, first-fit decreasing (the engine before
  issue 16's third session), per step of micro-batch x accumulation examples;
- packed: the same rows spread evenly (engine/data/batching.py pack_evenly, widths in
  steps of 64 as on a GPU): what the engine does now.
Useful share = real tokens / tokens computed. A transformer's step time is close to
linear in the tokens it computes at these lengths, so 1 / useful share is the
compute each scheme spends per real token (the GPU measurements are in bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from bench.child import save_json
from bench.synthetic import instruction_lengths
from engine.data.batching import GPU_PAD_MULTIPLE, epoch_order, pack_evenly, pack_rows
from engine.data.example import Example


def padded_tokens(lengths: list[int], batches: list[list[int]], pad_to: int | None = None) -> int:
    return sum(len(b) * (pad_to or max(lengths[i] for i in b)) for b in batches)


def shares(lengths: np.ndarray, micro_batch: int, grad_accum: int, seq_len: int, seed: int = 0) -> dict[str, float]:
    n = [int(x) for x in lengths]
    real = sum(n)
    order = list(range(len(n)))
    random.Random(seed).shuffle(order)
    cut = lambda o, k: [o[i : i + k] for i in range(0, len(o), k)]  # noqa: E731
    examples = [Example(i, np.zeros(x, np.int32), np.ones(x, bool)) for i, x in enumerate(n)]
    grouped = epoch_order(examples, micro_batch, seed, 0)
    step = micro_batch * grad_accum
    # pack_rows numbers a step's examples from 0; micro-batches of rows are made per step
    def packed(pack) -> float:
        # pack numbers a step's examples from 0; micro-batches of rows are made per step, each
        # padded to its fullest row
        steps = [[[s[j] for j in r] for r in pack([n[i] for i in s])] for s in cut(grouped, step)]
        return round(real / sum(len(b) * max(sum(n[i] for i in r) for r in b) for rows in steps for b in cut(rows, micro_batch)), 3)

    return {
        "pad_512": round(sum(min(x, 512) for x in n) / padded_tokens(n, cut(order, 2), pad_to=512), 3),
        "random": round(real / padded_tokens(n, cut(order, micro_batch)), 3),
        "grouped": round(real / padded_tokens(n, cut(grouped, micro_batch)), 3),
        "packed_ffd": packed(lambda ls: pack_rows(ls, seq_len)),
        "packed": packed(lambda ls: pack_evenly(ls, seq_len, GPU_PAD_MULTIPLE)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--micro-batch", type=int, default=13, help="the 1.5B plan on a 12 GB card")
    ap.add_argument("--grad-accum", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=2112)
    a = ap.parse_args()
    result = {"micro_batch": a.micro_batch, "grad_accum": a.grad_accum, "seq_len": a.seq_len,
              "useful_share": shares(instruction_lengths(), a.micro_batch, a.grad_accum, a.seq_len)}
    print(json.dumps(result))
    save_json(a.out, result)


if __name__ == "__main__":
    main()
