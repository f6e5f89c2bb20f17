"""GRPO's rows: a prompt to sample answers for and the reference answer to check them
against, from an ordinary supervised file (question/answer, alpaca, reasoning data such
as Question/Complex_CoT/Response, messages).

The prompt is the row's tokens before its last answer: the rendered conversation up to
the template's generation prompt, exactly the ids training and Compare write (render.py
ends every answer's prefix with generation_prompt's text). For one-turn rows that is the
first trained token; for a dialogue the earlier turns are the prompt's context.

The reference is decoded from the row's trained tokens rather than carried as raw text:
the tokenized rows are what the cache keeps (no second copy of the file's text), the
decoded text is the answer as this template renders it for every format alike (a
reasoning row's <think> block where the template keeps one, the special end-of-turn
tokens skipped), and the rewards take its final part (after </think>) themselves.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import DataError
from .example import Example
from .fit_length import prompt_length
from .prepare import PreparedData
from .readers import RowProblem

KIND = "no prompt or reference"


def to_prompts(data: PreparedData, tokenizer, *, need_reference: bool, path: str = "") -> PreparedData:
    """`data` with each row's prompt as an untrained example and its reference in
    `references`; rows without a prompt (plain text) or, when a reward compares answers,
    without a reference answer are listed as skipped, each with its reason."""
    refs: dict[int, str] = {}
    problems: list[RowProblem] = []

    def convert(examples: list[Example]) -> list[Example]:
        out = []
        for e in examples:
            start = prompt_length(e)
            if start == 0 or start >= len(e):
                problems.append(RowProblem(e.row, "no prompt to answer: GRPO samples answers to a question, and this "
                                                  "row has only text to continue", KIND))
                continue
            answer = e.input_ids[start:][e.trained[start:]]
            text = tokenizer.decode([int(x) for x in answer], skip_special_tokens=True).strip()
            if need_reference and not text.rsplit("</think>", 1)[-1].strip():
                problems.append(RowProblem(e.row, "no reference answer to check the sampled answers against (its answer "
                                                  "is empty after the chain of thought)", KIND))
                continue
            refs[e.row] = text
            out.append(Example(e.row, e.input_ids[:start], np.zeros(start, dtype=bool)))
        return out

    train, val = convert(data.whole_train), convert(data.whole_val)
    if len(train) < 1:
        first = "; ".join(f"row {p.row}: {p.reason}" for p in problems[:2])
        raise DataError(f"{path or 'the dataset'}: no row has a prompt{' and a reference answer' if need_reference else ''} "
                        f"for GRPO ({first}). Use question/answer rows, or pick rewards that need no reference "
                        "(format, length, regex).")
    lengths = np.array([len(e) for e in train + val], dtype=np.int64)
    # A fresh PreparedData: its whole rows are the prompts (what fitting to the plan's length starts from).
    return dataclasses.replace(data, train=train, val=val, skipped=list(data._read_skipped) + problems, lengths=lengths,
                              references=refs, length_fit=None)
