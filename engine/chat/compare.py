"""Before/after on the validation split: reference, base and tuned answers, and the loss
of the reference under each, written to the run folder as Markdown and JSON."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..atomic import write_json, write_text
from ..data import prepare
from ..data.batching import collate
from ..data.example import answered
from ..eval.generate import last_answer_start
from ..models.loss import batch_loss_sum, count_trained
from . import ChatSession, GenerationSettings

COMPARE_DIR = "compare"


def validation_compare(session: ChatSession, *, n: int = 8, settings: GenerationSettings | None = None,
                       progress: Callable[[int, int], None] = lambda done, total: None) -> dict[str, Any]:
    """Answer the first `n` validation rows with the base and the tuned model."""
    cfg, _ = session.run.read_config()
    data = prepare(cfg.data, session.tokenizer)
    examples = [answered(e) for e in data.val[:n]]  # a preference row's reference is its chosen answer
    rows = []
    for i, e in enumerate(examples):
        start = last_answer_start(e.trained)
        prompt = torch.tensor(np.asarray(e.input_ids[:start], dtype=np.int64))[None]
        batch = collate([e], session.tokenizer.pad_token_id)
        row: dict[str, Any] = {
            "row": e.row,
            "prompt": session.tokenizer.decode(prompt[0], skip_special_tokens=False),
            "reference": session.tokenizer.decode(e.input_ids[start:], skip_special_tokens=True).strip(),
        }
        for side, base in (("base", True), ("tuned", False)):
            row[side] = session.answer("", base=base, settings=settings, input_ids=prompt)
            with torch.no_grad(), session.adapter(base):
                total = float(batch_loss_sum(session.model, batch, session.device))
            row[f"{side}_loss"] = round(total / max(1, count_trained(batch["labels"])), 4)
        rows.append(row)
        progress(i + 1, len(examples))
    result = {
        "run": str(session.run.path),
        "examples": rows,
        "mean_base_loss": round(float(np.mean([r["base_loss"] for r in rows])), 4) if rows else None,
        "mean_tuned_loss": round(float(np.mean([r["tuned_loss"] for r in rows])), 4) if rows else None,
    }
    out = session.run.path / COMPARE_DIR
    out.mkdir(exist_ok=True)
    write_json(out / "validation.json", result)
    write_text(out / "validation.md", to_markdown(result))
    return result


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def to_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Before / after on the validation set — {result['run']}",
        "",
        f"Mean loss of the reference answers: base {result['mean_base_loss']}, tuned {result['mean_tuned_loss']}.",
        "",
        "| row | reference | base | tuned | loss base | loss tuned |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["examples"]:
        lines.append(f"| {r['row']} | {_cell(r['reference'])} | {_cell(r['base'])} | {_cell(r['tuned'])} | "
                     f"{r['base_loss']} | {r['tuned_loss']} |")
    return "\n".join(lines) + "\n"
