"""Accuracy of a run trained on labeled data (text + label): on the validation split, the
base model (adapter off) and the tuned one each answer every row greedily, in a few
tokens, and an answer counts when it is the row's label. Written to the run folder as
compare/accuracy.json.

An answer matches when, lower-cased, its first line without surrounding spaces, quotes
and closing punctuation is the label ("Positive." matches positive; "It is positive" does
not): exact label match, forgiving only what a label cannot differ by.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..atomic import write_json
from ..data import prepare
from ..errors import TuneDeskError
from ..eval.generate import last_answer_start
from . import ChatSession, GenerationSettings
from .compare import COMPARE_DIR

SPARE_TOKENS = 3  # beyond the longest label's tokens: room for a closing dot, never for an essay
_STRIP = " \t\"'`*.!,;:()[]"


def normalize(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip(_STRIP).lower() if lines else ""


def matches(answer: str, label: str) -> bool:
    return normalize(answer) == normalize(label)


def label_accuracy(session: ChatSession, *, limit: int | None = None,
                   progress: Callable[[int, int], None] = lambda done, total: None,
                   stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """Base and tuned accuracy on the validation rows (the first `limit` of them)."""
    cfg, _ = session.run.read_config()
    data = prepare(cfg.data, session.tokenizer)
    if data.shape.format != "labeled":
        raise TuneDeskError(f"{session.run.path.name}: accuracy needs labeled data (a text and a label per row); "
                            f"this run trained on the {data.shape.format} format")
    labels = data.shape.options["labels"]
    if not data.val:
        raise TuneDeskError(f"{session.run.path.name}: no validation rows to measure accuracy on")
    longest = max(len(session.tokenizer(name, add_special_tokens=False)["input_ids"]) for name in labels)
    settings = GenerationSettings(max_new_tokens=longest + SPARE_TOKENS, greedy=True, repetition_penalty=1.0)
    examples = data.val[:limit] if limit else data.val
    rows = []
    for i, e in enumerate(examples):
        if stop():
            break
        start = last_answer_start(e.trained)
        prompt = torch.tensor(np.asarray(e.input_ids[:start], dtype=np.int64))[None]
        label = session.tokenizer.decode(e.input_ids[start:], skip_special_tokens=True).strip()
        row: dict[str, Any] = {"row": e.row, "label": label}
        for side, base in (("base", True), ("tuned", False)):
            row[side] = session.answer("", base=base, settings=settings, input_ids=prompt)
            row[f"{side}_correct"] = matches(row[side], label)
        rows.append(row)
        progress(i + 1, len(examples))
    n = len(rows)
    result = {
        "run": str(session.run.path),
        "rows": n,
        "labels": labels,
        "instruction": data.shape.options["instruction"],
        "base_accuracy": round(sum(r["base_correct"] for r in rows) / n, 4) if n else None,
        "tuned_accuracy": round(sum(r["tuned_correct"] for r in rows) / n, 4) if n else None,
        "examples": rows,
    }
    out = session.run.path / COMPARE_DIR
    out.mkdir(exist_ok=True)
    write_json(out / "accuracy.json", result)
    return result


def sentence(result: dict[str, Any]) -> str:
    """'Validation accuracy (60 rows, exact label match): 12% before -> 85% after'."""
    if not result["rows"]:
        return "No validation row was answered."
    return (f"Validation accuracy ({result['rows']} rows, exact label match): "
            f"{result['base_accuracy']:.0%} before -> {result['tuned_accuracy']:.0%} after")
