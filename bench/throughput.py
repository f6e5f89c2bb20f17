"""The seed-tutorial recipe against TuneDesk: same model, data and simulated card (GPU machine).

    python3 -m bench.throughput --tokenizer .gpu/tok --out bench/results/throughput/throughput.json \\
        [--preset deepseek-r1-distill-qwen-1.5b] [--cards 12,8] [--steps 10] [--variants seed,tunedesk,packed,packed_seed_mem]

The model is the preset's architecture with random weights (bench/planner_check.py says
why that is enough); the data are question/answer rows whose token lengths have median
~200 and p95 ~800, max 2,048 (bench/synthetic.py). Cards are simulated by capping the
allocator: 8 GB -> 7.0 GiB, 12 GB -> 10.5 GiB. Each variant runs in its own process:
- seed: the recipe tutorials teach, exactly: fp16 weights, LoRA r16 on q_proj/v_proj,
  every example padded (and truncated) to 512 tokens, batch 2 x accumulation 4,
  labels = input_ids, the model's own cross-entropy over the full logits;
- tunedesk: `tunedesk train` with its automatic plan (the card, the data's lengths);
- packed: the same with --packing (a step's examples laid end to end in rows);
- packed_stock / packed_cast / packed_fused / packed_dropout0 / packed_compiled / packed_lora_stock: the
  speed levers of issue 16 (engine/models/speed.py) one at a time (LEVER_VARIANTS);
- packed_seed_mem: packed, on a card of only the memory the seed recipe reserved on it
  (TuneDesk plans for whatever budget it is given: same peak, how much faster?).
Useful tokens are the tokens a step attends to and learns from, padding excluded;
tokens/s is over the steps after `--warmup`, without the evaluations. Model FLOPs
utilization uses the common convention 6 x N x useful tokens per second (N = all
parameters, frozen ones included; attention FLOPs not counted) against the H100's dense
BF16/FP16 peak of 989 TFLOP/s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.child import (CAPS, GiB, bench_parser, cap_allocator, child_args, json_events, random_model, report,
                         run_child, run_folder, save_json)
from bench.synthetic import write_instruction_jsonl

PEAK_FLOPS = 989e12
# Packed runs with the speed levers (engine/models/speed.py) switched one by one; "packed"
# has every lever the engine adopts. (flags, environment)
LEVER_VARIANTS = {
    "packed_stock": ((), {"TUNEDESK_SLOW_PATHS": "cast,fused"}),  # no lever: the path before issue 16
    "packed_cast": ((), {"TUNEDESK_SLOW_PATHS": "fused"}),  # only the LoRA input kept in bf16
    "packed_fused": ((), {"TUNEDESK_SLOW_PATHS": "cast"}),  # only liger's RMSNorm / SwiGLU / RoPE
    "packed_dropout0": (("--lora-dropout", "0"), {}),  # every lever, and no LoRA dropout
    "packed_compiled": (("--lora-dropout", "0"), {"TUNEDESK_COMPILE": "1", "TUNEDESK_SLOW_PATHS": "fused"}),  # compile, not liger
    "packed_unpadded": ((), {"TUNEDESK_PAD_MULTIPLE": "1"}),  # batch widths not rounded (a new shape every step)
    "packed_first_fit": ((), {"TUNEDESK_SLOW_PATHS": "even"}),  # packed rows filled first-fit, not spread evenly
    "packed_cudnn": ((), {"TUNEDESK_SDPA": "cudnn"}),  # cuDNN's attention (PyTorch's choice on Hopper) instead of flash
    "packed_lora_stock": ((), {"TUNEDESK_SLOW_PATHS": "lora"}),  # peft's LoRA forward, not one LoraBranch node per layer
    "packed_4bit": (("--quant", "4bit"), {}),  # every lever on a 4-bit base (bitsandbytes' layers under the branch)
    "packed_4bit_lora_stock": (("--quant", "4bit"), {"TUNEDESK_SLOW_PATHS": "lora"}),
    "packed_masked": ((), {"TUNEDESK_SLOW_PATHS": "varlen"}),  # packed rows through SDPA's block-diagonal mask
    "packed_4bit_masked": (("--quant", "4bit"), {"TUNEDESK_SLOW_PATHS": "varlen"}),
    # checkpointed layers' first pass with autograd on, the hooks dropping what it saves
    "packed_nonreentrant": ((), {"TUNEDESK_SLOW_PATHS": "reentrant"}),
    "packed_4bit_nonreentrant": (("--quant", "4bit"), {"TUNEDESK_SLOW_PATHS": "reentrant"}),
    # checkpointing forced on, the planner choosing the rest: for plans that choose none
    # (e.g. Qwen3-1.7B on 12 GB: micro-batch 1 without, against a larger one with it)
    "packed_checkpointed": (("--gradient-checkpointing",), {}),
}


def seed_child(a) -> dict:
    """The tutorial recipe, written the way the tutorials write it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cap_allocator(a.cap)
    tok = AutoTokenizer.from_pretrained(a.model)
    tok.pad_token = tok.pad_token or tok.eos_token
    rows = [json.loads(line) for line in open(a.data, encoding="utf-8")]
    texts = [f"### Question:\n{r['question']}\n\n### Answer:\n{r['answer']}{tok.eos_token}" for r in rows]
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float16, device_map={"": 0})
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
                                             task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    scaler = torch.amp.GradScaler("cuda")
    model.train()
    torch.cuda.reset_peak_memory_stats()
    useful = padded = 0
    at = 0
    t0 = time.perf_counter()
    try:
        for step in range(a.warmup + a.steps):
            if step == a.warmup:
                torch.cuda.synchronize()
                t0, useful, padded = time.perf_counter(), 0, 0
            for _ in range(4):  # gradient accumulation 4
                batch = [texts[(at + i) % len(texts)] for i in range(2)]
                at += 2
                enc = tok(batch, padding="max_length", truncation=True, max_length=512, return_tensors="pt").to("cuda")
                with torch.autocast("cuda", dtype=torch.float16):
                    loss = model(**enc, labels=enc["input_ids"]).loss / 4
                scaler.scale(loss).backward()
                useful += int(enc["attention_mask"].sum())
                padded += enc["input_ids"].numel()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        return {"ok": True, "useful_tokens_per_s": useful / seconds, "padded_tokens_per_s": padded / seconds,
                "useful_share": useful / padded, **_peaks()}
    except torch.OutOfMemoryError as e:
        return {"ok": False, "oom": True, "error": str(e).splitlines()[0], **_peaks()}


def _peaks() -> dict:
    import torch

    return {"peak_allocated_gib": round(torch.cuda.max_memory_allocated() / GiB, 3),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / GiB, 3)}


def tunedesk_run(a, cap: float, packing: bool, workdir: Path, extra: tuple[str, ...] = (), tag: str = "",
                 env: dict | None = None) -> dict:
    """`tunedesk train` (with `extra` flags and `env`) on the simulated card; tokens/s from its per-step events."""
    name = f"{'packed' if packing else 'tunedesk'}{tag}-{cap}"
    cmd = [sys.executable, "-m", "engine.cli", "train", str(a.data), "--model", str(a.model), "--max-steps",
           str(a.warmup + a.steps + 1), "--eval-every", "100000", "--out", str(workdir), "--name", name, "--json-events",
           "--packing" if packing else "--no-packing", *extra]
    env = {**os.environ, "TUNEDESK_SIMULATE_VRAM_GB": str(cap), "TUNEDESK_HOME": str(workdir / "home"), **(env or {})}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    events = json_events(out.stdout)
    progress = {e["step"]: e["elapsed_s"] for e in events if e["event"] == "progress"}
    metrics = {e["step"]: e for e in events if e["event"] == "metrics" and "tokens" in e}
    finished = next((e for e in events if e["event"] == "finished"), None)
    if not finished:
        return {"ok": False, "error": (out.stderr or out.stdout)[-800:]}
    # The last step's interval holds the final evaluation: measure warm-up+1 .. last-1.
    first, last = a.warmup, a.warmup + a.steps
    tokens = sum(metrics[s]["tokens"] for s in range(first + 1, last + 1))
    plan = json.loads((run_folder(events, workdir, name) / "plan.json").read_text())
    return {
        "ok": True,
        "useful_tokens_per_s": tokens / (progress[last] - progress[first]),
        "peak_allocated_gib": round(max(m["mem_bytes"] for m in metrics.values()) / GiB, 3),
        "peak_reserved_gib": round(max(m.get("mem_reserved_bytes", 0) for m in metrics.values()) / GiB, 3),
        "oom_recoveries": finished["summary"]["oom_recoveries"],
        "plan": {k: plan[k] for k in ("quantization", "gradient_checkpointing", "micro_batch", "grad_accum", "seq_len",
                                      "optimizer", "embeddings_on_cpu", "lean_memory", "lora_r", "estimate_bytes")},
        "calibration": plan.get("calibration"),  # the plan's largest step, measured before training
    }


def main() -> None:
    ap = bench_parser("deepseek-r1-distill-qwen-1.5b", cards="12,8", workdir="/tmp/throughput", preset_flag="--preset")
    ap.add_argument("--variants", default="seed,tunedesk,packed,packed_seed_mem")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    from engine.models import model_info

    a.workdir.mkdir(parents=True, exist_ok=True)
    a.model = random_model(a.preset, a.workdir, a.tokenizer)
    a.data = a.workdir / "instructions.jsonl"
    write_instruction_jsonl(a.data, 800)
    params = model_info.from_folder(a.model).params_total
    rows = []
    for card in map(int, a.cards.split(",")):
        cap = CAPS[card]
        for variant in a.variants.split(","):
            seed = next((r for r in rows if r["card_gb"] == card and r["variant"] == "seed" and r.get("ok")), None)
            if variant == "packed_seed_mem":
                if seed is None:
                    continue  # the seed recipe did not run on this card: no peak to match
                r = tunedesk_run(a, seed["peak_reserved_gib"], True, a.workdir)
            elif variant == "seed":
                r = run_child("bench.throughput", "--model", a.model, "--data", a.data, "--cap", cap, "--steps", a.steps,
                              "--warmup", a.warmup)
            elif variant in LEVER_VARIANTS:
                flags, env = LEVER_VARIANTS[variant]
                r = tunedesk_run(a, cap, True, a.workdir, flags, f"-{variant}", env)
            else:
                r = tunedesk_run(a, cap, variant == "packed", a.workdir)
            if r.get("useful_tokens_per_s"):
                r["mfu"] = round(6 * params * r["useful_tokens_per_s"] / PEAK_FLOPS, 4)
            rows.append({"preset": a.preset, "card_gb": card, "cap_gib": seed["peak_reserved_gib"] if variant == "packed_seed_mem" else cap,
                         "variant": variant, **r})
            print(json.dumps(rows[-1]), flush=True)
            save_json(a.out, {"params": params, "rows": rows})
    for card in map(int, a.cards.split(",")):
        by = {r["variant"]: r for r in rows if r["card_gb"] == card}
        base = by.get("seed", {}).get("useful_tokens_per_s")
        for v, r in by.items():
            if base and r.get("useful_tokens_per_s"):
                r["speedup_vs_seed"] = round(r["useful_tokens_per_s"] / base, 2)
    save_json(a.out, {"params": params, "rows": rows})


if __name__ == "__main__":
    if "--child" in sys.argv:
        report(seed_child(child_args(model=str, data=str, cap=float, steps=int, warmup=int)))
    else:
        main()
