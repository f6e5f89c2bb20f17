"""A rendered training example as HTML (the Data page's preview): the trained characters
highlighted, and in a tool-calling row its schemas, each call and each tool result
coloured apart, each opened by a small tag (engine/data/tool_parts.py finds them)."""

from __future__ import annotations

import html
from itertools import pairwise

TRAINED_STYLE = "background-color: rgba(34, 197, 94, 0.28);"
REJECTED_STYLE = "background-color: rgba(239, 68, 68, 0.24);"  # a preference row's rejected answer: made less likely
# kind -> (tag, tag colour, the part's own style). Translucent fills read on light and dark palettes.
PARTS = {
    "tools": ("tool schemas", "#2563eb", "background-color: rgba(59, 130, 246, 0.16);"),
    "call": ("call", "#15803d", "font-weight: 600; text-decoration: underline;"),
    "result": ("tool result", "#b45309", "background-color: rgba(245, 158, 11, 0.24);"),
}


def tag(kind: str) -> str:
    label, colour, _ = PARTS[kind]
    return (f'<span style="background-color: {colour}; color: #ffffff; font-size: small; font-weight: 600;">'
            f"&nbsp;{label}&nbsp;</span> ")


def legend(kinds) -> str:
    """One line saying what the colours of the parts present mean."""
    return "<p>" + " ".join(tag(k) for k in PARTS if k in kinds) + (
        " — calls are trained (highlighted); schemas and results are context</p>" if "call" in kinds else "</p>")


def highlighted_html(text: str, spans, parts=(), trained_style: str = TRAINED_STYLE) -> str:
    """The example as HTML: trained `spans` highlighted, tool `parts` ([start, end, kind]) coloured and tagged."""
    cuts = sorted({0, len(text), *(x for s in spans for x in s[:2]), *(x for p in parts for x in p[:2])})
    out = []
    for a, b in pairwise(cuts):
        inside = [p for p in parts if p[0] <= a and b <= p[1]]
        kind = min(inside, key=lambda p: p[1] - p[0])[2] if inside else None  # the innermost part
        out += [tag(p[2]) for p in parts if p[0] == a]
        style = (trained_style if any(s <= a and b <= e for s, e in spans) else "") + (PARTS[kind][2] if kind else "")
        piece = html.escape(text[a:b])
        out.append(f'<span style="{style}">{piece}</span>' if style else piece)
    return "<pre style='white-space: pre-wrap; font-family: monospace;'>" + "".join(out) + "</pre>"


def example_html(ex: dict) -> str:
    """One example of an inspect report: its heading, the legend when it calls tools, its text."""
    parts = ex.get("parts") or []
    head = f"<p><b>Row {ex['row']}</b> — {ex['tokens']} tokens, {ex['trained']} trained</p>"
    return head + (legend({p[2] for p in parts}) if parts else "") + highlighted_html(ex["text"], ex["spans"], parts)


def pair_html(ex: dict) -> str:
    """A preference row (DPO, ORPO): the chosen and the rejected rendering side by side, each
    answer highlighted (the chosen in green, the rejected in red)."""
    rej = ex["rejected"]
    head = (f"<p><b>Row {ex['row']}</b> — chosen {ex['tokens']} tokens ({ex['trained']} trained), rejected "
            f"{rej['tokens']} tokens ({rej['trained']} trained); the prompt is the same on both sides</p>")
    cell = "<td width='50%' valign='top' style='padding: 0 6px;'>"
    return (head + "<table width='100%' cellspacing='0'><tr>"
            + cell + "<b style='color:#15803d'>Chosen</b>" + highlighted_html(ex["text"], ex["spans"]) + "</td>"
            + cell + "<b style='color:#b91c1c'>Rejected</b>"
            + highlighted_html(rej["text"], rej["spans"], trained_style=REJECTED_STYLE) + "</td></tr></table>")


def row_html(ex: dict) -> str:
    """Any example of an inspect report: a preference pair side by side, else one rendering."""
    return pair_html(ex) if "rejected" in ex else example_html(ex)
