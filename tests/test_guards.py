"""Issue 17 on a tiny random model: early stopping and the best adapter, the forgetting
meter's figures, replay rows mixed in, the EOS check; and the pieces they are made of."""

from __future__ import annotations

import difflib
import json
import re

import pytest
from conftest import tiny_run_config as _cfg

from engine.eval import probe
from engine.reporting import RecordingReporter
from engine.runs import RunDir, list_runs
from engine.training import replay
from engine.training.early_stop import BestKeeper
from engine.training.replay import rows_needed
from engine.training.train import Trainer


def test_best_keeper_counts_evaluations_without_a_new_best():
    k = BestKeeper(patience=2)
    assert k.update(0, 3.0) and k.update(10, 2.0)
    assert not k.update(20, 2.5) and not k.should_stop
    assert not k.update(30, 2.0) and k.should_stop  # as good is not better
    assert (k.best_step, k.best_loss) == (10, 2.0)
    again = BestKeeper(patience=2)
    again.load(k.state())
    assert again.best_step == 10 and again.should_stop
    assert not BestKeeper(None).should_stop


def test_probe_scores_and_verdict():
    items = probe.items()
    assert 12 <= len(items) <= 20 and {"en", "fr", "zh"} <= {i.lang for i in items}
    paris = next(i for i in items if i.prompt == "What is the capital of France?")
    assert probe.passes("The capital of France is PARIS.", paris) and not probe.passes("La femme est le français", paris)
    base = {"passed": 2, "total": 2, "answers": [{"prompt": "a", "ok": True}, {"prompt": "b", "ok": True}]}
    now = {"passed": 0, "total": 2, "answers": [{"prompt": "a", "ok": False}, {"prompt": "b", "ok": False}]}
    v = probe.verdict(1.0, 1.5, base, now)
    assert v["verdict"] == "worse" and "fewer epochs" in v["warning"] and v["lost"] == 2
    assert probe.verdict(1.0, 1.05, base, base)["verdict"] == "kept"
    assert probe.change_words(2.0, 1.0) == "better by 50%" and probe.change_words(1.0, 1.3) == "worse by 30%"


def test_replay_rows_make_the_share_of_the_mix():
    assert rows_needed(0.2, 80) == 20 and rows_needed(0, 80) == 0


def _plain(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def test_replay_prompts_are_not_the_meters():
    """The meter must measure what replay did not train: no replay prompt is one of the
    probe's, and none that reads like one (most of its letters in order) expects its answer."""
    items = probe.items()
    entries = replay.entries()
    assert len(entries) >= 60 and all(p.strip() for p, _ in entries)
    for prompt, accept in entries:
        for it in items:
            assert _plain(prompt) != _plain(it.prompt), prompt
            if difflib.SequenceMatcher(None, _plain(prompt), _plain(it.prompt)).ratio() >= 0.4:
                assert not set(accept) & set(it.accept), (prompt, it.prompt)


def test_replay_keeps_finished_right_answers_drawn_across_the_set(demo_tokenizer):
    from engine.eval.generate import Answer

    assert replay.kept(Answer("The capital of Germany is Berlin.", True, 8), ("berlin",))
    assert not replay.kept(Answer("It is Munich.", True, 4), ("berlin",))  # a mistake is not rehearsed
    assert not replay.kept(Answer("Berlin, Berlin, Berlin", False, 64), ("berlin",))  # unfinished
    assert replay.kept(Answer("Rain on the roof.", True, 5), ()) and not replay.kept(Answer("", True, 0), ())
    convs = [[{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i}."}]
             for i in range(10)]
    drawn = replay.examples(demo_tokenizer, convs, 4, 128)
    picked = {demo_tokenizer.decode(e.input_ids) for e in drawn}
    assert len(drawn) == 4 and len(picked) == 4 and picked != {demo_tokenizer.decode(e.input_ids) for e in
                                                               replay.examples(demo_tokenizer, convs[:4], 4, 128)}
    assert all(e.row < 0 for e in drawn)
    every = replay.examples(demo_tokenizer, convs, 25, 128)  # more rows than conversations: each one is in
    assert len({demo_tokenizer.decode(e.input_ids) for e in every}) == 10


def test_early_stop_keeps_the_best_adapter_and_the_meter(tiny_model_folder, tmp_path):
    """A learning rate far too high turns the validation loss up: the run stops early, the
    run's adapter is the best evaluation's, the last step's is kept apart."""
    rep = RecordingReporter()
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=40, lr=0.5, eval_every=1, patience=2, warmup_ratio=0.0,
                     replay_share=0.25), rep)
    t.setup()
    summary = t.fit()
    run = RunDir(tmp_path / "tiny")
    assert summary["stopped_early"] and summary["steps"] < 40 and summary["status"] == "finished"
    evals = {m["step"]: m["eval_loss"] for m in run.metrics() if "eval_loss" in m}
    assert summary["best_step"] == min(evals, key=evals.get) and summary["best_step"] < summary["steps"]
    assert run.adapter_step("best") == summary["best_step"] and run.adapter_step("last") == summary["steps"]
    # the meter: at every evaluation, saved in the metrics and the summary
    assert all("general_loss" in m for m in run.metrics() if "eval_loss" in m)
    p = summary["probe"]
    assert p["loss_base"] > 0 and p["total"] == len(probe.items()) and p["verdict"] in ("kept", "worse")
    assert json.loads((run.path / "probe.json").read_text())["tuned"]["total"] == p["total"]
    # replay: a quarter of the mix, saved with the run; the random model never stops: the EOS check says so
    assert summary["replay_share"] == 0.25 and summary["replay_rows"] >= 1 and (run.path / "replay.jsonl").is_file() \
        or summary["replay_rows"] == 0  # a random model rarely ends an answer: none may be kept
    assert summary["eos"]["ok"] is False and "did not stop" in summary["eos"]["warning"]
    # export takes the best unless told otherwise
    from engine.export import export

    for which in ("best", "last"):
        out = export(run.path, "adapter", tmp_path / f"export-{which}", adapter=which)
        assert json.loads((out / "tunedesk.json").read_text())["step"] == run.adapter_step(which)
    row = next(r for r in list_runs(tmp_path) if r["name"] == "tiny")
    assert row["best_step"] == summary["best_step"] and row["stopped_early"]


def test_no_early_stop_runs_every_step(tiny_model_folder, tmp_path):
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=6, lr=0.5, eval_every=1, patience=1, early_stop=False,
                     replay_share=0.0))
    t.setup()
    summary = t.fit()
    assert summary["steps"] == 6 and not summary["stopped_early"] and summary["replay_rows"] == 0


def test_adapter_choice_is_checked(tmp_path):
    run = RunDir(tmp_path)
    assert run.adapter_for("last") == run.adapter_dir  # no last/: the best was the last step
    with pytest.raises(Exception, match="--adapter"):
        run.adapter_for("newest")


def test_defaults_are_sized_to_the_data():
    from engine.fit import schedule

    small = schedule.choose(95, None, 4)  # the identity set on the CPU: 24 steps an epoch
    assert (small.epochs, small.lr, small.total_steps, small.eval_every) == (3.0, 5e-4, 72, 6) and not small.warning
    tiny = schedule.choose(8, None, 4)  # 2 steps an epoch: more passes, and a warning, rather than a step or two
    assert tiny.epochs == 10 and tiny.total_steps == 20 and "Only 8 training row(s)" in tiny.warning
    big = schedule.choose(50_000, None, 16)
    assert big.epochs == 1 and big.lr == 1e-4 and schedule.rank(50_000)[0] == 32
    mine = schedule.choose(95, None, 4, lr=1e-4, epochs=2, eval_every=5)
    assert (mine.lr, mine.epochs, mine.eval_every) == (1e-4, 2, 5) and mine.reasons["lr"] == schedule.SET_BY_YOU
