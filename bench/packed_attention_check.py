"""Variable-length flash attention for packed rows (engine/models/packed_attention.py) against
SDPA's masked path, on the GPU: the same loss and LoRA gradients in bf16, and the time of a
training step (forward, checkpointed recompute, backward) of a few decoder layers.

    python3 -m bench.packed_attention_check --out bench/results/packed_attention/check.json

Each preset's (or bench/archs/ architecture's) shape is cut to --layers decoder layers
(attention does not depend on depth), random bf16 weights, LoRA r16 on every linear layer as
the engine adds it, packed rows of instruction-style lengths (bench/synthetic.py) at the 1.5B
12 GB plan's width. The CPU
tests (tests/test_packed_attention.py) check the same path with SDPA per example in place of
the flash kernel; this is the kernel's own check.
"""

from __future__ import annotations

import copy
import time

from bench.child import bench_parser, save_json


def _model(preset: str, layers: int):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from engine.config import LoraConfig
    from engine.models.loading import add_lora

    from bench.fit_check import shape_values

    values = shape_values(preset)
    values["num_hidden_layers"] = layers
    cfg = AutoConfig.for_model(values.pop("model_type"), **values)
    torch.manual_seed(0)
    with torch.device("cuda"):
        base = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model = add_lora(base, LoraConfig(r=16, alpha=32, dropout=0.0), gradient_checkpointing=True)
    base.set_attn_implementation("sdpa")  # add_lora put it on the packed kernel: this is the masked path
    for n, p in model.named_parameters():
        if p.requires_grad:  # B is zero at the start: give it values so every gradient is non-zero
            p.data.normal_(0, 0.02)
    return model


def _batch(rows: int, width: int, seed: int):
    import numpy as np

    from bench.synthetic import instruction_lengths
    from engine.data.batching import collate_packed, pack_evenly
    from engine.data.example import Example

    rng = np.random.default_rng(seed)
    lengths = [n for n in instruction_lengths(rows * 12, seed) if n <= width]
    examples = [Example(i, rng.integers(0, 30000, n).astype(np.int32), np.arange(n) > n // 3)
                for i, n in enumerate(lengths)]
    packed = pack_evenly([len(e) for e in examples], width)[:rows]
    return collate_packed([[examples[i] for i in row] for row in packed], pad_id=0, cap=width, multiple=64)


def _step(model, batch):
    import torch

    from engine.models.loss import batch_loss_sum

    model.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = batch_loss_sum(model, batch, torch.device("cuda"))
    loss.backward()
    return loss.detach().float()


def case(preset: str, layers: int, rows: int, width: int, reps: int) -> dict:
    import torch

    from engine.models import packed_attention as pa

    masked = _model(preset, layers).train()
    packed = copy.deepcopy(masked)
    reason = pa.packed_attention_unavailable(packed)
    out: dict = {"preset": preset, "layers": layers, "unavailable": reason}
    if reason:
        return out
    pa.enable_packed_attention(packed)
    batch = _batch(rows, width, seed=1)
    seg = int((batch["position_ids"] == 0).sum())
    out.update(rows=rows, width=int(batch["input_ids"].shape[1]), examples=seg,
               real_tokens=int(batch["attention_mask"].sum()))
    result = {}
    for name, model in (("masked", masked), ("packed", packed)):
        loss = _step(model, batch)
        grads = {n: p.grad.float().clone() for n, p in model.named_parameters() if p.grad is not None}
        for _ in range(2):
            _step(model, batch)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        for _ in range(reps):
            _step(model, batch)
        torch.cuda.synchronize()
        result[name] = (loss, grads, (time.perf_counter() - t) / reps, torch.cuda.max_memory_allocated() / 2**30)
    (lm, gm, tm, mm), (lp, gp, tp, mp) = result["masked"], result["packed"]
    worst = max(float((gp[n] - gm[n]).norm() / gm[n].norm().clamp_min(1e-12)) for n in gm)
    out.update(loss_masked=float(lm), loss_packed=float(lp), loss_rel_diff=float(abs(lp - lm) / abs(lm)),
               grads=len(gm), worst_grad_rel_diff=worst,
               step_ms_masked=round(tm * 1e3, 2), step_ms_packed=round(tp * 1e3, 2), speedup=round(tm / tp, 3),
               peak_alloc_gib_masked=round(mm, 3), peak_alloc_gib_packed=round(mp, 3))
    # bf16 sums over different tile orders: agreement to ~1% is what two correct kernels give
    out["ok"] = out["loss_rel_diff"] < 1e-2 and worst < 5e-2
    return out


def main() -> None:
    ap = bench_parser("deepseek-r1-distill-qwen-1.5b,llama-3.1-8b", workdir="/tmp/packed_attention")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--rows", type=int, default=13)
    ap.add_argument("--width", type=int, default=2112)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    import torch

    rows = []
    for preset in a.presets.split(","):
        rows.append(case(preset, a.layers, a.rows, a.width, a.reps))
        print(rows[-1], flush=True)
        torch.cuda.empty_cache()
    save_json(a.out, {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows})


if __name__ == "__main__":
    main()
