"""kill -9 in the middle of a real training subprocess, then resume: nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from conftest import REPO, SAMPLES

STEPS = 24


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", *args]


def test_resume_after_sigkill_continues_steps_and_metrics(tiny_model_folder, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.runs import RunDir

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    train = _cli("train", str(SAMPLES / "support_desk.json"), "--model", str(tiny_model_folder), "--out", str(tmp_path),
                 "--name", "killed", "--max-steps", str(STEPS), "--checkpoint-every", "4", "--batch", "2",
                 "--eval-every", "6", "--json-events")
    proc = subprocess.Popen(train, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    seen_checkpoint = None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "checkpoint" and event["step"] >= 8:
            seen_checkpoint = event["step"]
            proc.send_signal(signal.SIGKILL)  # no cleanup, no final save: as a crash or a power cut
            break
    proc.wait(timeout=60)
    assert seen_checkpoint is not None and proc.returncode == -signal.SIGKILL

    run = RunDir.open(tmp_path / "killed")
    assert run.status() == "crashed"
    assert not run.adapter_dir.exists() and run.summary() is None
    resumed_from = int(run.checkpoints()[-1].name.removeprefix("step-"))
    assert resumed_from >= seen_checkpoint

    out = subprocess.run(_cli("resume", str(run.path), "--json-events"), capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    events = [json.loads(x) for x in out.stdout.splitlines()]
    started = next(e for e in events if e["event"] == "started")
    assert started["step"] == resumed_from and started["total_steps"] == STEPS
    assert [e["step"] for e in events if e["event"] == "progress"] == list(range(resumed_from + 1, STEPS + 1))
    assert [m["step"] for m in run.metrics() if "loss" in m] == list(range(1, STEPS + 1))  # each step exactly once
    assert run.status() == "finished" and run.summary()["steps"] == STEPS

    base = AutoModelForCausalLM.from_pretrained(tiny_model_folder)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    before = base(ids).logits
    tuned = PeftModel.from_pretrained(base, run.adapter_dir)
    assert not torch.allclose(before, tuned(ids).logits)
