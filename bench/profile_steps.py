"""Where a TuneDesk training step spends its time, and how many FLOPs it computes per
useful token (GPU machine; `--dry` runs the same code on the CPU with the demo model).

    python3 -m bench.profile_steps --tokenizer .gpu/tok --out bench/results/profile/profile.json \\
        --cases deepseek-r1-distill-qwen-1.5b:12,deepseek-r1-distill-llama-8b:8 [--steps 2] [--warmup 2]

Each case runs in its own process through the product's path: `tunedesk train`'s own
argument parser and request (engine/cli.py train_config), the Trainer's setup with the
automatic plan and calibration on the simulated card, then `--warmup` optimizer steps
untimed and `--steps` steps under torch.profiler. The kernels are sorted into the costs
issue 16 asks about (matmuls, attention, LoRA's small matmuls cannot be told from the
large ones by name, so they are counted with the matmuls; see `lora_matmul_share`),
and the step's wall time is set against the GPU's busy time: the difference is the
host's (Python, launches, syncs). One more step runs under
torch.utils.flop_counter.FlopCounterMode, which counts every matmul and attention call
as dispatched, so recomputation (checkpointing) and padding are included: FLOPs per
useful token is a hardware-independent figure of the work a variant does. The same steps
also run without any profiler (the step's true wall time) and under cProfile (which Python
functions the host's time goes to: `host_python_self_ms`, `host_python_total_ms`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from bench.child import CAPS, report, run_child, save_json

# Kernel-name fragments -> cost category; first match wins (lower-cased names).
CATEGORIES = (
    ("attention", ("flash", "fmha", "attention", "sdpa", "_efficient_attention", "cutlass_sm80_bf16_fwd")),
    ("dequantize_4bit_8bit", ("dequant", "kdequant", "kquant", "int8", "igemmlt")),
    ("cross_entropy", ("log_softmax", "softmax", "nll_loss", "cross_entropy", "logsumexp")),
    ("matmul", ("gemm", "sm90_xmma", "sm80_xmma", "cutlass", "cublas", "matmul", "gemv", "splitk", "nvjet")),
    ("optimizer", ("adam", "multi_tensor", "foreach", "optimizer", "kOptimizer")),
    ("norm_rope_act", ("rms", "norm", "rotary", "rope", "silu", "swiglu", "gelu")),
    ("copy_host_device", ("memcpy htod", "memcpy dtoh", "memcpy hto", "memcpy dto", "[memory]", "memcpy (pinned")),
    ("copy_on_device", ("memcpy dtod", "memset", "copy_", "cat", "index", "gather", "scatter")),
)


def categorize(name: str) -> str:
    n = name.lower()
    for cat, keys in CATEGORIES:
        if any(k.lower() in n for k in keys):
            return cat
    return "elementwise_other"


def _gqa_attention_formulas() -> dict:
    """torch's FLOP formulas for SDPA assume as many key/value heads as query heads; with
    grouped-query attention (enable_gqa) they raise. Count as if the key/value heads were
    repeated, which is the work the kernel does."""
    from torch.utils import flop_counter as fcm

    def wide(q, kv):
        return (kv[0], q[1], *kv[2:]) if kv[1] != q[1] else kv

    def fwd(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return fcm.sdpa_flop_count(query_shape, wide(query_shape, key_shape), wide(query_shape, value_shape))

    def bwd(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return fcm.sdpa_backward_flop_count(grad_out_shape, query_shape, wide(query_shape, key_shape),
                                            wide(query_shape, value_shape))

    ops = [op for op in fcm.flop_registry if "scaled_dot_product" in str(op)]
    formulas = {op: bwd if "backward" in str(op) else fwd for op in ops}

    # Packed rows through flash attention's variable-length form (engine/models/packed_attention.py):
    # each example's own square, by the same convention as SDPA's count (the whole square,
    # causal or not), so the figures compare with the masked path's.
    def each_example(q, cu, count):
        h, d = q.shape[-2], q.shape[-1]
        return sum(count((1, h, n, d)) for n in (cu[1:] - cu[:-1]).tolist() if n)

    def varlen_fwd(query, key, value, cu, *args, out_val=None, **kwargs) -> int:
        if cu is None:
            return fwd(query.transpose(1, 2).shape, key.transpose(1, 2).shape, value.transpose(1, 2).shape)
        return each_example(query, cu, lambda s: fcm.sdpa_flop_count(s, s, s))

    def varlen_bwd(grad_out, query, key, value, out, lse, cu, *args, out_val=None, **kwargs) -> int:
        if cu is None:
            return bwd(*(t.transpose(1, 2).shape for t in (grad_out, query, key, value)))
        return each_example(query, cu, lambda s: fcm.sdpa_backward_flop_count(s, s, s, s))

    varlen_fwd._get_raw = varlen_bwd._get_raw = True  # they read the boundaries' values, not only shapes
    import torch

    formulas[torch.ops.aten._flash_attention_forward] = varlen_fwd  # keyed by overload packet, as the registry is
    formulas[torch.ops.aten._flash_attention_backward] = varlen_bwd
    return formulas


def _host_python(trainer, steps: int, sync) -> dict:
    """The same steps without torch.profiler (whose per-operator bookkeeping inflates the
    host's share), timed, then once more under cProfile: which Python functions the host's
    time goes to, per step: their own time ("self") and with what they call ("total")."""
    import cProfile
    import pstats

    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    sync()
    unprofiled = (time.perf_counter() - t0) / steps
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        trainer.train_step()
    sync()
    prof.disable()
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (calls, primitive calls, self s, total s, callers)

    def where(key) -> str:
        file, line, name = key
        return f"{Path(file).parent.name}/{Path(file).name}:{line}({name})" if line else name

    def top(index: int, n: int) -> dict:
        rows = sorted(stats.items(), key=lambda kv: -kv[1][index])[:n]
        return {where(k): [round(v[index] * 1e3 / steps, 2), v[0] // steps] for k, v in rows}

    return {"wall_s_per_step_unprofiled": round(unprofiled, 4),
            "host_python_self_ms": top(2, 25), "host_python_total_ms": top(3, 25)}


def _profile_child(a) -> dict:
    from engine import cli
    from engine.hardware import keep_allocations_compact

    keep_allocations_compact()  # as `tunedesk` does first, before anything touches CUDA
    cli.quiet_libraries()
    import torch
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    from engine.reporting import Reporter
    from engine.training.train import Trainer

    args = cli.build_parser().parse_args(["train", a.data, "--model", a.model, "--max-steps", "1000", "--eval-every",
                                          "100000", "--out", a.workdir, "--name", a.name, *a.extra.split()])
    trainer = Trainer(cli.train_config(args), Reporter())
    trainer.setup()
    cuda = trainer.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(a.warmup):
        trainer.train_step()
    sync()
    useful, walls = 0, []
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(a.steps):
            t0 = time.perf_counter()
            useful += trainer.train_step()["tokens"]
            sync()
            walls.append(time.perf_counter() - t0)
    wall = sum(walls)
    host = _host_python(trainer, a.steps, sync)
    per_cat: dict[str, float] = {}
    kernels: dict[str, float] = {}
    syncs = launches = 0
    for e in prof.events():
        if e.name in ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaMemcpyAsync", "cudaEventSynchronize"):
            syncs += e.name.endswith("Synchronize")
        t = e.time_range.elapsed_us() if cuda and e.device_type.name == "CUDA" else 0
        if t:
            launches += 1
            per_cat[categorize(e.name)] = per_cat.get(categorize(e.name), 0.0) + t / 1e6
            kernels[e.name[:120]] = kernels.get(e.name[:120], 0.0) + t / 1e6
    busy = sum(per_cat.values())
    flops: dict = {}
    if cuda:  # a count, not a memory measurement: the counter's bookkeeping must not trip the card's cap
        torch.cuda.set_per_process_memory_fraction(1.0)
    try:
        fc = FlopCounterMode(display=False, custom_mapping=_gqa_attention_formulas())
        with fc:
            tokens = trainer.train_step()["tokens"]
        flops = {"flops_per_useful_token": round(fc.get_total_flops() / max(1, tokens)),
                 "flop_counter_by_op": {str(k): int(v) for k, v in sorted(fc.get_flop_counts().get("Global", {}).items(),
                                                                          key=lambda kv: -kv[1])}}
    except Exception as e:  # the profile above still stands
        flops = {"flop_count_error": f"{type(e).__name__}: {e}"[:300]}
    plan = trainer.plan.to_dict()
    return {
        "ok": True,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "plan": {k: plan.get(k) for k in ("quantization", "gradient_checkpointing", "micro_batch", "grad_accum", "seq_len",
                                          "lean_memory", "embeddings_on_cpu", "optimizer", "lora_r")},
        "packing": trainer.cfg.train.packing,
        "planned": {k: trainer.card.planned.get(k) for k in ("micro_batch", "grad_accum", "seq_len", "lean_memory")},
        "calibration_attempts": (trainer.card.calibration or {}).get("attempts"),
        "recoveries": trainer.card.recoveries,
        "steps": a.steps,
        "wall_s": round(wall, 3),
        "useful_tokens_per_s": round(useful / wall, 1),
        "gpu_busy_s": round(busy, 3),
        "host_gap_share": round(1 - busy / wall, 3) if cuda else None,
        "seconds_by_category": {k: round(v, 3) for k, v in sorted(per_cat.items(), key=lambda kv: -kv[1])},
        "share_by_category": {k: round(v / busy, 3) for k, v in sorted(per_cat.items(), key=lambda kv: -kv[1])} if busy else {},
        "top_kernels_s": {k: round(v, 4) for k, v in sorted(kernels.items(), key=lambda kv: -kv[1])[:25]},
        # Where the host's time goes: the operators with the most CPU time of their own (launch
        # overhead, Python-side bookkeeping), and how many were called per step.
        "top_host_ops_ms": {e.key[:80]: [round(e.self_cpu_time_total / 1e3 / a.steps, 2), e.count // a.steps]
                            for e in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:20]},
        "host_ops_per_step": sum(e.count for e in prof.key_averages()) // a.steps,
        **host,
        "host_syncs_per_step": round(syncs / a.steps, 1),
        "gpu_kernels_per_step": round(launches / a.steps),
        **flops,
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 1024**3, 3) if cuda else None,
    }


def main() -> None:
    from bench.child import bench_parser, random_model
    from bench.synthetic import write_instruction_jsonl

    ap = bench_parser("", workdir="/tmp/profile_steps")
    ap.add_argument("--cases", default="deepseek-r1-distill-qwen-1.5b:12,deepseek-r1-distill-llama-8b:8",
                    help="preset:card_gb, comma-separated")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--extra", default="--packing", help="more `tunedesk train` flags for every case")
    ap.add_argument("--dry", action="store_true", help="CPU: the demo model, no card cap")
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    data = a.workdir / "instructions.jsonl"
    write_instruction_jsonl(data, 800)
    rows = []
    for case in a.cases.split(","):
        preset, card = case.split(":")
        model = "demo" if a.dry else str(random_model(preset, a.workdir, a.tokenizer))
        if not a.dry:
            os.environ["TUNEDESK_SIMULATE_VRAM_GB"] = str(CAPS[int(card)])
        r = run_child("bench.profile_steps", "--model", model, "--data", data, "--workdir", a.workdir, "--name",
                      f"{preset}-{card}", "--steps", a.steps, "--warmup", a.warmup, f"--extra={a.extra}")
        rows.append({"preset": preset, "card_gb": int(card), "extra": a.extra, **r})
        print(json.dumps(rows[-1])[:3000], flush=True)
        save_json(a.out, {"rows": rows})
        if not a.dry and ("8b" in preset or "7b" in preset):
            import shutil

            shutil.rmtree(Path(a.workdir) / preset, ignore_errors=True)  # the disk holds ~3 of these


if __name__ == "__main__":
    if "--child" in sys.argv:
        from bench.child import child_args

        report(_profile_child(child_args(model=str, data=str, workdir=str, name=str, steps=int, warmup=int, extra=str)))
    else:
        main()
