"""One run over two processes (torch.distributed over gloo on the CPU, launched by torchrun
through `tunedesk train --gpus 2`): the same updates as one process, rank 0 writes the
run, a stop reaches every rank, and the checkpoint resumes on another number of processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, SAMPLES, tunedesk

DATA = SAMPLES / "pirate_trivia.jsonl"
# The same request in both: micro-batch 2, 4 examples per step (one process: 2 x 2
# accumulated; two: 2 each, summed), no dropout (its masks would differ between layouts).
COMMON = ["--device", "cpu", "--batch", "2", "--effective-batch", "4", "--lora-dropout", "0", "--eval-every", "1",
          "--lr", "1e-2", "--seed", "3", "--json-events"]


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def _losses(run: Path) -> dict[int, tuple[float, float | None, int]]:
    return {m["step"]: (m["loss"], m.get("eval_loss"), m["trained_tokens"]) for m in _metrics(run) if "loss" in m}


def _close(a: dict, b: dict, steps) -> None:
    for s in steps:
        (la, ea, ta), (lb, eb, tb) = a[s], b[s]
        assert ta == tb, f"step {s}: trained tokens {ta} != {tb}"
        assert abs(la - lb) <= 2e-4 * max(1.0, abs(la)), f"step {s}: loss {la} != {lb}"
        assert abs(ea - eb) <= 2e-4 * max(1.0, abs(ea)), f"step {s}: eval loss {ea} != {eb}"


@pytest.fixture(scope="module")
def one_process(tiny_model_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one")
    r = tunedesk("train", str(DATA), "--model", str(tiny_model_folder), "--out", str(out), "--name", "one",
                 "--max-steps", "4", *COMMON)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / "one"


def test_two_processes_make_the_updates_of_one(one_process, tiny_model_folder, tmp_path):
    r = tunedesk("train", str(DATA), "--model", str(tiny_model_folder), "--out", str(tmp_path), "--name", "two",
                 "--max-steps", "4", "--gpus", "2", *COMMON)
    assert r.returncode == 0, r.stderr[-3000:]
    two = tmp_path / "two"
    plan = json.loads((two / "plan.json").read_text(encoding="utf-8"))
    assert (plan["processes"], plan["micro_batch"], plan["grad_accum"]) == (2, 2, 1)
    assert json.loads((one_process / "plan.json").read_text(encoding="utf-8"))["grad_accum"] == 2
    _close(_losses(one_process), _losses(two), range(1, 5))
    summary = json.loads((two / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "finished" and summary["steps"] == 4
    assert len([m for m in _metrics(two) if m["step"] == 1]) == 1  # rank 0 alone wrote the metrics
    assert (two / "adapter" / "adapter_config.json").is_file()


def test_a_stopped_two_process_run_resumes_on_one(one_process, tiny_model_folder, tmp_path):
    """Stop (the run folder's STOP file, as the window and Ctrl-C do) reaches both ranks
    after step 2; the checkpoint then resumes in one process and ends as the run that
    was never interrupted."""
    run = tmp_path / "spread"
    cmd = [sys.executable, "-m", "engine.cli", "train", str(DATA), "--model", str(tiny_model_folder), "--out",
           str(tmp_path), "--name", "spread", "--max-steps", "4", "--checkpoint-every", "100", "--gpus", "2", *COMMON]
    child = subprocess.Popen(cmd, cwd=REPO, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and child.poll() is None:
        if (run / "metrics.jsonl").is_file() and any(m.get("step") == 2 and "loss" in m for m in _metrics(run)):
            (run / "STOP").touch()
            break
        time.sleep(0.05)
    _, err = child.communicate(timeout=600)
    assert child.returncode == 0, err[-3000:]
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "stopped" and summary["steps"] in (2, 3)  # the rank that saw the file first decides
    assert not (run / "STOP").exists()

    r = tunedesk("resume", str(run), "--json-events")
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "finished" and summary["steps"] == 4
    plan = json.loads((run / "plan.json").read_text(encoding="utf-8"))
    assert (plan["processes"], plan["grad_accum"]) == (1, 2)  # the same effective batch on one process
    _close(_losses(one_process), _losses(run), range(1, 5))


def test_more_gpus_than_the_pc_has_are_refused_in_one_sentence(tiny_model_folder, tmp_path):
    r = tunedesk("train", str(DATA), "--model", str(tiny_model_folder), "--out", str(tmp_path), "--gpus", "2")
    assert r.returncode == 2 and "--gpus 2 needs" in r.stderr and "Traceback" not in r.stderr
    assert not any(tmp_path.iterdir())  # nothing was started, no half-written run folder


def _oom_on_rank_1(rank: int, model: str, out: str, port: int) -> None:
    """A rank of a two-process run whose rank 1 alone runs out of memory above micro-batch 1."""
    import torch

    from engine.config import RunConfig
    from engine.training.train import Trainer

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2")
    cfg = RunConfig()
    cfg.model.source, cfg.data.path, cfg.out_dir, cfg.name = model, str(DATA), out, "oom"
    cfg.train.device, cfg.train.micro_batch, cfg.train.effective_batch, cfg.train.max_steps = "cpu", 2, 4, 2
    cfg.lora.dropout = 0.0
    t = Trainer(cfg)
    t.setup()
    decoder = t.model.get_base_model().get_decoder()
    real = decoder.forward

    def forward(*args, input_ids=None, **kw):
        if rank == 1 and torch.is_grad_enabled() and input_ids.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated, rank 1 only)")
        return real(*args, input_ids=input_ids, **kw)

    decoder.forward = forward
    summary = t.fit()
    weights = sum(float(p.detach().double().sum()) for p in t.optim.params)
    Path(out, f"rank{rank}.json").write_text(json.dumps({"micro_batch": t.plan.micro_batch, "grad_accum": t.plan.grad_accum,
                                                          "oom": summary["oom_recoveries"], "steps": summary["steps"],
                                                          "weights": weights}))


def test_out_of_memory_on_one_rank_moves_every_rank_to_the_same_smaller_plan(tiny_model_folder, tmp_path):
    """The ranks agree before they exchange gradients: rank 1's out-of-memory error makes
    both halve the micro-batch and retry the step, so their plans and weights stay equal
    and nobody waits for ever in an all-reduce."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_oom_on_rank_1, args=(str(tiny_model_folder), str(tmp_path), port), nprocs=2, start_method="spawn")
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["micro_batch"] == r1["micro_batch"] == 1 and r0["grad_accum"] == r1["grad_accum"] == 2
    assert r0["oom"] == r1["oom"] == 1 and r0["steps"] == r1["steps"] == 2
    assert r0["weights"] == r1["weights"]  # the same update on both ranks
