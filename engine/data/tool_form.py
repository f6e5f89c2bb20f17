"""Tool calling written for a chat template (the row's side: formats/tools.py).

A template with a tool format of its own (its source mentions both `tools` and
`tool_calls`, as Qwen2.5, Llama 3.1, Mistral and Hermes templates do) receives the
schemas through ``apply_chat_template(..., tools=...)`` and the calls as OpenAI-style
``tool_calls``. Any other template gets the *system-prompt form*: the schemas appended to
the system message (one added when the row has none) as JSON, one per line, after
TOOLS_INTRO, and each call written in the assistant's answer as one JSON object
``{"name": …, "arguments": …}`` per line. The calls are trained like any answer; tool
results are context only.
"""

from __future__ import annotations

import json

TOOLS_INTRO = (
    "You can call these functions. To call one, answer with a JSON object "
    '{"name": <function name>, "arguments": <arguments object>}, one line per call.\nFunctions:'
)


def native(tokenizer) -> bool:
    """Whether the chat template has a tool format of its own."""
    t = getattr(tokenizer, "chat_template", None) or ""
    return isinstance(t, str) and "tools" in t and "tool_calls" in t


def split_tools(messages: list[dict]) -> tuple[list[dict] | None, list[dict]]:
    """(the schemas or None, the messages without the schemas' message)."""
    if messages and messages[0]["role"] == "tools":
        return messages[0]["tools"], messages[1:]
    return None, messages


def chars(message: dict) -> int:
    """The length of a message's schemas or calls as JSON (the row-size check counts them)."""
    extra = message.get("tools") or message.get("tool_calls")
    return len(json.dumps(extra, ensure_ascii=False)) if extra else 0


def calls_text(calls: list[dict]) -> str:
    return "\n".join(json.dumps({"name": c["name"], "arguments": c["arguments"]}, ensure_ascii=False) for c in calls)


def for_template(tokenizer, messages: list[dict]) -> tuple[list[dict] | None, list[dict]]:
    """(tools for apply_chat_template, messages in the template's form); see the module's doc."""
    tools, messages = split_tools(messages)
    if native(tokenizer):
        out = []
        for m in messages:
            if m.get("tool_calls"):
                calls = [{"type": "function", "function": {"name": c["name"], "arguments": c["arguments"]},
                          **({"id": c["id"]} if "id" in c else {})} for c in m["tool_calls"]]
                m = {**m, "tool_calls": calls}
            out.append(m)
        return tools, out
    out = [
        {**{k: v for k, v in m.items() if k != "tool_calls"},
         "content": "\n".join(x for x in (m["content"], calls_text(m["tool_calls"])) if x)}
        if m.get("tool_calls") else m
        for m in messages
    ]
    if tools:
        listing = TOOLS_INTRO + "\n" + "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
        if out and out[0]["role"] == "system":
            out[0] = {**out[0], "content": f"{out[0]['content']}\n\n{listing}" if out[0]["content"] else listing}
        else:
            out.insert(0, {"role": "system", "content": listing})
    return None, out


def calls_in(text: str) -> list[dict]:
    """The well-formed calls an answer makes: each JSON object in it with a string `name`
    and an object of `arguments` (or `parameters`), in either form above (a native
    template's <tool_call> tags and the like around them do not matter)."""
    decoder, calls, i = json.JSONDecoder(), [], text.find("{")
    while i >= 0:
        try:
            value, end = decoder.raw_decode(text, i)
        except (ValueError, RecursionError):
            i = text.find("{", i + 1)
            continue
        fn = value.get("function", value) if isinstance(value, dict) else None
        args = fn.get("arguments", fn.get("parameters")) if isinstance(fn, dict) else None
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except (ValueError, RecursionError):
                args = None
        if isinstance(fn.get("name") if isinstance(fn, dict) else None, str) and isinstance(args, dict):
            calls.append({"name": fn["name"], "arguments": args})
            i = text.find("{", end)
        else:
            i = text.find("{", i + 1)
    return calls


def note(tokenizer, rows: int) -> str:
    """What rendering did with the rows that offer tools or make calls (prepare's notes)."""
    if native(tokenizer):
        return f"{rows} row(s) with tool schemas or calls: rendered in the chat template's own tool format, calls trained, results context only"
    return (f"{rows} row(s) with tool schemas or calls: this model's chat template has no tool format, so the schemas "
            "are listed as JSON in the system message and each call is trained as one JSON object per line")
