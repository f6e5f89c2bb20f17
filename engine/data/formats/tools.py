"""Tool calling in a row: the schemas it offers and the calls its assistant makes.

In a conversation (base.py) the schemas travel as a first message
``{"role": "tools", "tools": [schema, …]}`` (OpenAI's ``{"type": "function", "function":
{…}}`` form) and an assistant's calls as ``"tool_calls": [{"name": str, "arguments": dict
| str}, …]`` on its message, parallel calls as separate entries; a tool's result is a
``tool`` message, with its ``name`` / ``tool_call_id`` when the row gives them. How they
are rendered: engine/data/tool_form.py.
"""

from __future__ import annotations

import json
from typing import Any

from .base import RowError

TOOL_FIELDS = ("tools", "functions")


def _json(value: Any, what: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except RecursionError:
        raise RowError(f"{what} is JSON nested too deeply; flatten it", "invalid row") from None
    except ValueError as e:
        raise RowError(f"{what} is not valid JSON ({str(e)[:100]})", "invalid row") from None


def tools_field(keys: dict[str, str]) -> str | None:
    """The record's schemas field under one of TOOL_FIELDS (keys: lower-cased -> as written)."""
    return next((keys[n] for n in TOOL_FIELDS if n in keys), None)


def parse_tools(record: dict, key: str | None = None, what: str = "") -> list[dict]:
    """The row's tool schemas (a list, or a JSON string of one), under field `key` (the
    mapping's `tools` part) or else `tools` / `functions`; `what` names them in errors."""
    key = key or tools_field({k.lower(): k for k in record if isinstance(k, str)})
    value = record.get(key) if key else None
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    what = what or f"field '{key}'"
    value = _json(value, what)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise RowError(f"{what} should be a list of function schemas, found {type(value).__name__}", "wrong type")
    tools = []
    for i, schema in enumerate(value, 1):
        fn = schema.get("function", schema) if isinstance(schema, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise RowError(f"{what}: schema {i} should be an object with a 'name'", "invalid row")
        tools.append(schema if "function" in schema else {"type": "function", "function": schema})
    return tools


def parse_calls(value: Any, i: int) -> list[dict]:
    """Message i's calls: one {name, arguments} object or a list of them (OpenAI's
    {type, id, function: {…}} too), given as JSON text or as objects."""
    value = _json(value, f"message {i}'s function call")
    calls = value if isinstance(value, list) else [value]
    out = []
    for call in calls:
        fn = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise RowError(f"message {i} has a function call that is not a {{\"name\", \"arguments\"}} object", "invalid row")
        args = fn.get("arguments", fn.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except (ValueError, RecursionError):
                pass  # arguments that are not JSON are kept as the row wrote them
        out.append({"name": fn["name"], "arguments": args, **({"id": call["id"]} if call.get("id") else {})})
    return out
