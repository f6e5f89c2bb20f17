"""DPO and ORPO through the real loop on the tiny random model (issue 20): the per-sequence
log-probs, the losses against TRL's formulas, the method's metrics, plan and records."""

from __future__ import annotations

import json
import math

import torch
import torch.nn.functional as F
from conftest import tiny_run_config, tunedesk
from preference_set import write_preference_set

from engine.config import RunConfig
from engine.data.batching import collate
from engine.data.example import Example
from engine.fit import planner
from engine.fit.memory import StepShape, breakdown
from engine.models import model_info, presets
from engine.models.loss import loss_sum, sequence_logps
from engine.reporting import RecordingReporter
from engine.training.train import Trainer


def _cfg(tiny, tmp_path, method: str, rows: int = 32, **train) -> RunConfig:
    cfg = tiny_run_config(tiny, tmp_path, **train)
    cfg.data.path = str(write_preference_set(tmp_path / "tickets.jsonl", rows))
    cfg.data.val_share = 0.25
    cfg.method.name = method
    return cfg


def test_sequence_logps_are_the_per_row_sums_of_the_loss(tiny_model_folder):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_folder)
    rows = [Example(0, torch.randint(0, 1000, (12,)).numpy(), (torch.arange(12) >= 5).numpy()),
            Example(1, torch.randint(0, 1000, (7,)).numpy(), (torch.arange(7) >= 3).numpy())]
    b = collate(rows, 0)
    logps, counts = sequence_logps(model, b, "cpu")
    assert counts.tolist() == [7, 4]  # the first token of an answer span is predicted from the prompt
    with torch.no_grad():
        whole = loss_sum(model, b["input_ids"], None, b["labels"])
        alone = [float(loss_sum(model, b["input_ids"][i : i + 1, : len(r)], None, b["labels"][i : i + 1, : len(r)]))
                 for i, r in enumerate(rows)]
    assert torch.allclose(-logps.sum(), whole, atol=1e-4)
    assert torch.allclose(-logps.detach(), torch.tensor(alone), atol=1e-4)


def test_dpo_trains_reports_its_metrics_and_records_its_method(tiny_model_folder, tmp_path):
    rep = RecordingReporter()
    t = Trainer(_cfg(tiny_model_folder, tmp_path, "dpo", max_steps=3, eval_every=3, lr=5e-3), rep)
    t.setup()
    assert t.plan.method == "dpo" and t.plan.sequences == 2 and t.data.pairs
    assert t.probe()  # calibration's step at the method's own shape: 2 x micro-batch sequences, the reference pass
    summary = t.fit()
    steps = [m for m in rep.of("metrics") if "loss" in m]
    # The adapter starts as the base (LoRA's B = 0): policy = reference, so DPO's first loss is log 2
    assert abs(steps[0]["loss"] - math.log(2)) < 1e-4 and abs(steps[0]["reward_margin"]) < 1e-5
    assert {"reward_margin", "pref_accuracy", "chosen_reward", "rejected_reward"} <= set(steps[-1])
    last = rep.of("metrics")[-1]
    assert {"eval_loss", "eval_pref_accuracy", "eval_reward_margin"} <= set(last)
    assert summary["method"] == "dpo" and "eval_pref_accuracy_start" in summary
    run = tmp_path / "tiny"
    assert json.loads((run / "plan.json").read_text())["method"] == "dpo"
    assert json.loads((run / "config.json").read_text())["method"]["name"] == "dpo"
    assert "DPO" in json.loads((run / "plan.json").read_text())["headline"]


def test_orpo_matches_trls_formula_and_lowers_its_loss(tiny_model_folder, tmp_path):
    rep = RecordingReporter()
    t = Trainer(_cfg(tiny_model_folder, tmp_path, "orpo", max_steps=20, eval_every=20, lr=1e-2), rep)
    t.setup()
    batch = t.objective.collate(t.data.train[:2])
    with torch.no_grad():
        losses, metrics = t.objective.losses(batch)
        logps, counts = sequence_logps(t.model, batch, t.device)
    ac, ar = logps[:2] / counts[:2], logps[2:] / counts[2:]
    # TRL's ORPOTrainer.odds_ratio_loss, and the chosen answer's NLL beside it
    log_odds = (ac - ar) - (torch.log1p(-torch.exp(ac)) - torch.log1p(-torch.exp(ar)))
    assert torch.allclose(losses, -ac - t.cfg.method.beta * F.logsigmoid(log_odds), atol=1e-5)
    assert torch.allclose(metrics["reward_margin"], t.cfg.method.beta * (ac - ar), atol=1e-6)
    t.fit()
    losses = [m["loss"] for m in rep.of("metrics") if "loss" in m]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.5, losses  # the tiny random model: ~10.6 at the start


def test_the_plan_counts_two_sequences_per_pair():
    info = model_info.from_preset("deepseek-r1-distill-qwen-7b")
    one = breakdown(info, StepShape("4bit", 2, 2, 1024, True))
    two = breakdown(info, StepShape("4bit", 2, 2, 1024, True, sequences=2))
    four = breakdown(info, StepShape("4bit", 2, 4, 1024, True))
    assert two["activations"] == four["activations"] > one["activations"] and two["weights"] == one["weights"]
    cfg = RunConfig()
    cfg.train.vram_gb = 12
    target = planner.target_for(cfg, None)
    sft = planner.resolve(cfg, info, target)
    cfg.method.name = "dpo"
    dpo = planner.resolve(cfg, info, target)
    assert (dpo.method, dpo.sequences, sft.method, sft.sequences) == ("dpo", 2, "sft", 1)
    assert dpo.estimate_bytes <= dpo.budget_bytes and dpo.micro_batch <= sft.micro_batch
    assert "two sequences" in dpo.reasons["method"] and "pairs" in dpo.reasons["micro_batch"]
    assert presets.names()  # the presets this test plans for are there


def test_a_stopped_dpo_run_resumes_with_its_method_and_pairs(tiny_model_folder, tmp_path):
    from conftest import StopAfter

    t = Trainer(_cfg(tiny_model_folder, tmp_path, "dpo", max_steps=4, eval_every=2, lr=5e-3), StopAfter(2))
    t.setup()
    assert t.fit()["status"] == "stopped"
    rep = RecordingReporter()
    again = Trainer.resume(tmp_path / "tiny", rep)
    assert again.plan.method == "dpo" and again.step == 2 and again.data.pairs
    summary = again.fit()
    assert summary["status"] == "finished" and summary["steps"] == 4
    assert [m["step"] for m in rep.of("metrics") if "reward_margin" in m] == [3, 4]
    # Compare on the validation rows: a pair's reference is its chosen answer
    r = tunedesk("compare", str(tmp_path / "tiny"), "--validation", "2", "--max-new-tokens", "4")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((tmp_path / "tiny" / "compare" / "validation.json").read_text())["examples"]
    assert len(rows) == 2 and all(x["reference"].startswith("Team ") and "base_loss" in x for x in rows)
