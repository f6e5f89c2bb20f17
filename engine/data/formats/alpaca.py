"""Alpaca: an instruction, an optional input appended to it, an output; optionally a
system prompt, a chain of thought and earlier turns as `history: [[q, a], …]`."""

from __future__ import annotations

from typing import Any

from .base import DataFormat, Example, Mapping, RowError, answer_turn, optional_parts, system_turn, text


def detect(keys: Mapping, record: dict) -> Mapping | None:
    if "instruction" not in keys or "output" not in keys:
        return None
    m = {"instruction": keys["instruction"], "answer": keys["output"], **optional_parts(keys)}
    for part in ("input", "history"):
        if part in keys:
            m[part] = keys[part]
    return m


def convert(record: dict, m: Mapping) -> list[dict]:
    msgs = system_turn(record, m)
    prompt = text(record, m["instruction"], "instruction", required=True)
    extra = text(record, m.get("input"), "input", required=False)
    if extra.strip():
        prompt = f"{prompt}\n\n{extra}"
    msgs += _history(record.get(m["history"]) if "history" in m else None, m.get("history"))
    return msgs + [{"role": "user", "content": prompt}, answer_turn(record, m)]


def _history(value: Any, key: str | None) -> list[dict]:
    """Earlier turns, [[instruction, answer], …], before the current one."""
    if value in (None, "", []):
        return []
    if not isinstance(value, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        raise RowError(f"field '{key}' should be a list of [question, answer] pairs", "wrong type")
    out = []
    for q, a in value:
        if not isinstance(q, str) or not isinstance(a, str):
            raise RowError(f"field '{key}' should hold text pairs", "wrong type")
        out += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return out


FORMAT = DataFormat(
    name="alpaca",
    label="Alpaca: instruction / input / output",
    roles=("instruction", "input", "answer", "system", "reasoning", "history"),
    required=("instruction", "answer"),
    detect=detect,
    convert=convert,
    examples=(
        Example("alpaca", {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
                "(optional `system`, a chain of thought as for `pair`, `history: [[q, a], …]`)"),
    ),
)
