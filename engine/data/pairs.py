"""Preference rows (DPO, ORPO) through the data pipeline: rendered twice, fitted to a
length side by side, and read back from the tokenized cache as `Pair`s.

A preference format gives the conversation of the chosen answer whose last assistant
message carries the rejected one (engine/data/formats/preference.py). Rendering it twice
through the chat template, once per answer, gives two sequences with the same prompt
tokens, each training only its own answer. The cache stores the two sequences one after
the other (sequence 2i is row i's chosen, 2i + 1 its rejected), so a file's pairs are held
as compactly as its plain examples."""

from __future__ import annotations

import numpy as np

from .example import Example, Pair
from .fit_length import LengthFit, fit_to_length, tail_length
from .readers import RowProblem
from .render import Rendered, render


def sides(conv: list[dict]) -> list[list[dict]]:
    """The conversations a row is trained on: one, or a preference row's chosen and rejected."""
    last = conv[-1]
    if last.get("role") != "assistant" or "rejected" not in last:
        return [conv]
    chosen = {k: v for k, v in last.items() if k != "rejected"}
    rejected = {k: v for k, v in chosen.items() if k != "reasoning"} | {"content": last["rejected"]}
    return [conv[:-1] + [chosen], conv[:-1] + [rejected]]


def render_row(tokenizer, conv: list[dict], reasoning: str) -> list[Rendered]:
    return [render(tokenizer, c, reasoning=reasoning) for c in sides(conv)]


def sample(row: int, rendered: list[Rendered], masks: list[np.ndarray], parts) -> dict:
    """A preview of a row (prepare.py's samples; inspect and the Data page show them): a
    pair's rejected side under "rejected"."""
    def one(r: Rendered, mask: np.ndarray) -> dict:
        return {"text": r.text, "spans": r.trained_spans, "tokens": len(r.input_ids), "trained": int(mask.sum())}

    out = {"row": row, **one(rendered[0], masks[0]), "parts": parts}
    if len(rendered) == 2:
        out["rejected"] = one(rendered[1], masks[1])
    return out


def longest(lengths: np.ndarray) -> np.ndarray:
    """Per pair, the longer of its two sequences (lengths alternate chosen, rejected)."""
    return np.maximum(lengths[0::2], lengths[1::2])


def tails(pairs: list[Pair]) -> np.ndarray:
    """Per pair, the longer answer tail (what truncation keeps whole)."""
    return np.array([max(tail_length(p.chosen), tail_length(p.rejected)) for p in pairs], dtype=np.int64)


def fit_pairs(pairs: list[Pair], limit: int, policy: str) -> LengthFit:
    """Each side fitted to `limit` as a chat row is (prompt cut from its start, the answer
    kept); a pair one of whose sides cannot be kept is left out whole."""
    out: list[Pair] = []
    problems: list[RowProblem] = []
    counts = {k: 0 for k in ("rows", "over", "context_cut", "answer_cut", "split", "skipped", "trained_before", "trained_after")}
    for p in pairs:
        c, r = fit_to_length([p.chosen], limit, policy), fit_to_length([p.rejected], limit, policy)
        counts["rows"] += 1
        counts["over"] += bool(c.over or r.over)
        counts["context_cut"] += bool(c.context_cut or r.context_cut) and not (c.answer_cut or r.answer_cut)
        counts["answer_cut"] += bool(c.answer_cut or r.answer_cut)
        counts["trained_before"] += c.trained_before + r.trained_before
        if c.problems or r.problems:
            problems.append(RowProblem(p.row, (c.problems or r.problems)[0].reason, "too long"))
            continue
        out.append(Pair(p.row, c.examples[0], r.examples[0]))
        counts["trained_after"] += c.trained_after + r.trained_after
    counts["skipped"] = len(problems)
    return LengthFit(examples=out, problems=problems, limit=limit, **counts)


def chosen_only(items: list) -> list[Example]:
    """A preference file trained by imitation (SFT, GRPO's reference answers): each row's chosen answer."""
    return [p.chosen if isinstance(p, Pair) else p for p in items]
