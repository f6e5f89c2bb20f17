"""Recognise the shape of a dataset's records and turn each record into a conversation.

A conversation is a list of messages ``{"role": system|user|assistant|tool, "content": str}``.
An assistant message may also carry ``"reasoning"`` (a chain of thought, rendered later
as the model family expects) and ``"weight"`` (0 = context only, not trained). The plain
text shape gives ``[{"role": "text", "content": …}]``: continued pre-training.

Detection votes over the first records' field names; the user can override it with a
format and a field mapping (`Shape`), e.g. format 'pair' with
{'prompt': 'Question', 'answer': 'Response', 'reasoning': 'Complex_CoT'}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FORMATS = ("alpaca", "pair", "messages", "sharegpt", "text")
# Pairs of (prompt field, answer field) under the names people use; first match wins.
PAIR_NAMES: list[tuple[str, str]] = [
    ("question", "answer"),
    ("question", "response"),
    ("question", "output"),
    ("query", "response"),
    ("query", "answer"),
    ("prompt", "response"),
    ("prompt", "completion"),
    ("prompt", "answer"),
    ("prompt", "output"),
    ("instruction", "response"),
    ("instruction", "output"),
    ("input", "output"),
    ("input", "response"),
    ("q", "a"),
    ("user", "assistant"),
    ("human", "assistant"),
    ("human", "gpt"),
    ("context", "response"),
    ("problem", "solution"),
]
REASONING_NAMES = (
    "complex_cot", "reasoning", "reasoning_content", "thinking", "think", "thought", "thoughts",
    "cot", "chain_of_thought", "chain-of-thought", "rationale",
)
SYSTEM_NAMES = ("system", "system_prompt")
TEXT_NAMES = ("text", "content", "document")
ROLE_ALIASES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "chatgpt": "assistant",
    "function_call": "assistant",  # the model's own tool call: it should learn to make it
    "tool_call": "assistant",
    "observation": "tool",  # a tool's answer: context, never trained
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}


class RowError(ValueError):
    """This record cannot become a conversation; the message is the reason."""

    def __init__(self, reason: str, kind: str = "invalid row") -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass
class Shape:
    format: str
    """alpaca | pair | messages | sharegpt | text"""
    mapping: dict[str, str] = field(default_factory=dict)
    """Field of each part, e.g. {'prompt': 'Question', 'answer': 'Response'}."""

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "mapping": dict(self.mapping)}

    def has_reasoning(self) -> bool:
        return "reasoning" in self.mapping or self.format in ("messages", "sharegpt")


def _first(keys: dict[str, str], names) -> str | None:
    return next((keys[n] for n in names if n in keys), None)


def detect(records: list[dict]) -> Shape | None:
    """The shape most of the sample records have, or None."""
    votes: dict[tuple, int] = {}
    for r in records:
        if isinstance(r, dict):
            shape = detect_one(r)
            if shape is not None:
                key = (shape.format, tuple(sorted(shape.mapping.items())))
                votes[key] = votes.get(key, 0) + 1
    if not votes:
        return None
    (fmt, mapping), _ = max(votes.items(), key=lambda kv: kv[1])
    return Shape(fmt, dict(mapping))


def detect_one(r: dict) -> Shape | None:
    keys = {k.lower(): k for k in r if isinstance(k, str)}
    if "messages" in keys and isinstance(r[keys["messages"]], list):
        return Shape("messages", {"messages": keys["messages"]})
    if "conversations" in keys and isinstance(r[keys["conversations"]], list):
        return Shape("sharegpt", {"messages": keys["conversations"]})
    extras = {}
    if (system := _first(keys, SYSTEM_NAMES)) is not None:
        extras["system"] = system
    if (reasoning := _first(keys, REASONING_NAMES)) is not None:
        extras["reasoning"] = reasoning
    if "instruction" in keys and "output" in keys:
        m = {"instruction": keys["instruction"], "answer": keys["output"], **extras}
        if "input" in keys:
            m["input"] = keys["input"]
        if "history" in keys:
            m["history"] = keys["history"]
        return Shape("alpaca", m)
    for p, a in PAIR_NAMES:
        if p in keys and a in keys:
            return Shape("pair", {"prompt": keys[p], "answer": keys[a], **extras})
    text = _first(keys, TEXT_NAMES)
    if text is not None and isinstance(r[text], str):
        return Shape("text", {"text": text})
    return None


def _text(record: dict, key: str | None, what: str, *, required: bool) -> str:
    if key is None or key not in record or record[key] is None:
        if required:
            raise RowError(f"missing {what} field '{key}'", "missing field")
        return ""
    value = record[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # numbers are fine answers ("42")
    if not isinstance(value, str):
        raise RowError(f"field '{key}' should be text, found {type(value).__name__}", "wrong type")
    if required and not value.strip():
        raise RowError(f"empty {what} ('{key}')", "empty field")
    return value


def to_conversation(record: Any, shape: Shape) -> list[dict]:
    if not isinstance(record, dict):
        raise RowError(f"expected an object with fields, found {type(record).__name__}", "wrong type")
    m = shape.mapping
    if shape.format == "text":
        return [{"role": "text", "content": _text(record, m["text"], "text", required=True)}]
    if shape.format in ("messages", "sharegpt"):
        return _messages(record.get(m["messages"]), m["messages"])
    if shape.format not in ("alpaca", "pair"):
        raise RowError(f"unknown format {shape.format}")

    msgs: list[dict] = []
    system = _text(record, m.get("system"), "system", required=False)
    if system.strip():
        msgs.append({"role": "system", "content": system})
    if shape.format == "alpaca":
        prompt = _text(record, m["instruction"], "instruction", required=True)
        extra = _text(record, m.get("input"), "input", required=False)
        if extra.strip():
            prompt = f"{prompt}\n\n{extra}"
        msgs += _history(record.get(m["history"]) if "history" in m else None, m.get("history"))
    else:
        prompt = _text(record, m["prompt"], "prompt", required=True)
    answer = _text(record, m["answer"], "answer", required=True)
    assistant = {"role": "assistant", "content": answer}
    reasoning = _text(record, m.get("reasoning"), "reasoning", required=False)
    if reasoning.strip():
        assistant["reasoning"] = reasoning.strip()
    return msgs + [{"role": "user", "content": prompt}, assistant]


def _history(value: Any, key: str | None) -> list[dict]:
    """Alpaca's optional history: [[instruction, answer], …] before the current turn."""
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


def _content(value: Any, i: int) -> tuple[str, str]:
    """(text, reasoning) of a message's content: a string, or OpenAI-style parts."""
    if isinstance(value, str):
        return value, ""
    if isinstance(value, list):
        text, reasoning = [], []
        for part in value:
            if isinstance(part, str):
                text.append(part)
                continue
            if not isinstance(part, dict):
                raise RowError(f"message {i} has a content part that is {type(part).__name__}", "wrong type")
            kind = str(part.get("type", "text")).lower()
            body = part.get("text", part.get("value", part.get(kind, "")))
            if not isinstance(body, str):
                raise RowError(f"message {i} has a content part whose text is {type(body).__name__}", "wrong type")
            (reasoning if kind in ("reasoning", "thinking", "thought") else text).append(body)
        return "".join(text), "\n".join(reasoning)
    if value is None:
        raise RowError(f"message {i} has no content", "missing field")
    raise RowError(f"message {i} content should be text, found {type(value).__name__}", "wrong type")


def _messages(items: Any, key: str) -> list[dict]:
    if not isinstance(items, list) or not items:
        raise RowError(f"'{key}' should be a non-empty list of messages", "wrong type")
    msgs = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise RowError(f"message {i} should be an object, found {type(item).__name__}", "wrong type")
        role_raw = item.get("role", item.get("from"))
        role = ROLE_ALIASES.get(str(role_raw).lower()) if role_raw is not None else None
        if role is None:
            raise RowError(f"message {i} has an unknown role '{role_raw}'", "invalid row")
        text, reasoning = _content(item.get("content", item.get("value")), i)
        for k in ("reasoning_content", "reasoning", "thinking"):
            if isinstance(item.get(k), str) and item[k].strip():
                reasoning = item[k]
        msg: dict[str, Any] = {"role": role, "content": text}
        if role == "assistant":
            if reasoning.strip():
                msg["reasoning"] = reasoning.strip()
            weight = item.get("weight", item.get("loss"))
            if weight is not None:
                if isinstance(weight, bool) or isinstance(weight, (int, float)):
                    msg["weight"] = float(weight)
                else:
                    raise RowError(f"message {i} weight should be a number, found {type(weight).__name__}", "wrong type")
        msgs.append(msg)
    trained = [x for x in msgs if x["role"] == "assistant" and x.get("weight", 1) > 0]
    if not trained:
        raise RowError("no assistant message to learn from", "missing field")
    if not any(x["content"].strip() for x in trained):
        raise RowError("empty assistant answer", "empty field")
    return msgs
