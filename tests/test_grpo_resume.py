"""GRPO beyond one uninterrupted process (issues 20 and 21): a stopped run resumes where
it stopped with its own method settings, a run over two processes (data-parallel, gloo on
the CPU) finishes and resumes in one, and sharding (FSDP2) is refused for GRPO in one
sentence (each card samples answers of its own length; a sharded forward is a collective)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import StopAfter, tunedesk
from grpo_task import write_additions
from test_grpo import grpo_cfg

from engine.config import GRPO_SHARD_REFUSED, RunConfig
from engine.errors import ConfigError
from engine.reporting import RecordingReporter
from engine.runs import RunDir
from engine.training.train import Trainer

STEPS = 4
# A reward the tiny random model's answers earn about half the time (they begin with a
# lowercase letter or not), so its groups differ and the steps move the weights.
REWARDS = ("match", "regex:^[a-z]")
COMPARED = ("loss", "reward_mean", "reward_std", "reward_match", "reward_regex", "completion_length", "kl", "grad_norm",
            "trained_tokens")
METHOD = ["--method", "grpo", "--group", "2", "--completion-tokens", "8", "--reward", ",".join(REWARDS), "--kl", "0.1",
          "--temperature", "0.7"]
TRAIN = ["--device", "cpu", "--batch", "1", "--effective-batch", "2", "--max-steps", str(STEPS), "--eval-every", str(STEPS),
         "--checkpoint-every", "2", "--seed", "3", "--json-events"]


@pytest.fixture(scope="module")
def additions(tmp_path_factory):
    return write_additions(tmp_path_factory.mktemp("add") / "add.jsonl", n=12)


def _cfg(data, model, out, name: str) -> RunConfig:
    cfg = grpo_cfg(data, str(model), rewards=REWARDS, group=2, completion_tokens=8, kl=0.1,
                   temperature=0.7)
    cfg.out_dir, cfg.name = str(out), name
    t = cfg.train
    t.device, t.max_steps, t.effective_batch, t.micro_batch, t.eval_every, t.seed = "cpu", STEPS, 2, 1, STEPS, 3
    return cfg


def _fit(trainer: Trainer) -> dict:
    if trainer.run is None:
        trainer.setup()
    return trainer.fit()


def _steps(run) -> dict[int, dict]:
    return {m["step"]: m for m in RunDir.open(run).metrics() if "reward_mean" in m}


def _train_rows(rep: RecordingReporter) -> dict[int, list[int]]:
    return {g["step"]: [s["row"] for s in g["samples"]] for g in rep.of("generations") if g["split"] == "train"}


def test_a_stopped_grpo_run_resumes_with_its_settings_and_ends_as_the_uninterrupted_one(tiny_model_folder, additions,
                                                                                          tmp_path):
    """Stopped after step 2 (checkpoint), then resumed from the run folder alone: the same
    method settings (group, answer length, rewards, KL, temperature: config.json), steps 3
    and 4 on the same prompts, and, the random generators being restored, the same sampled
    answers, rewards and losses as a run that was never stopped."""
    whole_rep = RecordingReporter()
    whole = _fit(Trainer(_cfg(additions, tiny_model_folder, tmp_path, "whole"), whole_rep))
    assert whole["status"] == "finished" and whole["steps"] == STEPS

    stopped = _fit(Trainer(_cfg(additions, tiny_model_folder, tmp_path, "cut"), StopAfter(2)))
    run = tmp_path / "cut"
    assert stopped["status"] == "stopped" and stopped["steps"] == 2
    assert [c.name for c in RunDir.open(run).checkpoints()][-1] == "step-000002"

    rep = RecordingReporter()
    resumed = Trainer.resume(run, rep)
    m = resumed.cfg.method
    assert (m.name, m.group, m.completion_tokens, m.rewards, m.kl, m.temperature) == (
        "grpo", 2, 8, list(REWARDS), 0.1, 0.7)
    assert (resumed.plan.method, resumed.plan.group, resumed.plan.completion_tokens) == ("grpo", 2, 8)
    assert resumed.step == 2
    summary = _fit(resumed)
    assert summary["status"] == "finished" and summary["steps"] == STEPS
    assert rep.of("started")[0]["step"] == 2 and [p["step"] for p in rep.of("progress")] == [3, 4]
    assert _train_rows(rep) == {s: r for s, r in _train_rows(whole_rep).items() if s > 2}  # the data position
    mine, theirs = _steps(run), _steps(tmp_path / "whole")
    assert any(theirs[s]["reward_std"] > 0 and theirs[s]["grad_norm"] > 0 for s in (3, 4))  # steps that learned
    assert sorted(mine) == list(range(1, STEPS + 1))  # each step once, steps 1-2 kept from before the stop
    for s in range(1, STEPS + 1):
        for key in COMPARED:
            assert mine[s][key] == pytest.approx(theirs[s][key], rel=1e-4, abs=1e-6), (s, key)
    assert set(summary["rewards"]["first_steps"]) == {"reward_mean", "reward_match", "reward_regex"}
    assert (run / "adapter" / "adapter_config.json").is_file()


def test_grpo_over_two_processes_finishes_and_its_checkpoint_resumes_in_one(tiny_model_folder, additions, tmp_path):
    """Data-parallel (each process samples its own prompts' answers): it finishes, rank 0
    alone reports the rewards, and its step-2 checkpoint, the later steps cut off as a
    crash would leave them, continues in one process to the end."""
    r = tunedesk("train", str(additions), "--model", str(tiny_model_folder), "--out", str(tmp_path), "--name", "two",
                 "--gpus", "2", *METHOD, *TRAIN)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "two"
    plan = json.loads((run / "plan.json").read_text(encoding="utf-8"))
    assert (plan["processes"], plan["sharded"], plan["micro_batch"], plan["grad_accum"]) == (2, False, 1, 1)
    assert (plan["method"], plan["group"], plan["completion_tokens"]) == ("grpo", 2, 8)
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "finished" and summary["steps"] == STEPS
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len([e for e in events if e["event"] == "metrics" and e["step"] == 1]) == 1  # rank 0 alone reports
    steps = _steps(run)
    assert sorted(steps) == list(range(1, STEPS + 1))
    for m in steps.values():  # the sums over both ranks of each rank's share: means over the step's 4 answers
        assert 0 <= m["reward_mean"] <= 2 and 0 < m["completion_length"] <= 8 and m["kl"] >= 0
        assert m["reward_mean"] == pytest.approx(m["reward_match"] + m["reward_regex"])
        assert 0 < m["trained_tokens"] <= 2 * 2 * 8 < m["tokens"]
    gens = [e for e in events if e["event"] == "generations" and e["split"] == "train"]
    assert [g["step"] for g in gens] == list(range(1, STEPS + 1))

    crashed = tmp_path / "crashed"
    shutil.copytree(run, crashed)
    for name in ("summary.json", "adapter", "best", "last"):
        path = crashed / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    assert [c.name for c in RunDir.open(crashed).checkpoints()][-1] == "step-000002"
    r = tunedesk("resume", str(crashed), "--json-events")
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((crashed / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "finished" and summary["steps"] == STEPS
    plan = json.loads((crashed / "plan.json").read_text(encoding="utf-8"))
    assert (plan["processes"], plan["micro_batch"], plan["grad_accum"]) == (1, 1, 2)  # the same 2 prompts per step
    assert (plan["group"], plan["completion_tokens"]) == (2, 8)
    again = _steps(crashed)
    assert sorted(again) == list(range(1, STEPS + 1))
    assert all(again[s] == steps[s] for s in (1, 2))  # kept as the two processes logged them
    assert all(0 < again[s]["completion_length"] <= 8 for s in (3, 4))


def test_grpo_is_never_sharded(tiny_model_folder, additions, tmp_path):
    """--shard with GRPO is refused before any process starts, in one sentence; the
    planner keeps a model that fits one card data-parallel, and says why it never shards GRPO."""
    cfg = _cfg(additions, tiny_model_folder, tmp_path, "x")
    cfg.train.gpus, cfg.train.shard = 2, True
    with pytest.raises(ConfigError, match="GRPO cannot be sharded"):
        cfg.validate()
    r = tunedesk("train", str(additions), "--model", str(tiny_model_folder), "--out", str(tmp_path), "--gpus", "2",
                 "--shard", *METHOD, *TRAIN)
    assert r.returncode == 2 and GRPO_SHARD_REFUSED in r.stderr and "Traceback" not in r.stderr
    assert not any(tmp_path.iterdir())  # nothing was started
    plan = ["plan", "--method", "grpo", "--model", "qwen2.5-1.5b", "--vram", "12GB", "--gpus", "2"]
    r = tunedesk(*plan, "--shard")
    assert r.returncode == 2 and GRPO_SHARD_REFUSED in r.stderr and "Traceback" not in r.stderr
    r = tunedesk(*plan)
    assert r.returncode == 0 and r.stdout.startswith("Fits:") and "on each of 2 GPUs" in r.stdout
    assert "Data-parallel on 2 GPUs" in r.stdout and "so it is not sharded" in r.stdout
