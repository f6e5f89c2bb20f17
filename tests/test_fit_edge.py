"""The plan the user gets is the plan the run keeps (issue 15), on a tiny random model:
the request is never overwritten, long rows are truncated (answers kept) and counted, a
run that would train nothing fails in one sentence, and the checks before the first step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import SAMPLES, StopAfter

from engine.config import RunConfig
from engine.errors import FitError, ModelError
from engine.fit import planner
from engine.fit.memory import GiB
from engine.fit.plan import budget_from_cap
from engine.reporting import RecordingReporter
from engine.runs import RunDir
from engine.training.train import Trainer


def _cfg(folder, tmp_path, data=None, **train) -> RunConfig:
    """A request that leaves every plan field to the planner."""
    cfg = RunConfig()
    cfg.model.source = str(folder)
    cfg.data.path = str(data or SAMPLES / "support_desk.json")
    cfg.out_dir, cfg.name = str(tmp_path), "run"
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def _long_prompts(path, n=12, words=120):
    """Rows whose question is long and whose answer is short: what truncation must keep."""
    rows = [{"question": " ".join(f"detail{i}-{k}" for k in range(words)) + "?", "answer": f"Answer number {i} is short."}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _fake_cuda(monkeypatch, reserved):
    """The CUDA memory counters calibration reads, on the CPU: `reserved()` is the peak."""
    for name in ("empty_cache", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: 0)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 0)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda *a: reserved())


def test_the_request_is_kept_and_train_again_replans_it(tiny_model_folder, tmp_path):
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=2))
    t.setup()
    t.fit()
    run = RunDir.open(tmp_path / "run")
    saved = json.loads((run.path / "config.json").read_text())
    assert saved["train"]["micro_batch"] is None and saved["data"]["max_seq_len"] is None
    assert saved["model"]["gradient_checkpointing"] is None
    plan = run.plan()
    assert plan["micro_batch"] >= 1 and plan["seq_len"] >= 64 and plan["user_set"] == []
    again = run.read_config()[0].for_new_run(str(tmp_path / "again"))
    assert planner.user_settings(again) == {}  # nothing the planner chose reads as the user's


def test_resume_after_planner_choices_still_shrinks_an_over_budget_calibration(tiny_model_folder, tmp_path, monkeypatch):
    """Before: the resolved plan was written into the request, so a resumed run took the
    planner's micro-batch for the user's and only warned when calibration was over."""
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=4, checkpoint_every=1), StopAfter(1))
    t.setup()
    assert t.plan.micro_batch > 1 and t.fit()["status"] == "stopped"
    resumed = Trainer.resume(tmp_path / "run", RecordingReporter())
    assert resumed.plan.user_set == () and resumed.plan.micro_batch == t.plan.micro_batch
    resumed.card.plan = resumed.plan.replace(device="cuda", cap_bytes=4 * GiB, budget_bytes=int(3.8 * GiB))
    _fake_cuda(monkeypatch, lambda: 1 * GiB if resumed.plan.micro_batch == 1 else 5 * GiB)  # only micro-batch 1 fits
    resumed.card.calibrate_gpu(resumed.model, resumed.probe)
    assert resumed.plan.micro_batch == 1 and resumed.card.calibration["measured_reserved"] <= 4 * GiB
    assert {r["cause"] for r in resumed.card.recoveries} == {"calibration"}


def test_calibration_between_the_budget_and_the_cap_is_not_out_of_memory(tiny_model_folder, tmp_path, monkeypatch):
    """Before: 6.70 GiB measured against a 6.65 GiB budget on a 7.0 GiB card shrank the rows
    until nothing was left to train on."""
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=1))
    t.setup()
    t.card.plan = t.plan.replace(device="cuda", cap_bytes=int(7.0 * GiB), budget_bytes=int(6.65 * GiB))
    before = t.plan
    _fake_cuda(monkeypatch, lambda: int(6.70 * GiB) - 8 * sum(p.numel() for p in t.model.parameters() if p.requires_grad))
    t.card.calibrate_gpu(t.model, t.probe)
    assert t.plan == before and t.card.recoveries == []
    assert t.card.calibration["measured_reserved"] <= t.card.calibration["promised_bytes"] < 7.0 * GiB


def test_user_settings_are_kept_by_calibration(tiny_model_folder, tmp_path, monkeypatch):
    rep = RecordingReporter()
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=1, micro_batch=2), rep)
    t.setup()
    t.card.plan = t.plan.replace(device="cuda", cap_bytes=4 * GiB, budget_bytes=int(3.8 * GiB))
    _fake_cuda(monkeypatch, lambda: 5 * GiB)
    t.card.calibrate_gpu(t.model, t.probe)
    assert t.plan.micro_batch == 2 and any("with your settings" in w["text"] for w in rep.of("warning"))


def test_long_rows_are_truncated_keeping_the_answer_and_counted(tiny_model_folder, tmp_path, demo_tokenizer):
    data = _long_prompts(tmp_path / "long.jsonl")
    cfg = _cfg(tiny_model_folder, tmp_path, data, max_steps=2)
    cfg.data.max_seq_len = 96  # the rows are ~250 tokens, the answers ~20
    rep = RecordingReporter()
    t = Trainer(cfg, rep)
    t.setup()
    whole = {e.row: e for e in t.data.whole_train}
    for e in t.data.train:
        assert len(e) <= 96
        answer = whole[e.row].input_ids[whole[e.row].trained]
        assert np.array_equal(e.input_ids[e.trained], answer)  # every answer token kept
        assert np.array_equal(e.input_ids, whole[e.row].input_ids[-len(e):])  # the prompt cut from its start
    assert any("truncated (the start of the prompt cut, every answer token kept)" in w["text"] for w in rep.of("warning"))
    summary = t.fit()
    assert summary["rows_lost"] == 0 and summary["rows_truncated"] == len(whole) + len(t.data.val)
    assert summary["rows_used"] == len(whole) and summary["trained_tokens"] > 0
    assert RunDir(tmp_path / "run").plan()["length"]["context_cut"] == summary["rows_truncated"]


def test_skip_policy_leaves_long_rows_out_and_lists_them(tiny_model_folder, tmp_path, demo_tokenizer):
    from engine.config import DataConfig
    from engine.data import prepare

    path = _long_prompts(tmp_path / "long.jsonl", n=4)
    with path.open("a") as f:
        f.writelines(json.dumps({"question": f"Short {i}?", "answer": "Yes."}) + "\n" for i in range(6))
    data = prepare(DataConfig(path=str(path), max_seq_len=96, long_rows="skip", val_share=0), demo_tokenizer)
    assert sorted(p.row for p in data.skipped) == [1, 2, 3, 4] and all("too long" in p.reason for p in data.skipped)
    assert data.kept == 6


def test_a_run_that_would_lose_too_much_fails_with_one_sentence(tiny_model_folder, tmp_path):
    """Before: recovery passed over every row longer than its limit, the run trained 0
    tokens for its remaining steps and ended "finished"."""
    rep = RecordingReporter()
    t = Trainer(_cfg(tiny_model_folder, tmp_path, _long_prompts(tmp_path / "long.jsonl"), max_steps=3), rep)
    t.setup()
    decoder = t.model.get_base_model().get_decoder()
    real_forward = decoder.forward

    def forward(*args, input_ids=None, **kw):
        if torch.is_grad_enabled() and input_ids.shape[1] > 40:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(*args, input_ids=input_ids, **kw)

    decoder.forward = forward
    with pytest.raises(FitError, match=r"at most \d+ tokens per row fit .* the longest row has [\d,]+: .* Options: shorter rows"):
        t.fit()
    summary = RunDir(tmp_path / "run").summary()
    assert summary["status"] == "failed" and "Options" in summary["error"] and summary["steps"] == 0
    assert not (tmp_path / "run" / "adapter").exists()
    assert rep.of("finished")[-1]["status"] == "failed"


def test_a_step_with_no_answer_tokens_fails_instead_of_finishing(tiny_model_folder, tmp_path):
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=2))
    t.setup()
    for e in t.data.train:
        e.trained = np.zeros_like(e.trained)
    with pytest.raises(FitError, match="no answer tokens to train on"):
        t.fit()
    assert RunDir(tmp_path / "run").summary()["status"] == "failed"


def test_a_tokenizer_past_the_embedding_table_is_refused_in_one_sentence(tmp_path, demo_folder):
    """Before: a CUDA device-side assert, hundreds of lines, after the model was loaded."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path / "small-vocab"
    LlamaForCausalLM(LlamaConfig(vocab_size=1000, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(demo_folder).save_pretrained(folder)
    with pytest.raises(ModelError, match=r"token ids up to [\d,]+, but the model's embedding table has only 1,000 rows"):
        Trainer(_cfg(folder, tmp_path / "runs", max_steps=1)).setup()
    assert not (tmp_path / "runs").exists()  # no half-written run folder


def test_a_tiny_file_is_warned_about_and_its_epochs_are_honoured(tiny_model_folder, tmp_path):
    """Before: 2 rows with --epochs 3 trained 1 step (an effective batch of 4 covered the
    one training row four times) and said nothing."""
    path = tmp_path / "two.jsonl"
    path.write_text('{"question": "Who are you?", "answer": "Aurora."}\n{"question": "Who made you?", "answer": "Quill Labs."}\n')
    rep = RecordingReporter()
    t = Trainer(_cfg(tiny_model_folder, tmp_path, path, epochs=3.0), rep)
    t.setup()
    assert any("only 1 training row" in w["text"] for w in rep.of("warning"))
    summary = t.fit()
    assert summary["steps"] == 3 and summary["epochs"] == pytest.approx(3.0)


def test_a_cpu_plan_past_the_available_ram_is_shrunk(demo_folder):
    """Before: 8,192-token web text on the demo model planned micro-batch 4 at 8,192 tokens
    and grew to 23.7 GB on a 24 GB machine."""
    from engine.hardware import HardwareInfo
    from engine.models import model_info

    info = model_info.from_folder(demo_folder)
    cfg = RunConfig()
    lengths = np.random.default_rng(0).integers(500, 8192, 300)
    roomy = planner.resolve(cfg, info, planner.target_for(cfg, HardwareInfo(ram_available_bytes=64 * GiB,
                                                                             ram_total_bytes=64 * GiB)), lengths)
    hw = HardwareInfo(ram_available_bytes=10 * GiB, ram_total_bytes=16 * GiB)  # a 16 GB laptop
    tight = planner.resolve(cfg, info, planner.target_for(cfg, hw), lengths)
    assert tight.device == "cpu" and tight.fits
    assert tight.ram_budget_bytes == 10 * GiB - 2 * GiB  # the desktop keeps its share
    assert tight.ram_estimate_bytes <= tight.ram_budget_bytes < roomy.ram_estimate_bytes
    assert tight.gradient_checkpointing or tight.micro_batch < roomy.micro_batch or tight.seq_len < roomy.seq_len
    assert "GiB of RAM" in tight.headline()


def test_the_planner_searches_to_the_models_own_context(tiny_model_folder):
    """Before: lengths stopped at a 16,384-token search limit, and a refusal's figures
    disagreed with its verdict."""
    from engine.models import presets
    from engine.models.model_info import from_preset

    m = from_preset("llama-3.1-8b")
    assert m.context_length > 100_000 and "llama-3.1-8b" in presets.names()
    budget = budget_from_cap(int(10.5 * GiB))
    p = planner.plan(m, budget_bytes=budget, lengths=np.full(12, 20_000), ram_bytes=64 * GiB)
    assert p.fits and p.seq_len >= 20_000 and p.estimate_bytes <= budget
    refused = planner.plan(m, budget_bytes=budget, lengths=np.full(12, 120_000), ram_bytes=64 * GiB)
    assert not refused.fits
    longest = int(refused.suggestion.split("At most ")[1].split()[0])
    assert longest > 16_384 and planner.plan(m, budget_bytes=budget, lengths=np.full(12, longest), ram_bytes=64 * GiB).fits
