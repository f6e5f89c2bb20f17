"""Labeled data (text + label) from local files: detected, named, turned into an
instruction -> label conversation; and the accuracy match that Compare reports."""

from __future__ import annotations

import json

import pytest
from sentiment import write_parquet

from engine.chat.accuracy import matches
from engine.config import DataConfig
from engine.data.prepare import resolve_shape
from engine.data.shapes import to_conversation
from engine.errors import DataError


def _shape(path, **kw):
    notes: list[str] = []
    return resolve_shape(DataConfig(path=str(path), **kw), notes), notes


def test_a_review_sentiment_csv_is_labeled_data(tmp_path):
    f = tmp_path / "reviews.csv"
    f.write_text("review,sentiment\nGreat film,positive\nAwful plot,negative\nLoved it,positive\n")
    shape, notes = _shape(f)
    assert shape.format == "labeled" and shape.mapping == {"text": "review", "label": "sentiment"}
    assert shape.options["labels"] == ["negative", "positive"]
    conv = to_conversation({"review": "Awful plot", "sentiment": "negative"}, shape)
    assert conv == [{"role": "user", "content": "Classify the sentiment of this review as one of: negative, positive."
                                                "\n\nAwful plot"},
                    {"role": "assistant", "content": "negative"}]
    assert notes == ["labels (as written): negative (1 rows), positive (2 rows)"]


def test_an_imdb_shaped_parquet_takes_its_classlabel_names(tmp_path):
    shape, notes = _shape(write_parquet(tmp_path / "imdb.parquet", n=20))
    assert shape.format == "labeled" and shape.options["labels"] == ["neg", "pos"]
    assert to_conversation({"text": "Fine.", "label": 1}, shape)[-1] == {"role": "assistant", "content": "pos"}
    assert "labels (ClassLabel names): neg (10 rows), pos (10 rows)" in notes


def test_integer_labels_named_by_the_user_and_a_label_without_a_name(tmp_path):
    f = tmp_path / "scores.jsonl"
    f.write_text("".join(json.dumps({"text": f"t{i}", "label": i % 3}) + "\n" for i in range(6)))
    shape, notes = _shape(f)
    assert shape.options["labels"] == ["0", "1", "2"] and any("numbers without names" in n for n in notes)
    shape, _ = _shape(f, labels=["bad", "ok"], instruction="Rate it.")
    assert to_conversation({"text": "x", "label": 1}, shape) == [
        {"role": "user", "content": "Rate it.\n\nx"}, {"role": "assistant", "content": "ok"}]
    from engine.data.formats.base import RowError

    with pytest.raises(RowError, match="label 2 has no name"):
        to_conversation({"text": "x", "label": 2}, shape)


def test_one_label_only_is_pointed_out(tmp_path):
    f = tmp_path / "sorted.jsonl"  # the first rows of IMDB's train split are all negative
    f.write_text("".join(json.dumps({"text": f"t{i}", "label": "neg"}) + "\n" for i in range(5)))
    _, notes = _shape(f)
    assert any("every row has the label 'neg'" in n for n in notes)


def test_free_text_answers_are_not_labels(tmp_path):
    f = tmp_path / "many.jsonl"
    f.write_text("".join(json.dumps({"text": f"t{i}", "label": f"answer {i}"}) + "\n" for i in range(150)))
    with pytest.raises(DataError, match="150 different labels"):
        _shape(f)


def test_plain_text_without_a_label_is_still_text(tmp_path):
    f = tmp_path / "docs.jsonl"
    f.write_text(json.dumps({"text": "A long document."}) + "\n")
    assert _shape(f)[0].format == "text"


@pytest.mark.parametrize("answer, label, ok", [
    ("pos", "pos", True), ("Positive.", "positive", True), (" \"neg\"\nbecause", "neg", True),
    ("It is positive", "positive", False), ("", "neg", False), ("negative", "neg", False),
])
def test_an_answer_matches_its_label_exactly(answer, label, ok):
    assert matches(answer, label) is ok
