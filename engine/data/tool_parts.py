"""Where a rendered row shows its tool schemas, each call and each tool result (the Data
page's preview and inspect colour them apart).

The chat template decides how those look (tool_form.py), so they are not searched for
as text: the row is rendered again without one part (the schemas, one call, a result's
content) and the characters that differ are that part's. Only the few preview rows pay
for the extra renderings.
"""

from __future__ import annotations

import itertools

KINDS = ("tools", "call", "result")
MAX_PARTS = 24  # each part costs a rendering of the row: a very long agent trace shows its first ones


def _trim(a: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) without the blanks and list commas at its ends."""
    while start < end and (a[start].isspace() or a[start] == ","):
        start += 1
    while end > start and (a[end - 1].isspace() or a[end - 1] == ","):
        end -= 1
    return start, end


def _score(a: str, span: tuple[int, int]) -> int:
    """How much a run of `a` looks like a whole part: it starts a line or an object (not
    with a closing tag), ends one."""
    start, end = span
    opens = (start == 0 or a[start - 1] == "\n" or a[start] in "{[<") and not a.startswith("</", start)
    closes = end == len(a) or a[end] == "\n" or a[end - 1] in "}]>"
    return 2 * opens + closes


def _differ(a: str, b: str, *, line_start: bool = False) -> tuple[int, int] | None:
    """The characters of `a` that `b` lacks. When `b` is `a` less one run of characters
    and that run could sit at several places (removing the first of two similar calls),
    the place that looks most like a whole part is taken. `line_start`: from the start of
    its line (a replaced system prompt may share its first words with the schemas' intro)."""
    n, d = min(len(a), len(b)), len(a) - len(b)
    p = 0
    while p < n and a[p] == b[p]:
        p += 1
    s = 0
    while s < n and a[-1 - s] == b[-1 - s]:
        s += 1
    if d > 0 and p + s >= len(b):  # a pure insertion: every start in [lo, hi] explains it
        lo, hi = max(0, len(b) - s), min(p, len(b))
        spans = [_trim(a, x, x + d) for x in range(lo, hi + 1)]
        start, end = max((sp for sp in spans if sp[1] > sp[0]), key=lambda sp: _score(a, sp), default=(0, 0))
    else:
        start, end = _trim(a, p, len(a) - min(s, n - p))
    if line_start and end > start:
        start = a.rfind("\n", 0, start) + 1
    return (start, end) if end > start else None


def _without(messages: list[dict]):
    """(kind, the conversation without that one part) for every part the row has."""
    if messages and messages[0]["role"] == "tools":
        yield "tools", messages[1:]
    for i, m in enumerate(messages):
        for j in range(len(m.get("tool_calls") or ())):
            calls = m["tool_calls"][:j] + m["tool_calls"][j + 1:]
            rest = {k: v for k, v in m.items() if k != "tool_calls"} | ({"tool_calls": calls} if calls else {})
            yield "call", messages[:i] + [rest] + messages[i + 1:]
        if m["role"] == "tool" and m.get("content"):
            yield "result", messages[:i] + [{**m, "content": ""}] + messages[i + 1:]


def tool_parts(tokenizer, messages: list[dict], text: str, *, reasoning: str = "auto") -> list[list]:
    """[[start, end, kind], …] of `text` (render()'s text of `messages`), in text order."""
    from .render import render

    parts = []
    for kind, other in itertools.islice(_without(messages), MAX_PARTS):
        try:
            span = _differ(text, render(tokenizer, other, reasoning=reasoning).text, line_start=kind == "tools")
        except Exception:  # noqa: BLE001, S112 - a template that refuses the reduced row: that part is not coloured
            continue
        if span:
            parts.append([span[0], span[1], kind])
    return sorted(parts)
