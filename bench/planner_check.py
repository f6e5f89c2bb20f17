"""Does the planner's plan fit, and is its estimate right? (GPU machine, ../shared/GPU.md)

    python3 -m bench.planner_check --tokenizer .gpu/tok --out bench/results/planner_check.json \\
        [--presets a,b] [--cards 8,12,24] [--keep]
    python3 -m bench.planner_check --report [RESULTS.json MORE.json ...]   # no GPU needed

--report with no files merges the runs of record (RECORD, in results/planner_check/).

--report merges result files (the first row of a preset x card wins), re-plans every row
with the current planner, and writes planner_check.json + table.md beside the first file
with the acceptance checks: no out-of-memory at the planned setting, predicted peak within
15% of the measured (reserved) peak, and at least 60% of the budget used where the
micro-batch was capped. A row whose plan has changed since it was measured is flagged
for remeasuring, never silently compared with the new estimate.

For every preset and card (8 / 12 / 24 GB cards simulated by capping the allocator at
7.0 / 10.5 / 23 GiB, the card minus 1 GiB for the CUDA context and the desktop), it
plans for instruction-style data (median ~200, p95 ~800, max 2,048 tokens; see
bench/synthetic.py), builds the preset's architecture with random weights, loads it
through the engine's loader as planned, and runs 10 training steps (after 2 warm-up
steps) at the plan's largest shape, micro-batch x max_seq_len, every token trained:
the worst case a length-grouped epoch can produce. It records predicted peak, measured
peak (allocated and reserved), out-of-memory, tokens/s, and the share of the budget used.
Each measurement runs in its own process, so caps and caches never leak between runs.
Presets of identical shape (e.g. Llama-3.1-8B and DeepSeek-R1-Distill-Llama-8B) get the
same plan and the same memory: the second is recorded from the first's measurement
("measured_as"), not run again. --keep leaves the model folders in --workdir for other
benchmarks (bench/auto_plan_train.sh looks there).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from bench.child import CAPS, bench_parser, random_model, save_json
from bench.memory_probe import measure_in_child
from bench.synthetic import instruction_lengths
from engine.fit.memory import GiB
from engine.fit.plan import budget_from_cap
from engine.fit.planner import plan
from engine.models import model_info, presets


def main() -> None:
    ap = bench_parser(",".join(presets.names()), cards="8,12,24")
    ap.add_argument("--keep", action="store_true", help="keep the random-weight model folders")
    a = ap.parse_args()
    lengths = instruction_lengths()
    rows = json.loads(a.out.read_text())["rows"] if a.out.is_file() else []
    measured_shapes: dict[str, str] = {}  # shape key -> the preset measured for it
    for name in a.presets.split(","):
        info = model_info.from_preset(name)
        twin = measured_shapes.get(_shape_key(info))
        if twin:
            rows += [{**r, "preset": name, "measured_as": twin} for r in rows if r["preset"] == twin]
            save_json(a.out, {"rows": rows})
            continue
        measured_shapes[_shape_key(info)] = name
        plans = {}
        for card in map(int, a.cards.split(",")):
            cap = CAPS[card]
            plans[card] = (cap, plan(info, budget_bytes=budget_from_cap(int(cap * GiB)), lengths=lengths))
        if not any(p.fits for _, p in plans.values()):
            rows += [_row(name, card, cap, p, None) for card, (cap, p) in plans.items()]
            continue
        folder = random_model(name, a.workdir, a.tokenizer)
        for card, (cap, p) in plans.items():
            measured = None
            if p.fits:
                measured = measure_in_child(folder, p.quantization, p.gradient_checkpointing, p.micro_batch, p.seq_len,
                                            cap_gib=cap, steps=10, warmup=2, optimizer=p.optimizer,
                                            embeddings_on_cpu=p.embeddings_on_cpu, lora_r=p.lora_r, lean=p.lean_memory)
            row = _row(name, card, cap, p, measured)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("breakdown", "suggestion")}), flush=True)
            save_json(a.out, {"rows": rows})
        if not a.keep:
            shutil.rmtree(folder, ignore_errors=True)
    save_json(a.out, {"rows": rows})


def _shape_key(info) -> str:
    """Everything about a model that its training memory depends on (not its name,
    rope settings or context length)."""
    d = info.to_dict()
    return json.dumps({k: v for k, v in d.items() if k != "context_length"}, sort_keys=True)


KEYS = ("fits", "quantization", "gradient_checkpointing", "optimizer", "embeddings_on_cpu", "lean_memory", "lora_r",
        "micro_batch", "grad_accum", "seq_len")
RENAMED = {"seq_len": "max_seq_len"}  # the key in rows measured before the plan's length was renamed


def _recorded(r: dict, k: str, default=False):
    return r.get(k, r.get(RENAMED.get(k, k), default))


def _row(name, card, cap, p, m) -> dict:
    row = {
        "preset": name, "card_gb": card, "cap_gib": cap, "budget_gib": round(p.budget_bytes / GiB, 3),
        **{k: getattr(p, k) for k in KEYS}, "fused_kernels": p.fused_kernels,
        "predicted_gib": round(p.estimate_bytes / GiB, 3), "breakdown": p.breakdown, "suggestion": p.suggestion,
    }
    if m:
        row.update(
            oom=not m.get("ok", False),
            measured_allocated_gib=round(m.get("peak_allocated", 0) / GiB, 3),
            measured_reserved_gib=round(m.get("peak_reserved", 0) / GiB, 3),
            weights_allocated_gib=round(m.get("weights_allocated", 0) / GiB, 3),
            tokens_per_s=round(m.get("tokens_per_s", 0), 1),
            error=m.get("error"),
        )
        if m.get("peak_reserved"):
            row["predicted_over_reserved"] = round(p.estimate_bytes / m["peak_reserved"], 3)
            row["budget_used"] = round(m["peak_reserved"] / p.budget_bytes, 3)
    return row



RESULTS = Path(__file__).parent / "results" / "planner_check"
# The runs of record, newest first (the first row of a preset x card wins).
RECORD = ["planner_check_reentrant_7b14b.json",  # the 7B-14B rows with the same lever (two processes shared the GPU: tok/s contended), H200
          "planner_check_reentrant.json",  # checkpointed layers' first pass without autograd (speed.replayed_checkpoint), H200
          "planner_check_lora_branch.json",  # LoRA layers as one autograd node (engine/models/lora_branch.py), H200
          "planner_check_small3a.json", "planner_check_small3b.json", "planner_check_small3c.json",  # the rows the
          "planner_check_24gb_a.json",  # levers changed, remeasured (H200, 2026-12-03)
          "planner_check_fast2.json", "planner_check_fast.json",  # issue 16's speed levers (fused kernels, bf16 LoRA inputs), H200
          "planner_check_refit_a.json", "planner_check_refit_b.json", "planner_check_refit_14b.json",  # 4-bit refit, H200
          "planner_check_embram.json", "planner_check_embram14b.json", "planner_check_embram_dsllm.json",
          "planner_check_small2a.json", "planner_check_small2b.json", "planner_check_qwen7b.json",
          "planner_check_rest.json", "planner_check_small.json"]


def report(files: list[Path], out: Path | None = None) -> bool:
    """Merge measured rows, re-estimate them with the current memory model, write the table
    (into out, by default beside the first file)."""
    lengths = instruction_lengths()
    merged: dict[tuple, dict] = {}
    for f in files:
        for r in json.loads(f.read_text())["rows"]:
            merged.setdefault((r["preset"], r["card_gb"]), r)
    for (name, card), r in merged.items():  # a twin's row follows its measured preset's newest row
        if r.get("measured_as") and (r["measured_as"], card) in merged:
            merged[name, card] = {**merged[r["measured_as"], card], "preset": name, "measured_as": r["measured_as"]}
    rows, problems, remeasure = [], [], []
    for (name, card), r in sorted(merged.items()):
        # The GPU machine's path, wherever the report runs: liger's kernels load there.
        p = plan(model_info.from_preset(name), budget_bytes=budget_from_cap(int(CAPS[card] * GiB)), lengths=lengths,
                 fused_kernels=True)
        # Rows from before lean memory lack its key; a refusal is compared only as a refusal.
        changed = [k for k in KEYS if getattr(p, k) != _recorded(r, k)] if (p.fits or r["fits"]) else []
        r = {**r, "predicted_gib": round(p.estimate_bytes / GiB, 3), "breakdown": p.breakdown}
        if changed and "fused_kernels" not in r:
            # Measured before issue 16's speed levers, on a step the engine no longer runs;
            # today's planner makes another plan for it: only the GPU can measure that one.
            remeasure.append(f"{name} {card} GB ({', '.join(changed)})")
        elif changed:
            problems.append(f"{name} {card} GB: plan changed since measured ({', '.join(changed)}): remeasure")
        if changed:  # another plan's peak says nothing of this one's estimate
            r["predicted_over_reserved"] = "–"
        elif r.get("measured_reserved_gib"):
            r["predicted_over_reserved"] = round(r["predicted_gib"] / r["measured_reserved_gib"], 3)
            if r["oom"]:
                problems.append(f"{name} {card} GB: out of memory at the planned setting")
            if abs(r["predicted_over_reserved"] - 1) > 0.15:
                problems.append(f"{name} {card} GB: predicted/measured {r['predicted_over_reserved']}")
            if r["micro_batch"] < r["micro_batch"] * r["grad_accum"] and r["budget_used"] < 0.6:
                problems.append(f"{name} {card} GB: capped micro-batch uses only {r['budget_used']:.0%} of the budget")
        elif r["fits"]:
            problems.append(f"{name} {card} GB: planned but not measured")
        rows.append(r)
    out = out or files[0].parent
    (out / "planner_check.json").write_text(json.dumps({"rows": rows, "problems": problems, "remeasure": remeasure}, indent=2))
    lines = [
        "| preset | card | plan (quant, ckpt, optim, emb-in-RAM, lean, r, mb x accum, seq) | predicted GiB | measured alloc / reserved GiB "
        "| pred/reserved | budget used | tok/s | OOM |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r["fits"]:
            lines.append(f"| {r['preset']} | {r['card_gb']} GB | refused: {r['suggestion'].split('.')[0]} | {r['predicted_gib']} | – | – | – | – | – |")
            continue
        ck = "ckpt on" if r["gradient_checkpointing"] else "ckpt off"
        lines.append(
            f"| {r['preset']} | {r['card_gb']} GB | {r['quantization']}, {ck}, {r['optimizer']}, {'yes' if r['embeddings_on_cpu'] else 'no'}, "
            f"{'lean' if r.get('lean_memory') else '–'}, "
            f"r{r['lora_r']}, {r['micro_batch']}x{r['grad_accum']}, {_recorded(r, 'seq_len')} | {r['predicted_gib']} | "
            f"{r['measured_allocated_gib']} / {r['measured_reserved_gib']} | {r['predicted_over_reserved']} | {r['budget_used']} | "
            f"{r['tokens_per_s']:.0f} | {'YES' if r['oom'] else 'no'}{' (as ' + r['measured_as'] + ')' if r.get('measured_as') else ''} |"
        )
    if remeasure:
        lines += ["", "Remeasure (measured before the speed levers; today's plan differs, not yet measured): "
                  + "; ".join(remeasure)]
    lines += ["", "Problems: " + ("; ".join(problems) if problems else "none")]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return not problems


if __name__ == "__main__":
    if "--report" in sys.argv:
        named = [Path(f) for f in sys.argv[sys.argv.index("--report") + 1 :]]
        sys.exit(0 if report(named or [RESULTS / f for f in RECORD]) else 1)
    main()
