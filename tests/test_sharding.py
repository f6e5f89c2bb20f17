"""A model sharded over two processes (FSDP2 over gloo on the CPU, launched by torchrun
through `tunedesk train --gpus 2 --shard`): the same updates as one process, a checkpoint
that resumes in one process, and the planner's choice between copying and sharding."""

from __future__ import annotations

import json
import shutil

import numpy as np
from conftest import tunedesk
from test_distributed import COMMON, DATA, _close, _losses, _metrics, one_process  # noqa: F401 (a fixture)

from engine.config import RunConfig
from engine.fit import sharding
from engine.fit.memory import GiB
from engine.fit.plan import Plan, Target, budget_from_cap
from engine.models import model_info


def test_a_sharded_run_makes_the_updates_of_one_process_and_resumes_in_one(one_process, tiny_model_folder, tmp_path):  # noqa: F811
    """Losses, validation losses and trained tokens of 4 steps equal one process's within
    2e-4 (measured: 1e-7; the sums are only ordered differently). Then the run is cut
    after its step-2 checkpoint, as a crash would leave it, and resumed in one process:
    steps 3 and 4 again equal the uninterrupted run's."""
    r = tunedesk("train", str(DATA), "--model", str(tiny_model_folder), "--out", str(tmp_path), "--name", "sharded",
                 "--max-steps", "4", "--checkpoint-every", "2", "--gpus", "2", "--shard", *COMMON)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "sharded"
    plan = json.loads((run / "plan.json").read_text(encoding="utf-8"))
    assert (plan["sharded"], plan["processes"], plan["micro_batch"], plan["grad_accum"]) == (True, 2, 2, 1)
    assert "Sharded over 2" in plan["reasons"]["processes"]
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
