"""The longest sequence that trains at batch 1 on a simulated card (GPU machine).

    python3 -m bench.max_context --tokenizer .gpu/tok --out bench/results/max_context/max_context.json \\
        [--presets deepseek-r1-distill-qwen-7b,deepseek-r1-distill-llama-8b,llama-3.1-8b] [--cards 8,12]

For each preset and card (8 GB -> 7.0 GiB cap, 12 GB -> 10.5 GiB), one process loads the
random-weight model the way the planner sets it up for long sequences on a small card
(4-bit NF4, gradient checkpointing, lean memory, LoRA r16 on every linear layer, 8-bit
AdamW, the embedding table in RAM for untied models) and trains 5 steps (every token
trained) at a length, starting from the longest the planner predicts fits the same
budget: doubling until out of memory, then bisecting to STEP tokens. It records the
longest length that trained, its peak memory (allocated / reserved) and the planner's
prediction, so the memory model's long-sequence terms are checked against it.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

from bench.child import CAPS, GiB, bench_parser, cap_allocator, child_args, random_model, report, run_child, save_json

STEP = 512


def child(a) -> dict:
    import torch

    from engine.config import LoraConfig, ModelConfig, TrainConfig
    from engine.models import model_info
    from engine.models.loading import add_lora, choose_placement, load_model
    from engine.models.loss import loss_sum
    from engine.training.optim import make_optimizer

    cap_allocator(a.cap)
    info = model_info.from_folder(Path(a.model))
    cfg = ModelConfig(source=a.model, quantization="4bit", gradient_checkpointing=True,
                      embeddings_on_cpu=not info.tied_embeddings, lean_memory=True)
    placement = choose_placement(cfg, "cuda", print)
    model = add_lora(load_model(Path(a.model), cfg, placement, embedding_module=info.embedding_module),
                     LoraConfig(r=16, alpha=32), gradient_checkpointing=True, lean=True)
    model.train()
    opt = make_optimizer(model, TrainConfig(lr=1e-4), "adamw_8bit")

    def trains(length: int) -> dict | None:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        try:
            for _ in range(a.steps or 5):
                ids = torch.randint(0, min(info.vocab_size, 49152), (1, length), device="cuda")
                with torch.autocast("cuda", dtype=placement.dtype):
                    loss = loss_sum(model, ids, None, ids) / length
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            return {"length": length, "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / GiB, 3),
                    "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / GiB, 3)}
        except torch.OutOfMemoryError:
            opt.zero_grad(set_to_none=True)
            return None

    return longest(trains, a.start, a.limit)


def longest(trains, start: int, limit: int) -> dict:
    """Double from `start` (never past `limit`) until `trains(length)` returns None (out of
    memory), then bisect to STEP tokens: the longest length that trained and what trains()
    said of it. A search that trains `limit` itself ends there, marked as such."""
    best, low, high = None, 0, None
    length = max(STEP, min(start, limit) // STEP * STEP)
    while high is None:
        r = trains(length)
        if r is None:
            high = length
        else:
            best, low = r, length
            if length >= limit:  # as long as asked for: the search ends here
                return {"max_length": low, "at_max": best, "search_limit_reached": True}
            length = min(length * 2, limit)
    while high - low > STEP:  # bisect (below the start too, if it failed)
        mid = (low + high) // 2 // STEP * STEP
        r = trains(mid)
        best, low, high = (r, mid, high) if r else (best, low, mid)
    return {"max_length": low, "at_max": best}


def _planner_fits(info, budget: int, n: int) -> bool:
    """Does the planner fit examples of n tokens at batch 1 (without shortening them), with
    this machine's RAM as the product reads it (checkpoints wait in RAM at these lengths)?"""
    import numpy as np
    import psutil

    from engine.fit.plan import ram_budget
    from engine.fit.planner import plan

    vm = psutil.virtual_memory()
    p = plan(info, budget_bytes=budget, lengths=np.full(16, n), effective_batch=1,
             ram_bytes=ram_budget(vm.available, vm.total))
    return p.fits and p.seq_len >= n and p.micro_batch == 1


def planner_longest(preset: str, cap_gib: float, limit: int) -> int:
    """The longest batch-1 length (in STEPs, up to limit) the planner says fits this card."""
    from engine.fit.plan import budget_from_cap
    from engine.models import model_info

    info, budget = model_info.from_preset(preset), budget_from_cap(int(cap_gib * GiB))
    return max((n for n in range(STEP, limit + 1, STEP) if _planner_fits(info, budget, n)), default=0)


def main() -> None:
    ap = bench_parser("deepseek-r1-distill-qwen-7b,deepseek-r1-distill-llama-8b,llama-3.1-8b", cards="8,12")
    ap.add_argument("--limit", type=int, default=16384, help="do not try lengths past this")
    a = ap.parse_args()
    rows = []
    for name in a.presets.split(","):
        folder = random_model(name, a.workdir, a.tokenizer)
        for card in map(int, a.cards.split(",")):
            cap = CAPS[card]
            predicted = planner_longest(name, cap, a.limit)
            r = run_child("bench.max_context", "--model", folder, "--cap", cap, "--limit", a.limit,
                          "--start", predicted or 2048)
            rows.append({"preset": name, "card_gb": card, "cap_gib": cap, **r, "planner_max_length": predicted})
            print(json.dumps(rows[-1]), flush=True)
            save_json(a.out, {"rows": rows})


if __name__ == "__main__":
    if "--child" in sys.argv:
        report(child(child_args(model=str, cap=float, limit=int, start=int, steps=int)))
    else:
        main()
