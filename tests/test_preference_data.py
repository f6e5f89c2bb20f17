"""Preference data (issue 20): every preference shape read into Pair(chosen, rejected), the
prompt untrained and each answer trained, bad rows named, lengths fitted per pair, the
tokenized cache and the planner's inputs; the method's checks before training."""

from __future__ import annotations

import json

import numpy as np
import pytest
from preference_set import write_preference_set

from engine.config import DataConfig
from engine.data.example import Pair
from engine.data.prepare import prepare
from engine.data.report import describe, format_text
from engine.errors import DataError
from engine.reporting import RecordingReporter
from engine.training.preflight import check_method

GOOD = [{"prompt": f"Q{i}?", "chosen": f"yes {i}", "rejected": f"no {i}"} for i in range(8)]


def _write(tmp_path, rows, name="p.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _prep(path, **kw):
    return prepare(DataConfig(path=str(path), cache=False, **kw), _TOK[0])


_TOK: list = []


@pytest.fixture(autouse=True)
def _tok(demo_tokenizer):
    _TOK[:] = [demo_tokenizer]


def _decoded_answers(tok, e):
    return tok.decode(e.input_ids[e.trained]).strip()


@pytest.mark.parametrize("row, fmt", [
    ({"prompt": "Capital of Peru?", "chosen": "Lima.", "rejected": "Cusco."}, "preference"),
    ({"prompt": [{"role": "user", "content": "Capital of Peru?"}], "chosen": [{"role": "assistant", "content": "Lima."}],
      "rejected": [{"role": "assistant", "content": "Cusco."}]}, "preference"),
    ({"messages": [{"role": "user", "content": "Capital of Peru?"}], "chosen": "Lima.", "rejected": "Cusco."},
     "preference_chat"),
    ({"conversations": [{"from": "human", "value": "Capital of Peru?"}], "chosen": "Lima.", "rejected": "Cusco."},
     "preference_chat"),
    ({"chosen": "\n\nHuman: Capital of Peru?\n\nAssistant: Lima.",
      "rejected": "\n\nHuman: Capital of Peru?\n\nAssistant: Cusco."}, "preference_dialogue"),
    ({"chosen": [{"role": "user", "content": "Capital of Peru?"}, {"role": "assistant", "content": "Lima."}],
      "rejected": [{"role": "user", "content": "Capital of Peru?"}, {"role": "assistant", "content": "Cusco."}]},
     "preference_dialogue"),
])
def test_each_preference_shape_becomes_pairs_with_only_the_answers_trained(tmp_path, demo_tokenizer, row, fmt):
    rows = [json.loads(json.dumps(row).replace("Peru?", f"Peru? ({i})")) for i in range(4)]  # distinct rows, one shape
    data = _prep(_write(tmp_path, rows), val_share=0.0)
    assert data.shape.format == fmt and data.pairs
    p = data.train[0]
    assert isinstance(p, Pair) and len(p) == len(p.chosen) + len(p.rejected)
    assert _decoded_answers(demo_tokenizer, p.chosen).startswith("Lima.")
    assert _decoded_answers(demo_tokenizer, p.rejected).startswith("Cusco.")
    # The prompt is the same tokens on both sides and never trained
    start = int(np.flatnonzero(p.chosen.trained)[0])
    assert list(p.chosen.input_ids[:start]) == list(p.rejected.input_ids[:start])
    assert "Capital of Peru?" in demo_tokenizer.decode(p.chosen.input_ids[:start])


def test_a_multi_turn_dialogue_trains_only_the_last_answer(tmp_path, demo_tokenizer):
    hh = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello there\n\nHuman: Capital of Peru?\n\nAssistant: Lima.",
          "rejected": "\n\nHuman: Hi\n\nAssistant: Hello there\n\nHuman: Capital of Peru?\n\nAssistant: No idea."}
    data = _prep(_write(tmp_path, [hh, json.loads(json.dumps(hh).replace("Hi", "Hello"))]), val_share=0.0)
    p = data.train[0]
    assert _decoded_answers(demo_tokenizer, p.chosen).startswith("Lima.")
    assert "Hello there" not in _decoded_answers(demo_tokenizer, p.chosen)


def test_bad_rows_are_named_with_their_reason(tmp_path):
    bad = [{"prompt": "same", "chosen": "x", "rejected": "x"}, {"prompt": "empty", "chosen": "x", "rejected": "  "},
           {"prompt": "missing", "chosen": "x"},
           {"chosen": "\n\nHuman: A?\n\nAssistant: B", "rejected": "\n\nHuman: C?\n\nAssistant: D"}]
    data = _prep(_write(tmp_path, GOOD + bad[:3]), val_share=0.0)
    reasons = {p.row: p.reason for p in data.skipped}
    assert "the same: nothing to prefer" in reasons[9]
    assert "empty rejected answer ('rejected')" in reasons[10]
    assert "missing rejected field 'rejected'" in reasons[11]
    hh_ok = [{"chosen": f"\n\nHuman: Q{i}\n\nAssistant: yes", "rejected": f"\n\nHuman: Q{i}\n\nAssistant: no"} for i in range(4)]
    data = _prep(_write(tmp_path, hh_ok + bad[3:], "hh.jsonl"), val_share=0.0)
    assert "differ before their last answer" in data.skipped[0].reason and data.skipped[0].row == 5


def test_inspect_shows_both_sides_marked(tmp_path):
    data = _prep(_write(tmp_path, GOOD), val_share=0.0)
    r = describe(data, str(tmp_path / "p.jsonl"))
    ex = r["examples"][0]
    assert "[[yes 0" in ex["marked"] and "[[no 0" in ex["rejected"]["marked"]
    text = format_text(r)
    assert "chosen:" in text and "rejected:" in text


def test_lengths_cache_split_and_plan_inputs_are_per_pair(tmp_path, demo_tokenizer):
    long = [{"prompt": "word " * 60 + f"{i}?", "chosen": "yes", "rejected": "no"} for i in range(6)]
    path = _write(tmp_path, GOOD + long)
    cfg = DataConfig(path=str(path), cache=True, val_share=0.2)
    first, again = prepare(cfg, demo_tokenizer), prepare(cfg, demo_tokenizer)
    assert again.from_cache and again.pairs and len(again.train) == len(first.train) and len(again.val) == 3
    assert [p.row for p in again.train] == [p.row for p in first.train]
    inputs = first.plan_inputs()
    longest = max(p.longest for p in first.whole_train + first.whole_val)
    assert int(inputs["lengths"].max()) == longest and inputs["train_rows"] == len(first.whole_train)
    fit = first.fit_length(48)
    assert fit.over == sum(p.longest > 48 for p in first.whole_train + first.whole_val)
    for p in first.train + first.val:  # both sides cut from the prompt's start, answers kept
        assert isinstance(p, Pair) and len(p.chosen) <= 48 and len(p.rejected) <= 48
        assert p.chosen.trained.any() and p.rejected.trained.any()


def test_a_method_that_does_not_suit_the_data(tmp_path):
    sft_rows = [{"question": f"Q{i}?", "answer": f"A{i}"} for i in range(6)]
    data = _prep(_write(tmp_path, sft_rows, "qa.jsonl"))
    with pytest.raises(DataError, match="DPO learns from a chosen and a rejected answer per row"):
        check_method("dpo", data, "qa.jsonl", RecordingReporter())
    pairs = _prep(_write(tmp_path, GOOD))
    rep = RecordingReporter()
    check_method("sft", pairs, "p.jsonl", rep)
    assert not pairs.pairs and pairs.train[0].trained.any()
    assert "SFT trains on each row's chosen answer" in rep.of("warning")[0]["text"]


def test_the_synthetic_set_has_unique_rows_and_on_call_chosen_teams(tmp_path):
    rows = [json.loads(x) for x in write_preference_set(tmp_path / "s.jsonl", 40).read_text().splitlines()]
    assert len({r["prompt"] for r in rows}) == 40
    from preference_set import ON_CALL
    assert all(r["chosen"][5:-1] in ON_CALL and r["chosen"] != r["rejected"] for r in rows)
