"""Does a CPU run stay inside the RAM it planned for? (CPU; no GPU needed)

The case that froze a 24 GB machine before RAM was a budget: web text in the shape of
c4 ({"text", "url", "timestamp"}, 300 documents of 500-8,192 tokens of real prose from
bench/prose.py) on the demo model. It runs `tunedesk train` itself (automatic plan), on
this machine and on simulated smaller PCs (TUNEDESK_SIMULATE_RAM_GB: the probe reports
that much RAM, less what a desktop session holds), samples the training process's
resident memory every 0.2 s, and checks the peak against the plan's RAM budget.

    python3 -m bench.cpu_ram --out bench/results/cpu_ram/cpu_ram.json [--pcs 0,8,16] [--steps 1]

--pcs: RAM sizes in GiB to simulate; 0 is this machine as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from bench.child import json_events, run_folder, save_json

GiB = 1024**3


def write_c4(path: Path, n: int = 300, seed: int = 0) -> None:
    """c4-shaped rows of real prose: lengths spread over 500-8,192 demo-tokenizer tokens."""
    from bench.prose import corpus
    from engine import models
    from engine.config import ModelConfig
    from engine.models.loading import load_tokenizer

    tok = load_tokenizer(models.resolve("demo"), ModelConfig())
    paragraphs = corpus()
    rng = np.random.default_rng(seed)
    at = 0
    with path.open("w", encoding="utf-8") as f:
        for i, target in enumerate(rng.integers(500, 8192, n)):
            words: list[str] = []
            while len(words) * 1.3 < target:  # ~1.3 tokens per word in English prose
                words += paragraphs[at % len(paragraphs)].split()
                at += 1
            text = " ".join(words)
            ids = tok(text).input_ids[: int(target)]
            f.write(json.dumps({"text": tok.decode(ids), "url": f"https://example.org/{i}",
                                "timestamp": "2019-04-25T12:57:54Z"}) + "\n")


def run(data: Path, pc_gib: float, steps: int, out_dir: Path) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if pc_gib:
        env["TUNEDESK_SIMULATE_RAM_GB"] = str(pc_gib)
    name = f"c4-{pc_gib:g}gib" if pc_gib else "c4-this-pc"
    cmd = [sys.executable, "-m", "engine.cli", "train", str(data), "--max-steps", str(steps), "--val-share", "0.01",
           "--eval-every", "1000", "--device", "cpu", "--out", str(out_dir), "--name", name, "--json-events"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    folder = run_folder(json_events(stdout), out_dir, name)
    plan_file = folder / "plan.json"
    plan = json.loads(plan_file.read_text()) if plan_file.is_file() else {}
    summary_file = folder / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    row = {
        "pc_gib": pc_gib or round(psutil.virtual_memory().total / GiB, 1), "simulated": bool(pc_gib),
        "rc": proc.returncode, "seconds": round(time.monotonic() - start, 1),
        "plan": {k: plan.get(k) for k in ("micro_batch", "grad_accum", "seq_len", "gradient_checkpointing",
                                          "ram_estimate_bytes", "ram_budget_bytes")},
        "calibration": plan.get("calibration"), "recoveries": plan.get("recoveries"),
        "peak_rss_gib": round(peak / GiB, 2),
        "ram_budget_gib": round((plan.get("ram_budget_bytes") or 0) / GiB, 2),
        "estimate_gib": round((plan.get("ram_estimate_bytes") or 0) / GiB, 2),
        "status": summary.get("status"), "trained_tokens": summary.get("trained_tokens"),
        "stderr_tail": stderr[-600:] if proc.returncode else "",
    }
    row["under_budget"] = bool(row["ram_budget_gib"]) and row["peak_rss_gib"] <= row["ram_budget_gib"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pcs", default="0,8", help="simulated RAM sizes in GiB (0: this machine)")
    ap.add_argument("--steps", type=int, default=1)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "c4_web_text.jsonl"
        write_c4(data)
        for pc in map(float, a.pcs.split(",")):
            rows.append(run(data, pc, a.steps, Path(tmp) / "runs"))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "stderr_tail"}), flush=True)
            save_json(a.out, {"command": "python3 -m bench.cpu_ram " + " ".join(sys.argv[1:]), "rows": rows})


if __name__ == "__main__":
    main()
