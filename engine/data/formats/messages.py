"""OpenAI-style chat messages: a list of {role, content}; content may be a list of parts
(`text` / `value`, `reasoning` / `thinking` parts), an assistant message may carry its
chain of thought (`reasoning_content`, `reasoning`, `thinking`) and a weight under one
of WEIGHT_NAMES (0 = context only). Tool calling (formats/tools.py): the row's schemas (the
`tools` part: a `tools` / `functions` field unless mapped to another), an assistant's `tool_calls` (or a `function_call` / `tool_call` turn
holding the call as JSON) and `tool` results. ShareGPT's {from, value} lists are read by
the same parser."""

from __future__ import annotations

from typing import Any

from .base import DataFormat, Example, Mapping, RowError
from .tools import parse_calls, parse_tools

ROLE_ALIASES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "chatgpt": "assistant",
    "function_call": "assistant",  # the model's own tool call (JSON): it should learn to make it
    "tool_call": "assistant",
    "observation": "tool",  # a tool's answer: context, never trained
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}


CALL_ROLES = ("function_call", "tool_call")
WEIGHT_NAMES = ("weight", "loss", "loss_weight")


def list_field(name: str):
    """A detector for a record whose field `name` (any case) holds a list of messages."""

    def detect(keys: Mapping, record: dict) -> Mapping | None:
        if name in keys and isinstance(record[keys[name]], list):
            return {"messages": keys[name]}
        return None

    return detect


def convert(record: dict, m: Mapping) -> list[dict]:
    key = m["messages"]
    items = record.get(key)
    if key not in record:
        raise RowError(f"missing messages field '{key}'", "missing field")
    if not isinstance(items, list) or not items:
        raise RowError(f"'{key}' should be a non-empty list of messages", "wrong type")
    msgs = [_message(item, i) for i, item in enumerate(items, 1)]
    trained = [x for x in msgs if x["role"] == "assistant" and x.get("weight", 1) > 0]
    if not trained:
        raise RowError("no assistant message to learn from", "missing field")
    if not any(x["content"].strip() or x.get("tool_calls") for x in trained):
        raise RowError("empty assistant answer", "empty field")
    tools = parse_tools(record, m.get("tools"))
    return ([{"role": "tools", "tools": tools}] if tools else []) + msgs


def _message(item: Any, i: int) -> dict:
    if not isinstance(item, dict):
        raise RowError(f"message {i} should be an object, found {type(item).__name__}", "wrong type")
    role_raw = item.get("role", item.get("from"))
    role = ROLE_ALIASES.get(str(role_raw).lower()) if role_raw is not None else None
    if role is None:
        raise RowError(f"message {i} has an unknown role '{role_raw}'", "invalid row")
    raw = item.get("content", item.get("value"))
    calls = []
    if str(role_raw).lower() in CALL_ROLES:
        calls, raw = parse_calls(raw, i), ""
    elif role == "assistant" and (item.get("tool_calls") or item.get("function_call")):
        calls = parse_calls(item.get("tool_calls") or item.get("function_call"), i)
        raw = "" if raw is None else raw
    content, reasoning = _content(raw, i)
    for k in ("reasoning_content", "reasoning", "thinking"):
        if isinstance(item.get(k), str) and item[k].strip():
            reasoning = item[k]
    msg: dict[str, Any] = {"role": role, "content": content}
    if calls:
        msg["tool_calls"] = calls
    if role == "tool":
        msg.update({k: item[k] for k in ("name", "tool_call_id") if isinstance(item.get(k), str)})
    if role == "assistant":
        if reasoning.strip():
            msg["reasoning"] = reasoning.strip()
        weight = next((item[k] for k in WEIGHT_NAMES if item.get(k) is not None), None)
        if weight is not None:
            if isinstance(weight, bool) or isinstance(weight, (int, float)):
                msg["weight"] = float(weight)
            else:
                raise RowError(f"message {i} weight should be a number, found {type(weight).__name__}", "wrong type")
    return msg


def _content(value: Any, i: int) -> tuple[str, str]:
    """(text, reasoning) of a message's content: a string, or OpenAI-style parts."""
    if isinstance(value, str):
        return value, ""
    if isinstance(value, list):
        parts, reasoning = [], []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
                continue
            if not isinstance(part, dict):
                raise RowError(f"message {i} has a content part that is {type(part).__name__}", "wrong type")
            kind = str(part.get("type", "text")).lower()
            body = part.get("text", part.get("value", part.get(kind, "")))
            if not isinstance(body, str):
                raise RowError(f"message {i} has a content part whose text is {type(body).__name__}", "wrong type")
            (reasoning if kind in ("reasoning", "thinking", "thought") else parts).append(body)
        return "".join(parts), "\n".join(reasoning)
    if value is None:
        raise RowError(f"message {i} has no content", "missing field")
    raise RowError(f"message {i} content should be text, found {type(value).__name__}", "wrong type")


FORMAT = DataFormat(
    name="messages",
    label="Chat messages (role / content)",
    roles=("messages", "tools"),
    required=("messages",),
    detect=list_field("messages"),
    convert=convert,
    examples=(
        Example("OpenAI messages", {"messages": [{"role": "user", "content": "Hi"},
                                                 {"role": "assistant", "content": "Hello!", "weight": 1}]},
                "(content may be a list of parts with `text`/`value`; `reasoning` parts; "
                + "/".join(f"`{n}`" for n in WEIGHT_NAMES) + ": 0 = context only; tool calling: "
                "`tools`/`functions` schemas, assistant `tool_calls`, `tool` results)"),
    ),
)
