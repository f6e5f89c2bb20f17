"""Memory levers for long sequences, one at a time, on the 7B / 8B shapes (GPU machine).

    python3 -m bench.levers --tokenizer .gpu/tok --out bench/results/levers/levers.json \\
        [--presets deepseek-r1-distill-qwen-7b,deepseek-r1-distill-llama-8b] [--lengths 2048,8192] \\
        [--levers full_logits,chunked_ce,dropout0,offload] [--steps 3]

One process per preset loads the random-weight model the way the planner sets up a
small card (4-bit NF4, gradient checkpointing, LoRA r16 on every linear layer with
dropout 0.05, 8-bit AdamW, the embedding table in RAM), then measures batch-1 steps at
each length (--steps, default 3, every token trained; the first is not timed) while adding
one lever at a time, each on top of the ones before:

    full_logits  the stock loss: the model's full [tokens x vocab] logits (the reference)
    chunked_ce   TuneDesk's chunked linear cross-entropy (engine/models/loss.py)
    dropout0     LoRA dropout off (engine/lean.no_lora_dropout)
    offload      checkpointed layer inputs in pinned RAM (engine/lean.offload_checkpoints)
                 = lean memory
    liger_ce     liger-kernel's fused linear cross-entropy instead of TuneDesk's chunked one
    liger_kernels  liger-kernel's Triton RMSNorm, SwiGLU and RoPE in the decoder as well

--levers picks some of them, in this order (the liger rows need liger-kernel and Triton).

It records peak allocated / reserved memory (no allocator cap: the peak is what the step
needs) and tokens/s, beside the memory model's estimate for the same settings.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path

from bench.child import (
    GiB,
    bench_parser,
    child_args,
    random_model,
    report,
    run_child,
    save_json,
)

LEVERS = ["full_logits", "chunked_ce", "dropout0", "offload", "liger_ce", "liger_kernels"]


def child(a) -> dict:
    import torch
    import torch.nn.functional as F

    from engine.config import LoraConfig, ModelConfig, TrainConfig
    from engine.models import lean, model_info
    from engine.models.loading import add_lora, choose_placement, load_model
    from engine.models.loss import lm_parts, loss_sum
    from engine.training.optim import make_optimizer

    info = model_info.from_folder(Path(a.model))
    cfg = ModelConfig(source=a.model, quantization="4bit", gradient_checkpointing=True,
                      embeddings_on_cpu=not info.tied_embeddings)
    placement = choose_placement(cfg, "cuda", print)
    model = add_lora(load_model(Path(a.model), cfg, placement, embedding_module=info.embedding_module),
                     LoraConfig(r=16, alpha=32, dropout=0.05), gradient_checkpointing=True)
    model.train()
    opt = make_optimizer(model, TrainConfig(lr=1e-4), "adamw_8bit")

    def full_logits_loss(ids):
        logits = model(input_ids=ids).logits
        return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten(), reduction="sum")

    def liger_loss(ids):
        from liger_kernel.transformers.functional import (
            liger_fused_linear_cross_entropy,
        )

        decoder, head = lm_parts(model)
        hidden = decoder(input_ids=ids).last_hidden_state
        return liger_fused_linear_cross_entropy(hidden[:, :-1].flatten(0, 1), head.weight, ids[:, 1:].flatten(),
                                                reduction="sum")

    def liger_kernels(m) -> str:
        from liger_kernel.transformers.monkey_patch import (
            _apply_liger_kernel_to_instance,
        )

        _apply_liger_kernel_to_instance(m.get_base_model(), rope=True, rms_norm=True, swiglu=True,
                                        cross_entropy=False, fused_linear_cross_entropy=False)
        return "rope, rms_norm, swiglu"

    losses = {"full_logits": full_logits_loss, "liger_ce": liger_loss, "liger_kernels": liger_loss}

    def measure(length: int, lever: str) -> dict:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        t0, forward_peak = 0.0, None
        try:
            for i in range(a.steps):
                if i == 1:
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                ids = torch.randint(0, min(info.vocab_size, 49152), (1, length), device="cuda")
                with torch.autocast("cuda", dtype=placement.dtype):
                    loss = losses.get(lever, lambda i: loss_sum(model, i, None, i))(ids) / length
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
                "tokens_per_s": round((a.steps - 1) * length / (time.perf_counter() - t0)) if ok else None,
                "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / GiB, 3),
                "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / GiB, 3),
                "forward_peak_allocated_gib": forward_peak}

    apply = {"dropout0": lean.no_lora_dropout, "offload": lean.offload_checkpoints, "liger_kernels": liger_kernels}
    rows = []
    for lever in a.levers.split(","):
        changed = apply[lever](model) if lever in apply else None
        for length in map(int, a.lengths.split(",")):
            rows.append({"lever": lever, "modules_changed": changed, **measure(length, lever)})
            print(json.dumps(rows[-1]), flush=True)
    return {"rows": rows}


def estimate(info, lever: str, length: int) -> float | None:
    """The memory model's GiB for a row (None for the full-logits reference it does not model)."""
    from engine.fit.memory import StepShape, peak_bytes

    if lever not in ("chunked_ce", "offload"):
        return None  # the model knows the planner's settings: chunked CE, and lean memory as a whole
    shape = StepShape("4bit", 2, 1, length, True, 16, optimizer="adamw_8bit",
                      embeddings_on_cpu=not info.tied_embeddings, lean=lever == "offload")
    return round(peak_bytes(info, shape) / GiB, 3)


def main() -> None:
    ap = bench_parser("deepseek-r1-distill-qwen-7b,deepseek-r1-distill-llama-8b")
    ap.add_argument("--lengths", default="2048,8192")
    ap.add_argument("--steps", type=int, default=3, help="steps per row; the first is not timed")
    ap.add_argument("--levers", default=",".join(LEVERS[:4]), help="some of " + ",".join(LEVERS))
    a = ap.parse_args()
    from engine.models import model_info

    out = []
    for name in a.presets.split(","):
        folder = random_model(name, a.workdir, a.tokenizer)
        info = model_info.from_preset(name)
        r = run_child("bench.levers", "--model", folder, "--lengths", a.lengths, "--levers", a.levers, "--steps", a.steps)
        for row in r.get("rows", []):
            row["estimate_gib"] = estimate(info, row["lever"], row["length"])
        out.append({"preset": name, **r})
        save_json(a.out, {"presets": out})


if __name__ == "__main__":
    if "--child" in sys.argv:
        report(child(child_args(model=str, lengths=str, levers=str, steps=int)))
    else:
        main()
