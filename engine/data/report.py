"""`tunedesk inspect`: what TuneDesk will make of a dataset file, before training.

The JSON form is a stable interface (documented in the README):
    file, format, mapping, [labels, instruction, numbered: the labeled format's], rows, kept, train, val, skipped [{row, reason}],
    skipped_by_kind {kind: count}, notes [str], reasoning, model,
    examples [{row, text, marked, spans [[start, end] of trained characters], tokens, trained,
               parts [[start, end, kind] of tool schemas / calls / results; kind: tools | call | result],
               [rejected {text, marked, spans, tokens, trained}: a preference row's rejected answer; the row's
               own text is its chosen one]}],
    lengths {min, p50, p95, max, mean, histogram {edges, counts}},
    tokens_per_epoch, trained_tokens_per_epoch
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DataConfig
from .prepare import PreparedData, prepare

MARK_START, MARK_END = "[[", "]]"


def mark(text: str, spans, start: str = MARK_START, end: str = MARK_END) -> str:
    out, cur = [], 0
    for a, b in spans:
        out += [text[cur:a], start, text[a:b], end]
        cur = b
    out.append(text[cur:])
    return "".join(out)


def length_stats(lengths: np.ndarray, bins: int = 12) -> dict[str, Any]:
    if lengths is None or len(lengths) == 0:
        return {}
    counts, edges = np.histogram(lengths, bins=min(bins, max(1, len(np.unique(lengths)))))
    return {
        "min": int(lengths.min()),
        "p50": int(np.percentile(lengths, 50)),
        "p95": int(np.percentile(lengths, 95)),
        "max": int(lengths.max()),
        "mean": round(float(lengths.mean()), 1),
        "histogram": {"edges": [round(float(e), 1) for e in edges], "counts": [int(c) for c in counts]},
    }


def inspect_file(cfg: DataConfig, tokenizer, *, model_name: str = "") -> dict[str, Any]:
    return describe(prepare(cfg, tokenizer), cfg.path, model_name=model_name)


def describe(data: PreparedData, path: str, *, model_name: str = "") -> dict[str, Any]:
    """The inspect report of prepared data (the GUI keeps the data for the planner too)."""
    report = data.report()
    report.pop("trained_tokens", None)
    return {
        "file": str(Path(path)),
        **report,
        "model": model_name,
        "examples": [
            {"row": s["row"], **_side(s), "parts": s.get("parts", []),
             **({"rejected": _side(s["rejected"])} if "rejected" in s else {})}
            for s in data.samples
        ],
        "lengths": length_stats(data.lengths),
        "tokens_per_epoch": int(sum(len(e) for e in data.train)),
        "trained_tokens_per_epoch": int(sum(int(e.trained.sum()) for e in data.train)),
    }


def _side(s: dict[str, Any]) -> dict[str, Any]:
    return {"text": s["text"], "marked": mark(s["text"], s["spans"]), "spans": [list(x) for x in s["spans"]],
            "tokens": s["tokens"], "trained": s["trained"]}


def _parts(ex: dict[str, Any]) -> str:
    """', tool schemas, 2 calls, 1 tool result' for an example with tool parts."""
    kinds = Counter(p[2] for p in ex.get("parts", []))
    said = [("tool schemas" if kinds["tools"] else ""), (f"{kinds['call']} call(s)" if kinds["call"] else ""),
            (f"{kinds['result']} tool result(s)" if kinds["result"] else "")]
    return "".join(f", {x}" for x in said if x)


def format_text(r: dict[str, Any], *, color: bool = False) -> str:
    """The human form of an inspect report."""
    start, end = ("\x1b[1;32m", "\x1b[0m") if color else (MARK_START, MARK_END)
    lines = [
        f"File      {r['file']}",
        f"Format    {r['format']}  ({', '.join(f'{k}={v}' for k, v in r['mapping'].items())})",
        *([f"Labels    {', '.join(r['labels'])}", f"Prompt    {r['instruction']}  + the text"] if r.get("labels") else []),
        f"Rows      {r['rows']} read, {r['kept']} kept ({r['train']} train / {r['val']} validation), {len(r['skipped'])} skipped",
    ]
    if r["skipped"]:
        by_reason: dict[str, list[int]] = {}
        for s in r["skipped"]:
            by_reason.setdefault(s["reason"], []).append(s["row"])
        for reason, rows in sorted(by_reason.items(), key=lambda kv: -len(kv[1]))[:10]:
            shown = ", ".join(map(str, rows[:5])) + (" …" if len(rows) > 5 else "")
            lines.append(f"  skipped {len(rows):>5}  {reason}  (row {shown})")
    for note in r["notes"]:
        lines.append(f"Note      {note}")
    L = r.get("lengths") or {}
    if L:
        lines += [
            "",
            f"Tokens per example ({r['model'] or 'model'}): min {L['min']}, p50 {L['p50']}, p95 {L['p95']}, max {L['max']}",
            f"Tokens per epoch: {r['tokens_per_epoch']:,} ({r['trained_tokens_per_epoch']:,} trained)",
        ]
        counts, edges = L["histogram"]["counts"], L["histogram"]["edges"]
        top = max(counts) or 1
        for c, a, b in zip(counts, edges, edges[1:]):
            lines.append(f"  {a:>7.0f}–{b:<7.0f} {'█' * max(1 if c else 0, round(30 * c / top))} {c}")
    for ex in r["examples"]:
        chosen = "chosen: " if "rejected" in ex else ""
        lines += ["", (f"── row {ex['row']}: {chosen}{ex['tokens']} tokens, {ex['trained']} trained "
                       f"(marked {MARK_START} {MARK_END}){_parts(ex)} ──")]
        lines.append(ex["marked"].replace(MARK_START, start).replace(MARK_END, end))
        if "rejected" in ex:
            rej = ex["rejected"]
            lines += [f"── row {ex['row']}: rejected: {rej['tokens']} tokens, {rej['trained']} trained ──",
                      rej["marked"].replace(MARK_START, start).replace(MARK_END, end)]
    return "\n".join(lines)
