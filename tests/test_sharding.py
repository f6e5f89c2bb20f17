"""A model sharded over two processes (FSDP2 over gloo on the CPU, launched by torchrun
through `tunedesk train --gpus 2 --shard`): the same updates as one process, a checkpoint
that resumes in one process, and the planner's choice between copying and sharding."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
from conftest import REPO, tunedesk
from test_distributed import COMMON, DATA, _close, _losses, _metrics, one_process  # noqa: F401 (a fixture)

from engine.config import RunConfig
from engine.fit import sharding
from engine.fit.memory import GiB
from engine.fit.plan import Plan, Target, budget_from_cap
from engine.models import model_info

# Rank 1 of the sharded run runs out of memory once, in step 3 at micro-batch 2 (before
# its passes, so rank 0 is left waiting in the first all-gather, as in a real OOM). Loaded
# through sitecustomize in the ranks only (torchrun sets RANK): the product has no test hook.
OOM_ONCE = """
import os
if os.environ.get("RANK") == "1":
    import torch
    from engine.training.objectives import sft
    real = sft.SupervisedObjective.accumulate
    def accumulate(self, batches, trained):
        flag = os.environ["OOM_ONCE_FLAG"]
        if self.t.step == 2 and batches[0]["input_ids"].shape[0] > 1 and not os.path.exists(flag):
            open(flag, "w").close()
            raise torch.OutOfMemoryError("CUDA out of memory (simulated, rank 1 only)")
        return real(self, batches, trained)
    sft.SupervisedObjective.accumulate = accumulate
"""


def test_a_sharded_run_makes_the_updates_of_one_process_and_resumes_in_one(one_process, tiny_model_folder, tmp_path):  # noqa: F811
    """Losses, validation losses and trained tokens of 4 steps equal one process's within
    2e-4 (measured: 1e-7; the sums are only ordered differently), through an out-of-memory
    error on one rank in step 3: every rank stops, the launcher restarts the run from its
    step-2 checkpoint at micro-batch 1 (the same examples per step), nothing hangs. Then
    the run is cut after that checkpoint, as a crash would leave it, and resumed in one
    process: steps 3 and 4 again equal the uninterrupted run's."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(OOM_ONCE, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OOM_ONCE_FLAG": str(tmp_path / "oom-raised"), "TUNEDESK_COLLECTIVE_TIMEOUT_S": "120"}
    r = subprocess.run([sys.executable, "-m", "engine.cli", "train", str(DATA), "--model", str(tiny_model_folder), "--out",
                        str(tmp_path), "--name", "sharded", "--max-steps", "4", "--checkpoint-every", "2", "--gpus", "2",
                        "--shard", *COMMON], capture_output=True, text=True, timeout=900, env=env, cwd=REPO, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "oom-raised").exists() and "restarting from the last checkpoint" in r.stderr
    run = tmp_path / "sharded"
    plan = json.loads((run / "plan.json").read_text(encoding="utf-8"))
    assert (plan["sharded"], plan["processes"], plan["micro_batch"], plan["grad_accum"]) == (True, 2, 1, 2)
    assert [(x["cause"], x["step"]) for x in plan["recoveries"]] == [("out of memory", 3)]
    assert "Rank 1 ran out of GPU memory at step 3" in plan["recoveries"][0]["text"]
    assert "Sharded over 2" in plan["reasons"]["processes"]
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "finished" and summary["steps"] == 4 and summary["oom_recoveries"] == 1
    _close(_losses(one_process), _losses(run), range(1, 5))
    assert len([m for m in _metrics(run) if m["step"] == 1]) == 1  # rank 0 alone wrote the metrics

    # The adapter is a whole PEFT adapter (gathered by rank 0): the same tensors as one process's.
    from safetensors.torch import load_file

    mine, theirs = (load_file(p / "adapter" / "adapter_model.safetensors") for p in (run, one_process))
    assert mine.keys() == theirs.keys() and mine
    for k in mine:
        assert mine[k].shape == theirs[k].shape, k
        assert float((mine[k] - theirs[k]).abs().max()) < 1e-4, k

    crashed = tmp_path / "crashed"
    shutil.copytree(run, crashed)
    for name in ("summary.json", "adapter", "best", "last"):
        path = crashed / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    assert [p.name for p in (crashed / "checkpoints").iterdir() if p.name != "step-000000"] == ["step-000002"]
    r = tunedesk("resume", str(crashed), "--json-events")
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((crashed / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "finished" and summary["steps"] == 4
    plan = json.loads((crashed / "plan.json").read_text(encoding="utf-8"))
    assert (plan["sharded"], plan["processes"], plan["grad_accum"]) == (False, 1, 2)
    _close(_losses(one_process), _losses(crashed), range(1, 5))


def _card(gib: float) -> Target:
    cap = int(gib * GiB)
    return Target("cuda", budget_from_cap(cap), cap, 64 * GiB, bf16=True)


def _request(gpus: int, shard: bool | None = None, quantization: str | None = None) -> RunConfig:
    cfg = RunConfig()
    cfg.train.gpus, cfg.train.shard, cfg.model.quantization = gpus, shard, quantization
    return cfg


LENGTHS = np.full(200, 1024)


def test_the_planner_shards_a_model_whose_weights_fit_two_cards_but_not_one():
    """Qwen2.5-7B unquantized (the user's choice) on simulated 12 GB cards: its 14 GiB of
    weights do not fit one, half of its layers' weights plus the embeddings and two
    gathered layers do."""
    m = model_info.from_preset("qwen2.5-7b")
    one = sharding.resolve(_request(1, quantization="none"), m, _card(12), LENGTHS, train_rows=200)
    assert not one.fits and one.breakdown["weights"] > one.budget_bytes

    two = sharding.resolve(_request(2, quantization="none"), m, _card(12), LENGTHS, train_rows=200)
    assert two.fits and two.sharded and two.processes == 2 and two.quantization == "none"
    assert two.estimate_bytes <= two.budget_bytes
    # Per card: half the layers' weights, the root whole, two layers gathered; not the whole model.
    assert 0.5 * one.breakdown["weights"] < two.breakdown["weights"] < 0.75 * one.breakdown["weights"]
    why = two.reasons["processes"]
    assert "Sharded over 2 GPUs" in why and "does not fit one card" in why and "per card" in why
    assert "sharded over them" in two.headline()
    assert Plan.from_dict(json.loads(json.dumps(two.to_dict()))).sharded  # plan.json keeps the mode

    # Every process loads the whole model into RAM before sharding it: a PC without that RAM is told so.
    short = Target("cuda", _card(12).budget_bytes, _card(12).cap_bytes, 24 * GiB, bf16=True)
    tight = sharding.resolve(_request(2, quantization="none"), m, short, LENGTHS, train_rows=200)
    assert not tight.fits and not tight.sharded and "loads the whole model into RAM" in tight.reasons["processes"]

    # --no-shard keeps the copies, and says it does not fit; a checkpoint resumed in one
    # process is a plain plan again, estimated for the whole model.
    assert not sharding.resolve(_request(2, shard=False, quantization="none"), m, _card(12), LENGTHS, train_rows=200).fits
    alone = sharding.spread(two, 1, m)
    assert not alone.sharded and alone.processes == 1 and alone.estimate_bytes > alone.budget_bytes


def test_a_model_that_fits_one_card_stays_data_parallel_unless_asked():
    m = model_info.from_preset("qwen2.5-1.5b")
    p = sharding.resolve(_request(2), m, _card(12), LENGTHS, train_rows=200)
    assert p.fits and not p.sharded and p.processes == 2
    assert "not sharded" in p.reasons["processes"]
    forced = sharding.resolve(_request(2, shard=True), m, _card(12), LENGTHS, train_rows=200)
    assert forced.sharded and "you asked for it" in forced.reasons["processes"]
    assert forced.optimizer == "adamw" and not forced.embeddings_on_cpu and not forced.lean_memory
    assert forced.quantization == "none"
    # QLoRA is not sharded: bitsandbytes' 4-bit weights lose their quantization state in fully_shard.
    qlora = sharding.resolve(_request(2, shard=True, quantization="4bit"), m, _card(12), LENGTHS, train_rows=200)
    assert not qlora.fits and "bitsandbytes" in qlora.suggestion and "--no-shard" in qlora.suggestion


def test_grpo_is_planned_data_parallel_and_never_sharded():
    """Each card samples its own answers, of their own lengths: sharded, the cards' passes
    (each one a collective) would differ in number and they would wait on each other."""
    from engine.config import GRPO_SHARD_REFUSED

    prompts = np.full(200, 200)

    def grpo(gpus: int, quantization: str | None = None) -> RunConfig:
        cfg = _request(gpus, quantization=quantization)
        cfg.method.name, cfg.method.group, cfg.method.completion_tokens = "grpo", 4, 256
        return cfg

    fits = sharding.resolve(grpo(2), model_info.from_preset("qwen2.5-1.5b"), _card(12), LENGTHS, train_rows=200,
                            prompts=prompts)
    assert fits.fits and not fits.sharded and fits.processes == 2 and fits.method == "grpo"
    assert "not sharded" in fits.reasons["processes"]
    # Qwen2.5-7B unquantized fits two 12 GB cards only sharded (the test above): for GRPO it is not sharded,
    # and the plan says why in the sentence the request is refused with.
    big = sharding.resolve(grpo(2, "none"), model_info.from_preset("qwen2.5-7b"), _card(12), LENGTHS, train_rows=200,
                           prompts=prompts)
    assert not big.fits and not big.sharded and GRPO_SHARD_REFUSED in big.reasons["processes"]


def test_a_sharded_dpo_run_with_one_validation_pair_finishes(tiny_model_folder, tmp_path):
    """Two sharded processes and one validation pair: the rank without a pair of its own
    runs the evaluation's pass too (uncounted), since every sharded forward is a collective;
    it used to wait for ever in the first evaluation."""
    from preference_set import write_preference_set

    data = write_preference_set(tmp_path / "pairs.jsonl", n=24)
    env = {**os.environ, "TUNEDESK_COLLECTIVE_TIMEOUT_S": "60"}
    r = subprocess.run([sys.executable, "-m", "engine.cli", "train", str(data), "--model", str(tiny_model_folder), "--out",
                        str(tmp_path), "--name", "dpo", "--method", "dpo", "--gpus", "2", "--shard", "--device", "cpu",
                        "--batch", "1", "--effective-batch", "2", "--max-steps", "2", "--eval-every", "2", "--seed", "3"],
                       capture_output=True, text=True, timeout=300, env=env, cwd=REPO, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "dpo"
    plan = json.loads((run / "plan.json").read_text(encoding="utf-8"))
    assert (plan["sharded"], plan["processes"], plan["method"]) == (True, 2, "dpo")
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "finished" and summary["steps"] == 2
    evals = [m for m in _metrics(run) if "eval_pref_accuracy" in m]
    assert [m["step"] for m in evals] == [0, 2] and all(m["eval_pref_accuracy"] in (0.0, 0.5, 1.0) for m in evals)
