"""Fitting examples to the sequence length: answers stay whole, prompts are cut from the start."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.data.example import Example
from engine.data.fit_length import POLICIES, SKIP, TRUNCATE, LengthFit, fit_to_length
from engine.data.readers import RowProblem


def chat(row: int, *parts: tuple[int, bool], start: int = 0) -> Example:
    """An example from (length, trained) runs; ids count up from `start` so slices are checkable."""
    n = sum(k for k, _ in parts)
    trained = np.concatenate([np.full(k, t, dtype=bool) for k, t in parts])
    return Example(row, np.arange(start, start + n, dtype=np.int32), trained)


def text(row: int, n: int) -> Example:
    return Example(row, np.arange(n, dtype=np.int32) + 1000, np.ones(n, dtype=bool))


def test_short_rows_pass_through_as_the_same_object():
    a, b = chat(1, (10, False), (6, True)), chat(2, (4, False), (4, True))
    fit = fit_to_length([a, b], 16)
    assert fit.examples[0] is a and fit.examples[1] is b
    assert (fit.rows, fit.over, fit.context_cut, fit.answer_cut, fit.split, fit.skipped) == (2, 0, 0, 0, 0, 0)
    assert fit.problems == []
    assert fit.trained_before == fit.trained_after == 10
    assert fit.lost_trained_share() == 0.0
    assert fit.sentence() == ""


def test_truncate_keeps_every_answer_token_and_cuts_the_prompt_start():
    e = chat(7, (10, False), (6, True))  # ids 0..15, answer = 10..15
    fit = fit_to_length([e], 12)
    (out,) = fit.examples
    assert out is not e and out.row == 7
    assert out.input_ids.tolist() == list(range(4, 16))
    assert out.trained.tolist() == [False] * 6 + [True] * 6
    assert out.input_ids.dtype == np.int32 and out.trained.dtype == bool
    assert (fit.over, fit.context_cut, fit.answer_cut, fit.skipped) == (1, 1, 0, 0)
    assert fit.trained_before == fit.trained_after == 6
    assert fit.lost_trained_share() == 0.0


def test_exactly_the_answer_fits_is_a_context_cut():
    e = chat(1, (10, False), (6, True))
    fit = fit_to_length([e], 6)
    assert fit.examples[0].input_ids.tolist() == list(range(10, 16))
    assert fit.context_cut == 1 and fit.answer_cut == 0


def test_answer_longer_than_the_limit_keeps_its_start_and_a_quarter_limit_of_prompt():
    e = chat(3, (20, False), (30, True))  # answer = ids 20..49
    fit = fit_to_length([e], 16)
    (out,) = fit.examples
    # window starts limit // 4 = 4 tokens before the answer
    assert out.input_ids.tolist() == list(range(16, 32))
    assert out.trained.tolist() == [False] * 4 + [True] * 12
    assert (fit.context_cut, fit.answer_cut) == (0, 1)
    assert (fit.trained_before, fit.trained_after) == (30, 12)
    assert fit.lost_trained_share() == pytest.approx(1 - 12 / 30)


def test_answer_cut_with_a_short_prompt_starts_at_zero():
    e = chat(3, (2, False), (30, True))
    out = fit_to_length([e], 16).examples[0]
    assert out.input_ids.tolist() == list(range(0, 16))


def test_multi_turn_keeps_the_last_answer_whole_and_earlier_trained_tokens_inside_the_window():
    # user 8, assistant 5, user 8, assistant 6  -> 27 tokens
    e = chat(9, (8, False), (5, True), (8, False), (6, True))
    fit = fit_to_length([e], 17)
    (out,) = fit.examples
    assert out.input_ids.tolist() == list(range(10, 27))
    # the last answer (ids 21..26) whole; the tail of the first answer (ids 10..12) stays trained
    assert out.trained.tolist() == [True] * 3 + [False] * 8 + [True] * 6
    assert fit.context_cut == 1 and fit.answer_cut == 0
    assert (fit.trained_before, fit.trained_after) == (11, 9)


def test_skip_policy_drops_and_reports_the_row_with_both_numbers():
    short, long = chat(1, (4, False), (4, True)), chat(42, (100, False), (23, True))
    fit = fit_to_length([short, long], 64, SKIP)
    assert fit.examples == [short]
    (p,) = fit.problems
    assert isinstance(p, RowProblem)
    assert p.row == 42 and p.kind == "too long"
    assert "123" in p.reason and "64" in p.reason
    assert (fit.over, fit.skipped, fit.context_cut, fit.answer_cut) == (1, 1, 0, 0)
    assert (fit.trained_before, fit.trained_after) == (27, 4)
    assert fit.lost_trained_share() == pytest.approx(23 / 27)


def test_split_text_cuts_pieces_and_loses_nothing():
    e = text(5, 25)
    fit = fit_to_length([e], 10, split_text=True)
    assert [len(p) for p in fit.examples] == [10, 10, 5]
    assert all(p.row == 5 for p in fit.examples)
    assert np.concatenate([p.input_ids for p in fit.examples]).tolist() == e.input_ids.tolist()
    assert (fit.split, fit.context_cut, fit.answer_cut, fit.skipped) == (1, 0, 0, 0)
    assert fit.trained_before == fit.trained_after == 25
    assert fit.lost_trained_share() == 0.0


def test_split_text_applies_whatever_the_policy_and_drops_one_token_pieces():
    fit = fit_to_length([text(1, 21)], 10, SKIP, split_text=True)
    assert [len(p) for p in fit.examples] == [10, 10]  # the 1-token tail has no target
    assert fit.split == 1 and fit.skipped == 0 and fit.problems == []


def test_counts_to_dict_and_sentence():
    rows = [chat(i, (4, False), (4, True)) for i in range(1, 38)]
    rows += [chat(38, (12, False), (6, True)), chat(39, (20, False), (30, True)), chat(40, (100, False), (4, True))]
    fit = fit_to_length(rows, 16)
    assert (fit.rows, fit.over, fit.context_cut, fit.answer_cut, fit.skipped) == (40, 3, 2, 1, 0)
    d = fit.to_dict()
    json.dumps(d)
    assert d["over"] == 3 and d["answer_cut"] == 1 and d["limit"] == 16 and "examples" not in d
    assert d["lost_trained_share"] == pytest.approx(fit.lost_trained_share()) and fit.lost_trained_share() > 0
    s = fit.sentence()
    assert s.startswith("3 of 40 rows are longer than 16 tokens:")
    assert "2 truncated" in s and "every answer token kept" in s
    assert "1 truncated inside its answer" in s and "of the trained tokens lost" in s


def test_sentence_wording():
    big = [chat(i, (7000, False), (10, True)) for i in range(3)] + [chat(i, (4, False), (4, True)) for i in range(37)]
    assert fit_to_length(big, 6336).sentence() == (
        "3 of 40 rows are longer than 6,336 tokens: 3 truncated (the start of the prompt cut, every answer token kept)."
    )
    texts = [text(1, 5000), text(2, 9000), text(3, 100)]
    assert fit_to_length(texts, 4096, split_text=True).sentence() == (
        "2 of 3 rows are longer than 4,096 tokens: 2 long texts split into 4,096-token pieces, nothing lost."
    )
    skipped = fit_to_length([chat(1, (30, False), (10, True)), chat(2, (2, False), (2, True))], 20, SKIP).sentence()
    assert skipped.startswith("1 of 2 rows is longer than 20 tokens: 1 skipped")
    assert skipped.endswith("; 83.3% of the trained tokens lost.")


def test_generator_input_is_accepted():
    fit = fit_to_length((chat(i, (3, False), (3, True)) for i in range(4)), 8)
    assert fit.rows == 4 and len(fit.examples) == 4


@pytest.mark.parametrize("limit", [1, 0, -5, 2.5, "16", True])
def test_bad_limit_raises(limit):
    with pytest.raises(ValueError, match="at least 2"):
        fit_to_length([], limit)


def test_bad_policy_raises():
    with pytest.raises(ValueError, match="truncate, skip"):
        fit_to_length([], 16, "drop")
    assert POLICIES == (TRUNCATE, SKIP)


def test_result_is_frozen():
    fit = fit_to_length([], 16)
    assert isinstance(fit, LengthFit)
    with pytest.raises(AttributeError):
        fit.limit = 8  # type: ignore[misc]
