"""Memory levers for long sequences, one at a time, on the 7B / 8B shapes (GPU machine).

    python3 -m bench.levers --tokenizer .gpu/tok --out bench/results/levers/levers.json \\
        [--presets deepseek-r1-distill-qwen-7b,deepseek-r1-distill-llama-8b] [--lengths 2048,8192]

One process per preset loads the random-weight model the way the planner sets up a
small card (4-bit NF4, gradient checkpointing, LoRA r16 on every linear layer with
dropout 0.05, 8-bit AdamW, the embedding table in RAM), then measures batch-1 steps at
each length (3 steps, every token trained; the first is not timed) while adding one
lever at a time, each on top of the ones before:

    full_logits  the stock loss: the model's full [tokens x vocab] logits (the reference)
    chunked_ce   TuneDesk's chunked linear cross-entropy (engine/loss.py)
    dropout0     LoRA dropout off (engine/lean.no_lora_dropout)
    offload      checkpointed layer inputs in pinned RAM (engine/lean.offload_checkpoints)
                 = lean memory

It records peak allocated / reserved memory (no allocator cap: the peak is what the step
needs) and tokens/s, beside the memory model's estimate for the same settings.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path

from bench.child import GiB, bench_parser, child_args, random_model, report, run_child

LEVERS = ["full_logits", "chunked_ce", "dropout0", "offload"]


def child(a) -> dict:
    import torch
    import torch.nn.functional as F

    from engine import lean, model_info
    from engine.config import LoraConfig, ModelConfig, TrainConfig
    from engine.loading import add_lora, choose_placement, load_model
    from engine.loss import loss_sum
    from engine.train import make_optimizer

    info = model_info.from_folder(Path(a.model))
    cfg = ModelConfig(source=a.model, quantization="4bit", gradient_checkpointing=True,
                      embeddings_on_cpu=not info.tied_embeddings)
    placement = choose_placement(cfg, "cuda", print)
    model = add_lora(load_model(Path(a.model), cfg, placement, embedding_module=info.embedding_module),
                     LoraConfig(r=16, alpha=32, dropout=0.05), gradient_checkpointing=True)
    model.train()
    opt = make_optimizer(model, TrainConfig(lr=1e-4, optimizer="adamw_8bit"))

    def full_logits_loss(ids):
        logits = model(input_ids=ids).logits
        return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten(), reduction="sum")

    def measure(length: int, full: bool) -> dict:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        t0, forward_peak = 0.0, None
        try:
            for i in range(3):
                if i == 1:
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                ids = torch.randint(0, min(info.vocab_size, 49152), (1, length), device="cuda")
                with torch.autocast("cuda", dtype=placement.dtype):
                    loss = (full_logits_loss(ids) if full else loss_sum(model, ids, None, ids)) / length
                if i == 0:  # is the peak in the forward pass or in the backward?
                    forward_peak = round(torch.cuda.max_memory_allocated() / GiB, 3)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            ok = True
        except torch.OutOfMemoryError:
            opt.zero_grad(set_to_none=True)
            ok = False
        return {"length": length, "ok": ok,
                "tokens_per_s": round(2 * length / (time.perf_counter() - t0)) if ok else None,
                "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / GiB, 3),
                "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / GiB, 3),
                "forward_peak_allocated_gib": forward_peak}

    apply = {"dropout0": lean.no_lora_dropout, "offload": lean.offload_checkpoints}
    rows = []
    for lever in LEVERS:
        changed = apply[lever](model) if lever in apply else None
        for length in map(int, a.lengths.split(",")):
            rows.append({"lever": lever, "modules_changed": changed, **measure(length, lever == "full_logits")})
            print(json.dumps(rows[-1]), flush=True)
    return {"rows": rows}


def estimate(info, lever: str, length: int) -> float | None:
    """The memory model's GiB for a row (None for the full-logits reference it does not model)."""
    from engine.memory import StepShape, peak_bytes

    if lever not in ("chunked_ce", "offload"):
        return None  # the model knows the planner's settings: chunked CE, and lean memory as a whole
    shape = StepShape("4bit", 2, 1, length, True, 16, optimizer="adamw_8bit",
                      embeddings_on_cpu=not info.tied_embeddings, lean=lever == "offload")
    return round(peak_bytes(info, shape) / GiB, 3)


def main() -> None:
    ap = bench_parser("deepseek-r1-distill-qwen-7b,deepseek-r1-distill-llama-8b")
    ap.add_argument("--lengths", default="2048,8192")
    a = ap.parse_args()
    from engine import model_info

    out = []
    for name in a.presets.split(","):
        folder = random_model(name, a.workdir, a.tokenizer)
        info = model_info.from_preset(name)
        r = run_child("bench.levers", "--model", folder, "--lengths", a.lengths)
        for row in r.get("rows", []):
            row["estimate_gib"] = estimate(info, row["lever"], row["length"])
        out.append({"preset": name, **r})
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"presets": out}, indent=2))


if __name__ == "__main__":
    if "--child" in sys.argv:
        report(child(child_args(model=str, lengths=str)))
    else:
        main()
