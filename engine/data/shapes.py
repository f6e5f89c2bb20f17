"""Recognise the shape of a dataset's records and turn each record into a conversation.

A conversation is a list of messages ``{"role": system|user|assistant, "content": str}``;
an assistant message may also carry ``"weight"`` (0 = not trained). Detection looks at
the field names of the first records; the user can override it with an explicit mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Pairs of (prompt field, answer field) under the names people use, first match wins.
PAIR_NAMES: list[tuple[str, str]] = [
    ("question", "answer"),
    ("question", "response"),
    ("query", "response"),
    ("query", "answer"),
    ("prompt", "response"),
    ("prompt", "completion"),
    ("prompt", "answer"),
    ("prompt", "output"),
    ("input", "output"),
    ("instruction", "response"),
    ("q", "a"),
    ("user", "assistant"),
    ("human", "assistant"),
    ("context", "response"),
]
ROLE_ALIASES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
}


class RowError(ValueError):
    """This record cannot become a conversation; the message is the reason."""


@dataclass
class Shape:
    format: str
    """alpaca | pair | messages | sharegpt"""
    mapping: dict[str, str] = field(default_factory=dict)
    """Role of each field: e.g. {'prompt': 'Question', 'answer': 'Response'}."""

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "mapping": dict(self.mapping)}


def _lower_keys(record: dict) -> dict[str, str]:
    return {k.lower(): k for k in record}


def detect(records: list[dict]) -> Shape | None:
    """The shape most of the sample records have, or None."""
    votes: dict[tuple, int] = {}
    for r in records:
        if not isinstance(r, dict):
            continue
        shape = _detect_one(r)
        if shape is not None:
            key = (shape.format, tuple(sorted(shape.mapping.items())))
            votes[key] = votes.get(key, 0) + 1
    if not votes:
        return None
    (fmt, mapping), _ = max(votes.items(), key=lambda kv: kv[1])
    return Shape(fmt, dict(mapping))


def _detect_one(r: dict) -> Shape | None:
    keys = _lower_keys(r)
    if "messages" in keys and isinstance(r[keys["messages"]], list):
        return Shape("messages", {"messages": keys["messages"]})
    if "conversations" in keys and isinstance(r[keys["conversations"]], list):
        return Shape("sharegpt", {"messages": keys["conversations"]})
    if "instruction" in keys and "output" in keys:
        m = {"instruction": keys["instruction"], "answer": keys["output"]}
        if "input" in keys:
            m["input"] = keys["input"]
        if "system" in keys:
            m["system"] = keys["system"]
        return Shape("alpaca", m)
    for p, a in PAIR_NAMES:
        if p in keys and a in keys:
            m = {"prompt": keys[p], "answer": keys[a]}
            if "system" in keys:
                m["system"] = keys["system"]
            return Shape("pair", m)
    return None


def _text(record: dict, key: str | None, what: str, *, required: bool) -> str:
    if key is None or key not in record or record[key] is None:
        if required:
            raise RowError(f"missing {what} field '{key}'")
        return ""
    value = record[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RowError(f"field '{key}' should be text, found {type(value).__name__}")
    if required and not value.strip():
        raise RowError(f"empty {what} ('{key}')")
    return value


def to_conversation(record: Any, shape: Shape) -> list[dict]:
    if not isinstance(record, dict):
        raise RowError(f"expected an object with fields, found {type(record).__name__}")
    m = shape.mapping
    msgs: list[dict] = []
    if shape.format in ("alpaca", "pair"):
        system = _text(record, m.get("system"), "system", required=False)
        if shape.format == "alpaca":
            prompt = _text(record, m["instruction"], "instruction", required=True)
            extra = _text(record, m.get("input"), "input", required=False)
            if extra.strip():
                prompt = f"{prompt}\n\n{extra}"
        else:
            prompt = _text(record, m["prompt"], "prompt", required=True)
        answer = _text(record, m["answer"], "answer", required=True)
        if system.strip():
            msgs.append({"role": "system", "content": system})
        msgs += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        return msgs
    if shape.format in ("messages", "sharegpt"):
        return _messages(record.get(m["messages"]), m["messages"])
    raise RowError(f"unknown format {shape.format}")


def _messages(items: Any, key: str) -> list[dict]:
    if not isinstance(items, list) or not items:
        raise RowError(f"'{key}' should be a non-empty list of messages")
    msgs = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise RowError(f"message {i} should be an object, found {type(item).__name__}")
        role_raw = item.get("role", item.get("from"))
        role = ROLE_ALIASES.get(str(role_raw).lower()) if role_raw is not None else None
        if role is None:
            raise RowError(f"message {i} has an unknown role '{role_raw}'")
        content = item.get("content", item.get("value"))
        if isinstance(content, list):  # OpenAI content parts
            content = "".join(str(p.get("text", p.get("value", ""))) for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise RowError(f"message {i} has no text content")
        msg = {"role": role, "content": content}
        if "weight" in item and role == "assistant":
            msg["weight"] = item["weight"]
        msgs.append(msg)
    assistants = [x for x in msgs if x["role"] == "assistant"]
    if not assistants:
        raise RowError("no assistant message to learn from")
    if not any(x["content"].strip() for x in assistants):
        raise RowError("empty assistant answer")
    return msgs
