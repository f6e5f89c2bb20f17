"""Issue 22, datasets round two: the inputs that escaped (deep JSON through `train`,
`loss_weight`, the help texts' defaults), plain text one document per line, and long
plain text split into pieces. The malformed files themselves are in test_malformed_files.py."""

from __future__ import annotations

import json

import pytest
from conftest import trained_pieces, tunedesk
from malformed_corpus import deep_json, qa

from engine.config import DataConfig
from engine.data import prepare
from engine.data.render import render
from engine.data.shapes import detect, to_conversation
from engine.errors import DataError


def test_loss_weight_on_messages_is_honoured(demo_tokenizer):
    record = {"messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "An old answer.", "loss_weight": 0.0},
        {"role": "user", "content": "And now?"},
        {"role": "assistant", "content": "Still me.", "loss_weight": 1.0},
    ]}
    conv = to_conversation(record, detect([record]))
    assert [m.get("weight") for m in conv if m["role"] == "assistant"] == [0.0, 1.0]
    assert trained_pieces(demo_tokenizer, render(demo_tokenizer, conv)) == ["Still me.<|im_end|>"]


def test_deep_json_through_train_is_one_sentence(tmp_path):
    path = tmp_path / "faq.json"
    path.write_text(deep_json(5000), encoding="utf-8")
    r = tunedesk("train", str(path), "--max-steps", "1", "--out", str(tmp_path / "runs"), "--device", "cpu")
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "RecursionError" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("tunedesk train: error: faq.json:") and "nested too deeply" in line and "line 1" in line


def test_inspect_help_tells_the_real_default():
    r = tunedesk("inspect", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "default 1024" not in text
    assert "default: none, every row shown whole" in text


def test_a_file_of_one_row_says_how_many_are_needed(tmp_path, demo_tokenizer):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(qa(1)[0]) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        prepare(DataConfig(path=str(path)), demo_tokenizer)
    assert "Skipped: " not in str(e.value) and "At least 2 are needed" in str(e.value)
