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


ARTICLE = ("Article {i}. The river port of town {i} handled grain, timber and salt; its quays were rebuilt "
           "after the flood of year {i}, and the new crane lifted twice the old load. ")


def test_one_document_per_line_txt_is_read_line_by_line(tmp_path, demo_tokenizer):
    path = tmp_path / "articles.txt"
    path.write_text("".join(ARTICLE.format(i=i) * (20 + i) + "\n" for i in range(30)), encoding="utf-8")
    data = prepare(DataConfig(path=str(path), val_share=0, cache=False), demo_tokenizer)
    assert data.shape.format == "text" and data.rows == 30 and data.kept == 30 and data.skipped == []
    assert sorted(e.row for e in data.train) == list(range(1, 31))  # each row is its line
    assert any("one document per line" in n for n in data.notes)
    first = min(data.train, key=lambda e: e.row)
    assert demo_tokenizer.decode(first.input_ids) == ARTICLE.format(i=0) * 20 + "<|im_end|>"


def test_short_lines_without_blank_lines_stay_one_document(tmp_path, demo_tokenizer):
    path = tmp_path / "poem.txt"
    path.write_text("".join(f"Line {i} of the poem about the sea.\n" for i in range(40)) + "\n\n"
                    + "".join(f"Line {i} of the poem about the hills.\n" for i in range(40)), encoding="utf-8")
    data = prepare(DataConfig(path=str(path), val_share=0, cache=False), demo_tokenizer)
    assert data.rows == 2 and sorted(e.row for e in data.train) == [1, 43]


@pytest.mark.parametrize("long_rows", ["truncate", "skip"])
def test_plain_text_longer_than_the_plan_is_split_never_skipped(tmp_path, demo_tokenizer, long_rows):
    path = tmp_path / "book.jsonl"
    long_text = " ".join(f"w{i % 97}" for i in range(6000))
    path.write_text("\n".join(json.dumps({"text": t}) for t in [long_text, "A short note.", "Another note."]) + "\n")
    data = prepare(DataConfig(path=str(path), val_share=0, cache=False), demo_tokenizer)
    whole = max(len(e) for e in data.whole_train)
    assert whole > 8192  # ~8,800 tokens, as in the issue
    fit = data.fit_length(8192, long_rows)
    assert data.skipped == [] and fit.split == 1 and fit.skipped == 0
    assert all(len(e) <= 8192 for e in data.train)
    assert sum(len(e) for e in data.train) == sum(len(e) for e in data.whole_train)  # nothing lost
