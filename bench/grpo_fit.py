"""GRPO on the 7B / 8B shapes through `tunedesk train`, planner choosing (GPU machine).

    python3 -m bench.grpo_fit --tokenizer .gpu/tok --out bench/results/grpo_fit/grpo_fit.json \\
        [--presets deepseek-r1-distill-qwen-7b,llama-3.1-8b] [--cards 8,12] [--steps 3] [--group 4] [--completion 256]
    python3 -m bench.grpo_fit --report bench/results/grpo_fit/grpo_fit.json   # the table again, no GPU

Each preset's architecture with random weights (bench/planner_check.py says why that is
enough for memory) trains with `--method grpo` on a simulated card (8 GB -> 7.0 GiB,
12 GB -> 10.5 GiB: TUNEDESK_SIMULATE_VRAM_GB caps the allocator, as bench/throughput.py
does), on question rows whose prompts are 10-400 tokens (median ~40: the question part
of bench/synthetic.py's lengths). Random weights never sample an end-of-turn token, so
every answer runs to the full --completion tokens: the worst case the plan must hold.
The length reward needs no reference answer (the rewards are not what is measured here).

Per preset x card, one JSON row: the planner's estimate against calibration's measured
peak (the probe samples G full-length answers per prompt and runs the training pass over
them: objectives/grpo.py probe), the peak reserved over the steps, the out-of-memory
recoveries, tokens/s (prompt + answer tokens of every sampled sequence per second, the
warm-up step excluded) and sampled answer tokens/s. Acceptance (issue 20): estimate
within +-15% of calibration, 0 out-of-memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.child import CAPS, GiB, bench_parser, json_events, random_model, run_folder, save_json
from bench.synthetic import WORDS, instruction_lengths

TOLERANCE = 0.15


def write_prompts(path: Path, n: int = 64, seed: int = 0) -> Path:
    """Question rows with short numeric answers; the questions' token lengths are a fifth of
    instruction_lengths (one common word ~ one token)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for length in instruction_lengths(n, seed):
            q = int(min(400, max(10, length // 5)))
            f.write(json.dumps({"question": " ".join(rng.choice(WORDS, size=q)) + "?", "answer": str(int(length))}) + "\n")
    return path


def command(data: Path, model: Path, out: Path, name: str, card: int, *, steps: int, group: int, completion: int) -> list[str]:
    """`tunedesk train` for one row: the planner chooses everything but the method's settings."""
    return [sys.executable, "-m", "engine.cli", "train", str(data), "--model", str(model), "--method", "grpo",
            "--group", str(group), "--completion-tokens", str(completion), "--reward", f"length:1-{completion}",
            "--max-steps", str(steps + 1), "--effective-batch", "2", "--eval-every", "100000", "--vram", f"{card}GB",
            "--out", str(out), "--name", name, "--json-events"]


def row(events: list[dict], plan: dict) -> dict:
    """One result row from a run's events and its plan.json."""
    finished = next((e for e in events if e["event"] == "finished"), None)
    if finished is None or finished["status"] != "finished":
        return {"ok": False, "error": (finished or {}).get("summary", {}).get("error") or "the run did not finish"}
    steps = [e for e in events if e["event"] == "metrics" and "reward_mean" in e]
    elapsed = {e["step"]: e["elapsed_s"] for e in events if e["event"] == "progress"}
    timed = [m for m in steps if m["step"] > 1]  # step 1 warms up (kernels, allocator)
    seconds = elapsed[steps[-1]["step"]] - elapsed[1] if timed else 0.0
    cal = plan.get("calibration") or {}
    measured = cal.get("measured_reserved")
    estimate = plan["estimate_bytes"]
    ratio = estimate / measured if measured else None
    return {
        "ok": True,
        "estimate_gib": round(estimate / GiB, 3),
        "calibrated_gib": round(measured / GiB, 3) if measured else None,
        "estimate_over_calibration": round(ratio, 3) if ratio else None,
        "within_tolerance": ratio is not None and abs(ratio - 1) <= TOLERANCE,
        "steps_peak_reserved_gib": round(max(m.get("mem_reserved_bytes", 0) for m in steps) / GiB, 3),
        "oom_recoveries": finished["summary"]["oom_recoveries"],
        "tokens_per_s": round(sum(m["tokens"] for m in timed) / seconds, 1) if seconds > 0 else None,
        "answer_tokens_per_s": round(sum(m["trained_tokens"] for m in timed) / seconds, 1) if seconds > 0 else None,
        "plan": {k: plan.get(k) for k in ("quantization", "gradient_checkpointing", "micro_batch", "grad_accum", "seq_len",
                                          "group", "completion_tokens", "optimizer", "embeddings_on_cpu", "lean_memory",
                                          "lora_r", "breakdown")},
        "recoveries": plan.get("recoveries", []),
    }


def table(rows: list[dict]) -> str:
    lines = ["| preset | card | estimate GiB | calibrated GiB | est/cal | steps' peak GiB | OOM | tokens/s | answer tok/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if not r.get("ok"):
            lines.append(f"| {r['preset']} | {r['card']} GB | failed: {r.get('error', '')[:80]} |||||||")
            continue
        lines.append(f"| {r['preset']} | {r['card']} GB | {r['estimate_gib']} | {r['calibrated_gib']} | "
                     f"{r['estimate_over_calibration']} | {r['steps_peak_reserved_gib']} | {r['oom_recoveries']} | "
                     f"{r['tokens_per_s']} | {r['answer_tokens_per_s']} |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--report"]:
        print(table(json.loads(Path(sys.argv[2]).read_text())["rows"]))
        return
    ap = bench_parser("deepseek-r1-distill-qwen-7b,llama-3.1-8b", cards="8,12", workdir="/tmp/grpo_fit")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--completion", type=int, default=256)
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    data = write_prompts(a.workdir / "prompts.jsonl")
    rows = []
    for preset in a.presets.split(","):
        model = random_model(preset, a.workdir, a.tokenizer)
        for card in map(int, a.cards.split(",")):
            name = f"{preset}-{card}gb"
            env = {**os.environ, "TUNEDESK_SIMULATE_VRAM_GB": str(CAPS[card]), "TUNEDESK_HOME": str(a.workdir / "home")}
            out = subprocess.run(command(data, model, a.workdir, name, card, steps=a.steps, group=a.group,
                                         completion=a.completion), capture_output=True, text=True, env=env, check=False)
            events = json_events(out.stdout)
            plan_file = run_folder(events, a.workdir, name) / "plan.json"
            r = row(events, json.loads(plan_file.read_text())) if plan_file.is_file() else {
                "ok": False, "error": (out.stderr or out.stdout)[-800:]}
            rows.append({"preset": preset, "card": card, "group": a.group, "completion": a.completion, **r})
            save_json(a.out, {"rows": rows})
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
