"""What a data format is, and the field readers the formats share.

A format turns one record (a dict read from the file) into a conversation: a list of
messages ``{"role": system|user|assistant|tool, "content": str}``; an assistant message
may also carry ``"reasoning"`` (a chain of thought), ``"weight"`` (0 = context only) and
``"tool_calls"``; a row's tool schemas come first as ``{"role": "tools", "tools": […]}`` (tools.py).
Each format says once, in its own module, everything the rest of TuneDesk needs: its
name (``--format``, config.json), its label (the window's menu), the parts a user can map
to fields (``--map PART=FIELD``), how it is recognised, how a record is converted, and
example records (the README's table and the registry tests are made from them).

Reasoning and system prompts are not formats of their own: they are optional parts of
the single-turn formats, found under the names in REASONING_NAMES and SYSTEM_NAMES.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

Mapping = dict[str, str]
"""Part -> the file's field, e.g. {'prompt': 'Question', 'answer': 'Response'}."""

REASONING_NAMES = (
    "complex_cot", "reasoning", "reasoning_content", "thinking", "think", "thought", "thoughts",
    "cot", "chain_of_thought", "chain-of-thought", "rationale",
)
SYSTEM_NAMES = ("system", "system_prompt")


class RowError(ValueError):
    """This record cannot become a conversation; the message is the reason."""

    def __init__(self, reason: str, kind: str = "invalid row") -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass(frozen=True)
class Example:
    """One record as the README shows it; the registry tests detect and convert it."""

    title: str
    record: dict[str, Any]
    note: str = ""

    def markdown(self) -> str:
        return f"`{json.dumps(self.record, ensure_ascii=False)}`" + (f" {self.note}" if self.note else "")


@dataclass(frozen=True)
class DataFormat:
    name: str
    """--format's value and config.json's data.format."""
    label: str
    """The window's menu entry."""
    roles: tuple[str, ...]
    """The parts a mapping may name, in the order the window's form shows them."""
    required: tuple[str, ...]
    """The parts a mapping must name."""
    detect: Callable[[Mapping, dict], Mapping | None]
    """(the record's field names lower-cased -> as written, the record) -> the mapping, or
    None when the record does not have this shape."""
    convert: Callable[[dict, Mapping], list[dict]]
    """(record, mapping) -> conversation; raises RowError with the reason."""
    examples: tuple[Example, ...]
    plain_text: bool = False
    """Continued pre-training: every token is trained, and a row longer than the run's
    length is split into pieces (nothing lost) instead of truncated."""
    settle: Callable[[Mapping, Iterable[dict], dict], tuple[dict, list[str]]] | None = None
    """For a format whose rows need something of the whole dataset (the labeled format: the
    label names): (mapping, every record, the user's settings) -> (the keyword options
    `convert` gets, notes for the user); raises ValueError with the reason."""
    preference: bool = False
    """Each row holds a chosen and a rejected answer (DPO, ORPO): its conversation's last
    assistant message carries the rejected one as "rejected" (formats/preference.py)."""


def first(keys: Mapping, names) -> str | None:
    """The record's field under the first of `names` it has (keys: lower-cased -> as written)."""
    return next((keys[n] for n in names if n in keys), None)


def optional_parts(keys: Mapping) -> Mapping:
    """A single-turn record's system prompt and chain of thought, when it has them."""
    found = {"system": first(keys, SYSTEM_NAMES), "reasoning": first(keys, REASONING_NAMES)}
    return {part: name for part, name in found.items() if name is not None}


def text(record: dict, key: str | None, what: str, *, required: bool) -> str:
    """The text of field `key`; numbers are fine answers ("42"), other types are not."""
    if key is None or key not in record or record[key] is None:
        if required:
            raise RowError(f"missing {what} field '{key}'", "missing field")
        return ""
    value = record[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RowError(f"field '{key}' should be text, found {type(value).__name__}", "wrong type")
    if required and not value.strip():
        raise RowError(f"empty {what} ('{key}')", "empty field")
    return value


def system_turn(record: dict, m: Mapping) -> list[dict]:
    """The record's own system message, if its mapping names one and it is not blank."""
    system = text(record, m.get("system"), "system", required=False)
    return [{"role": "system", "content": system}] if system.strip() else []


def answer_turn(record: dict, m: Mapping) -> dict:
    """The trained assistant message: the answer, with its chain of thought if any."""
    assistant = {"role": "assistant", "content": text(record, m["answer"], "answer", required=True)}
    reasoning = text(record, m.get("reasoning"), "reasoning", required=False)
    if reasoning.strip():
        assistant["reasoning"] = reasoning.strip()
    return assistant
