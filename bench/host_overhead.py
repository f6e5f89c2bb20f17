"""The host's share of a training step, without a GPU: a preset's layer stack at a tiny
width on the CPU, so the kernels cost next to nothing and a step's time is the Python and
dispatch work that, on a GPU, decides whether the card waits (bench/README.md, issue 16).

    python3 -m bench.host_overhead --out bench/results/host/host_overhead.json \\
        [--preset deepseek-r1-distill-qwen-1.5b] [--variants stock_checkpointing,every_lever] [--steps 20]

The preset's family and number of layers, widths cut to 32 (2 heads), LoRA r16 on every
linear layer with dropout 0.05 as the engine adds it, checkpointing on, one packed row of
two examples (32 tokens) through the engine's loss. Each variant sets TUNEDESK_SLOW_PATHS
before its model is built; forward and backward are timed apart over --steps steps after
3 untimed ones.
"""

from __future__ import annotations

import os
import time

from bench.child import bench_parser, save_json

# TUNEDESK_SLOW_PATHS for each variant (engine/models/speed.py)
VARIANTS = {"every_lever": "", "stock_checkpointing": "reentrant"}


def _model(preset: str):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from bench.fit_check import shape_values
    from engine.config import LoraConfig
    from engine.models.loading import add_lora

    values = shape_values(preset)
    values.update(hidden_size=32, intermediate_size=32, num_attention_heads=2, vocab_size=512,
                  bos_token_id=None, eos_token_id=None, pad_token_id=None)  # (ids of the full vocabulary)
    values.pop("head_dim", None)
    if values.get("num_key_value_heads"):
        values["num_key_value_heads"] = 1
    cfg = AutoConfig.for_model(values.pop("model_type"), **values)
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_config(cfg)
    model = add_lora(base, LoraConfig(r=16, alpha=32, dropout=0.05), gradient_checkpointing=True)
    model.train()
    return model, cfg.num_hidden_layers


def measure(preset: str, slow: str, steps: int) -> dict:
    import torch

    from engine.models.loss import batch_loss_sum

    os.environ["TUNEDESK_SLOW_PATHS"] = slow
    model, layers = _model(preset)
    ids = torch.randint(0, 512, (1, 32), generator=torch.Generator().manual_seed(1))
    batch = {"input_ids": ids, "labels": ids.clone(),
             "position_ids": torch.cat([torch.arange(12), torch.arange(20)]).unsqueeze(0)}
    forward = backward = 0.0
    for i in range(3 + steps):
        t0 = time.perf_counter()
        loss = batch_loss_sum(model, batch, torch.device("cpu"))
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if i >= 3:
            forward, backward = forward + t1 - t0, backward + t2 - t1
    return {"layers": layers, "forward_ms": round(forward / steps * 1e3, 2), "backward_ms": round(backward / steps * 1e3, 2),
            "step_ms": round((forward + backward) / steps * 1e3, 2)}


def main() -> None:
    ap = bench_parser("deepseek-r1-distill-qwen-1.5b", preset_flag="--preset")
    ap.add_argument("--variants", default="stock_checkpointing,every_lever")
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    rows = []
    for variant in a.variants.split(","):
        rows.append({"preset": a.preset, "variant": variant, **measure(a.preset, VARIANTS[variant], a.steps)})
        print(rows[-1], flush=True)
        save_json(a.out, {"rows": rows})


if __name__ == "__main__":
    main()
