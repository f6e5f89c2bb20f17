"""bench/grpo_fit.py's CPU side: the prompts it writes, the command it runs, and the row it
makes of a run's events and plan (the GPU run itself is the integrator's)."""

import json

import numpy as np

from bench.grpo_fit import command, row, table, write_prompts
from engine.fit.memory import GiB


def test_prompts_and_command(tmp_path):
    path = write_prompts(tmp_path / "p.jsonl", n=50)
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    words = np.array([len(r["question"].split()) for r in rows])
    assert len(rows) == 50 and words.min() >= 10 and words.max() <= 400 and 20 <= np.median(words) <= 80
    cmd = command(path, tmp_path / "m", tmp_path, "x", 8, steps=3, group=4, completion=256)
    joined = " ".join(cmd)
    assert "--method grpo --group 4 --completion-tokens 256 --reward length:1-256" in joined
    assert "--vram 8GB" in joined and "--max-steps 4" in joined and "--batch" not in joined  # the planner chooses


def test_row_compares_the_estimate_with_calibration():
    events = [{"event": "progress", "step": s, "elapsed_s": 10.0 * s} for s in (1, 2, 3, 4)]
    events += [{"event": "metrics", "step": s, "reward_mean": 0.5, "tokens": 2000, "trained_tokens": 1000,
                "mem_reserved_bytes": int(6.1 * GiB)} for s in (1, 2, 3, 4)]
    events.append({"event": "finished", "status": "finished", "summary": {"oom_recoveries": 0}})
    plan = {"estimate_bytes": int(6.5 * GiB), "calibration": {"measured_reserved": int(6.0 * GiB)}, "micro_batch": 1,
            "group": 4, "completion_tokens": 256, "recoveries": []}
    r = row(events, plan)
    assert r["ok"] and r["estimate_over_calibration"] == round(6.5 / 6.0, 3) and r["within_tolerance"]
    assert r["tokens_per_s"] == 200.0 and r["answer_tokens_per_s"] == 100.0  # steps 2-4 over their 30 s
    assert r["oom_recoveries"] == 0 and r["plan"]["group"] == 4
    assert not row(events, {**plan, "estimate_bytes": int(7.0 * GiB)})["within_tolerance"]
    failed = row(events[:-1] + [{"event": "finished", "status": "failed", "summary": {"error": "boom"}}], plan)
    assert failed == {"ok": False, "error": "boom"}
    assert "| q | 8 GB | 6.5 | 6.0 | 1.083 |" in table([{"preset": "q", "card": 8, **r}])
