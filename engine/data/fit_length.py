"""Fit tokenized examples to the plan's sequence length instead of silently dropping them.

A chat row longer than the limit is truncated by default rather than skipped: the answer
is what the model learns from, so it must stay whole, while the prompt and earlier turns
are the cheapest part to lose, so they are cut from their start. Only when the last answer
alone is longer than the limit is the answer itself shortened, keeping its beginning and a
little of the prompt right before it (an answer's start makes no sense without its
question). Plain text (continued pre-training) is cut into consecutive pieces instead:
every token is still trained on, nothing is lost. The result counts what was done, so the
user is told in one sentence rather than finding out from a smaller dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .example import Example
from .readers import RowProblem

TRUNCATE, SKIP = "truncate", "skip"
POLICIES = (TRUNCATE, SKIP)


@dataclass(frozen=True)
class LengthFit:
    examples: list[Example]
    """What training uses: short rows unchanged, long ones truncated or split."""
    problems: list[RowProblem]
    """Rows dropped, kind 'too long'."""
    limit: int
    rows: int
    over: int
    context_cut: int
    """Truncated keeping every token of the last answer; the prompt was cut from its start."""
    answer_cut: int
    """Truncated inside the last answer, which alone is longer than the limit."""
    split: int
    """Plain texts cut into pieces; nothing lost."""
    skipped: int
    trained_before: int
    trained_after: int

    def merged(self, other: "LengthFit") -> "LengthFit":
        """Counts of two splits together (train and validation), examples of the first."""
        counts = {k: getattr(self, k) + getattr(other, k) for k in
                  ("rows", "over", "context_cut", "answer_cut", "split", "skipped", "trained_before", "trained_after")}
        return LengthFit(examples=self.examples, problems=self.problems + other.problems, limit=self.limit, **counts)

    def lost_trained_share(self) -> float:
        return 1.0 - self.trained_after / self.trained_before if self.trained_before else 0.0

    def to_dict(self) -> dict[str, int | float]:
        return {
            "limit": self.limit,
            "rows": self.rows,
            "over": self.over,
            "context_cut": self.context_cut,
            "answer_cut": self.answer_cut,
            "split": self.split,
            "skipped": self.skipped,
            "problems": len(self.problems),
            "trained_before": self.trained_before,
            "trained_after": self.trained_after,
            "lost_trained_share": self.lost_trained_share(),
        }

    def sentence(self) -> str:
        if not self.over:
            return ""
        parts = []
        if self.context_cut:
            parts.append(f"{self.context_cut} truncated (the start of the prompt cut, every answer token kept)")
        if self.answer_cut:
            parts.append(f"{self.answer_cut} truncated inside {'its answer' if self.answer_cut == 1 else 'their answers'}, "
                         "which alone did not fit")
        if self.split:
            texts = "long text" if self.split == 1 else "long texts"
            parts.append(f"{self.split} {texts} split into {self.limit:,}-token pieces, nothing lost")
        if self.skipped:
            parts.append(f"{self.skipped} skipped (raise the sequence length to keep {'it' if self.skipped == 1 else 'them'})")
        share = self.lost_trained_share()
        lost = f"; {_percent(share)} of the trained tokens lost" if share > 0 else ""
        verb = "is" if self.over == 1 else "are"
        rows = "row" if self.rows == 1 else "rows"
        return f"{self.over} of {self.rows:,} {rows} {verb} longer than {self.limit:,} tokens: {', '.join(parts)}{lost}."


def _percent(share: float) -> str:
    # A tiny loss must not read as "0.0%": the user would think nothing was lost.
    return "less than 0.1%" if share < 0.001 else f"{share:.1%}"


def _last_span_start(trained: np.ndarray) -> int | None:
    idx = np.flatnonzero(trained)
    if not idx.size:
        return None
    breaks = np.flatnonzero(np.diff(idx) != 1)
    return int(idx[breaks[-1] + 1]) if breaks.size else int(idx[0])


def tail_length(e: Example) -> int:
    """Tokens from the start of the last answer to the end: what truncation keeps whole."""
    s = _last_span_start(e.trained)
    return len(e) - (s if s is not None else 0)


def prompt_length(e: Example) -> int:
    """Tokens before the last answer (all of them when nothing is trained: a prompt alone)."""
    s = _last_span_start(e.trained)
    return len(e) if s is None else s


def _too_long(e: Example, limit: int, why: str = "") -> RowProblem:
    return RowProblem(e.row, f"too long: {len(e)} tokens > {limit} (the plan's sequence length){why}", "too long")


def fit_to_length(examples: Iterable[Example], limit: int, policy: str = TRUNCATE, *, split_text: bool = False) -> LengthFit:
    """Examples of at most `limit` tokens each; see the module docstring for the rules."""
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 2:
        raise ValueError(f"sequence length limit must be an integer of at least 2 tokens, got {limit!r}")
    limit = int(limit)
    if policy not in POLICIES:
        raise ValueError(f"unknown length policy {policy!r}; use one of {', '.join(POLICIES)}")
    out: list[Example] = []
    problems: list[RowProblem] = []
    rows = over = context_cut = answer_cut = split = 0
    trained_before = 0
    for e in examples:
        rows += 1
        trained_before += int(np.count_nonzero(e.trained))
        n = len(e)
        if n <= limit:
            out.append(e)
            continue
        over += 1
        if split_text:
            # A 1-token piece has no target once labels are shifted; an untrained one teaches nothing.
            pieces = [Example(e.row, e.input_ids[a : a + limit], e.trained[a : a + limit]) for a in range(0, n, limit)]
            pieces = [p for p in pieces if len(p) > 1 and p.trained.any()]
            if pieces:
                split += 1
                out += pieces
            else:
                problems.append(_too_long(e, limit, "; no piece has tokens to train on"))
            continue
        if policy == SKIP:
            problems.append(_too_long(e, limit))
            continue
        s = _last_span_start(e.trained)
        if s is not None and s >= n - limit:
            a, kind = n - limit, "context"
        else:
            # Keep the answer's beginning and the end of its question: a quarter of the limit of prompt.
            a, kind = max(0, (s or 0) - limit // 4), "answer"
        cut = Example(e.row, e.input_ids[a : a + limit], e.trained[a : a + limit])
        if not cut.trained.any():
            problems.append(_too_long(e, limit, "; no answer tokens left after truncating"))
            continue
        out.append(cut)
        if kind == "context":
            context_cut += 1
        else:
            answer_cut += 1
    return LengthFit(
        examples=out,
        problems=problems,
        limit=limit,
        rows=rows,
        over=over,
        context_cut=context_cut,
        answer_cut=answer_cut,
        split=split,
        skipped=len(problems),
        trained_before=trained_before,
        trained_after=sum(int(np.count_nonzero(x.trained)) for x in out),
    )
