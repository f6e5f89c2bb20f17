"""Preference methods on 7B / 8B shapes on 8 GB and 12 GB cards (GPU machine, issue 20):
does the planner's estimate for DPO (or ORPO) hold against calibration, with no
out-of-memory, and how fast does it train? GRPO samples before it trains, so it has its
own script and data: bench/grpo_fit.py.

    python3 -m bench.methods_fit --tokenizer .gpu/tok --out bench/results/methods_fit/methods_fit.json \\
        [--presets deepseek-r1-distill-qwen-7b,llama-3.1-8b] [--cards 8,12] [--methods dpo,orpo] [--steps 8]

Each (preset, card, method) is one `tunedesk train FILE --method …` in its own process,
the planner choosing everything, on the preset's architecture with random weights
(bench/planner_check.py says why that is enough) and a card simulated by capping the
allocator (bench/child.py CAPS: 8 GB -> 7.0 GiB, 12 GB -> 10.5 GiB). The data are
synthetic preference rows: a question and two answers whose token lengths follow
instruction data (bench/synthetic.py; median ~200, p95 ~800 tokens per sequence).
Per run the JSON holds the plan's estimate against calibration's measured peak (reserved,
optimizer states included: engine/fit/card_fit.py), whether it is within ±15%, the
out-of-memory recoveries, the first steps' reserved memory and tokens/s over the steps
after the first (the evaluations are off).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.child import CAPS, GiB, bench_parser, json_events, random_model, run_folder, save_json
from bench.synthetic import WORDS, instruction_lengths

TOLERANCE = 0.15  # the acceptance: the estimate within ±15% of calibration


def write_preference_jsonl(path, n: int = 400, seed: int = 0) -> Path:
    """prompt / chosen / rejected rows: a prompt a fifth of an instruction row's length, and
    two different answers of the rest (one common word ~ one token)."""
    rng = np.random.default_rng(seed)
    lengths = instruction_lengths(n, seed)
    with open(path, "w", encoding="utf-8") as f:
        for i, length in enumerate(lengths):
            q = max(4, int(length * 0.2))
            a = max(2, int(length) - q)
            words = rng.choice(WORDS, size=q + 2 * a)
            f.write(json.dumps({"prompt": f"{i} " + " ".join(words[:q]) + "?", "chosen": " ".join(words[q:q + a]) + ".",
                                "rejected": " ".join(words[q + a:]) + "!"}) + "\n")
    return Path(path)


# method -> (its `tunedesk train` flags, its data writer)
METHODS: dict[str, tuple[tuple[str, ...], Callable[..., Path]]] = {
    "dpo": (("--method", "dpo", "--beta", "0.1"), write_preference_jsonl),
    "orpo": (("--method", "orpo", "--beta", "0.1"), write_preference_jsonl),
}


def summarize(events: list[dict[str, Any]], plan: dict[str, Any], first_step: int = 1) -> dict[str, Any]:
    """One run's figures from its JSON events and plan.json: the estimate against calibration,
    out-of-memory recoveries, tokens/s over the steps after `first_step` (the first pays for
    the allocator's warm-up)."""
    finished = next((e for e in events if e.get("event") == "finished"), None)
    if finished is None:
        return {"ok": False, "error": "the run did not finish"}
    progress = {e["step"]: e["elapsed_s"] for e in events if e.get("event") == "progress"}
    steps = {e["step"]: e for e in events if e.get("event") == "metrics" and "tokens" in e}
    last = max(steps, default=0)
    tokens = sum(steps[s]["tokens"] for s in range(first_step + 1, last + 1) if s in steps)
    span = progress.get(last, 0.0) - progress.get(first_step, 0.0)
    cal = plan.get("calibration") or {}
    estimate, measured = plan.get("estimate_bytes") or 0, cal.get("measured_reserved") or 0
    # The planner's first plan, against calibration at that same shape when it was not shrunk
    planned = (plan.get("planned") or {}).get("estimate_bytes") or estimate
    error = (estimate - measured) / measured if measured else None
    return {
        "ok": finished.get("status") == "finished" and finished["summary"].get("status") == "finished",
        "method": plan.get("method"),
        "plan": {k: plan.get(k) for k in ("quantization", "gradient_checkpointing", "micro_batch", "grad_accum", "seq_len",
                                          "optimizer", "embeddings_on_cpu", "lean_memory", "lora_r", "sequences")},
        "estimate_gib": round(estimate / GiB, 3),
        "planned_estimate_gib": round(planned / GiB, 3),
        "calibrated_reserved_gib": round(measured / GiB, 3) if measured else None,
        "estimate_error": round(error, 4) if error is not None else None,
        "within_tolerance": error is not None and abs(error) <= TOLERANCE,
        "oom_recoveries": finished["summary"].get("oom_recoveries", 0),
        "recoveries": len(plan.get("recoveries") or []),
        "steps_reserved_gib": [round(x / GiB, 3) for x in plan.get("steps_reserved") or []],
        "tokens_per_s": round(tokens / span, 1) if span > 0 else None,
        "steps": last,
    }


def run(preset_folder: Path, data: Path, flags: tuple[str, ...], cap: float, workdir: Path, name: str, steps: int) -> dict:
    cmd = [sys.executable, "-m", "engine.cli", "train", str(data), "--model", str(preset_folder), "--max-steps", str(steps),
           "--eval-every", "100000", "--replay-share", "0", "--out", str(workdir), "--name", name, "--json-events", *flags]
    env = {**os.environ, "TUNEDESK_SIMULATE_VRAM_GB": str(cap), "TUNEDESK_HOME": str(workdir / "home")}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    events = json_events(out.stdout)
    plan_file = run_folder(events, workdir, name) / "plan.json"
    if not plan_file.is_file():
        return {"ok": False, "error": (out.stderr or out.stdout)[-800:]}
    result = summarize(events, json.loads(plan_file.read_text()))
    if not result["ok"]:
        result["error"] = (out.stderr or out.stdout)[-800:]
    return result


def main() -> None:
    ap = bench_parser("deepseek-r1-distill-qwen-7b,llama-3.1-8b", cards="8,12", workdir="/tmp/methods_fit")
    ap.add_argument("--methods", default="dpo", help=f"comma-separated, of {', '.join(METHODS)}")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rows", type=int, default=200)
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"tolerance": TOLERANCE, "runs": []}
    for method in a.methods.split(","):
        flags, writer = METHODS[method]
        data = writer(a.workdir / f"{method}.jsonl", a.rows)
        for preset in a.presets.split(","):
            folder = random_model(preset, a.workdir, a.tokenizer)
            for card in map(int, a.cards.split(",")):
                name = f"{method}-{preset}-{card}gb"
                r = run(folder, data, flags, CAPS[card], a.workdir, name, a.steps)
                result["runs"].append({"method": method, "preset": preset, "card_gb": card, "cap_gib": CAPS[card], **r})
                save_json(a.out, result)
                print(json.dumps(result["runs"][-1]), flush=True)
    runs = result["runs"]
    result["all_fit"] = bool(runs) and all(r["ok"] and r["oom_recoveries"] == 0 for r in runs)
    result["all_within_tolerance"] = bool(runs) and all(r.get("within_tolerance") for r in runs)
    save_json(a.out, result)


if __name__ == "__main__":
    main()
