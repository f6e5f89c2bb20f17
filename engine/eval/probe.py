"""The forgetting meter: a small built-in probe of general ability that is not the
user's task (resources/probe/general.json: facts, arithmetic, following a format,
answering in the prompt's language; English, French, Chinese).

Two scores, both against the base model's: the mean loss of the reference answers under
the model's chat template (one cheap pass, at every evaluation), and short greedy
answers checked for the reference (at the start and the end of a run). The validation
split cannot tell forgetting: it comes from the same file as the training rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import paths
from ..data.example import Example
from ..data.render import IGNORE, render
from .generate import greedy, prompt_ids

PROBE_FILE = "probe/general.json"
MAX_NEW_TOKENS = 40  # room for a verbose but right answer ("To find 10 times 3, … 30")
# Past these the meter warns: the reference loss up by more than this share of the base's,
# or more of its questions failed than the base failed by this many (of 16).
LOSS_WARN = 0.15
LOST_ANSWERS_WARN = 2


def advice(replay_share: float = 0.0) -> str:
    more = min(0.5, round(replay_share + 0.2, 1))
    return ("train for fewer epochs, lower the learning rate, or mix in "
            + (f"more of the base model's own answers (replay: --replay-share {more})" if replay_share
               else f"the base model's own answers (replay: --replay-share {more})"))


@dataclass(frozen=True)
class Item:
    prompt: str
    answer: str
    accept: tuple[str, ...]
    lang: str
    kind: str


def items() -> list[Item]:
    raw = json.loads((paths.resources_dir() / PROBE_FILE).read_text(encoding="utf-8"))["items"]
    return [Item(r["prompt"], r["answer"], tuple(a.lower() for a in r["accept"]), r["lang"], r["kind"]) for r in raw]


def examples(tokenizer, probe: list[Item], system: str | None = None) -> list[Example]:
    """Each prompt with its reference answer, rendered as training renders a row: the
    answer's tokens are the ones scored."""
    out = []
    for i, it in enumerate(probe):
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": it.prompt}, {"role": "assistant", "content": it.answer}]
        r = render(tokenizer, messages)
        labels = np.asarray(r.labels)
        out.append(Example(-1 - i, np.asarray(r.input_ids, dtype=np.int32), labels != IGNORE))
    return out


def passes(answer: str, item: Item) -> bool:
    a = answer.lower()
    return any(ref in a for ref in item.accept)


def answers(model, tokenizer, probe: list[Item], device, system: str | None = None) -> dict[str, Any]:
    """Short greedy answers to the probe, each checked against its reference."""
    got = greedy(model, tokenizer, [prompt_ids(tokenizer, it.prompt, system) for it in probe], MAX_NEW_TOKENS, device,
                 batch=len(probe))
    rows = [{"prompt": it.prompt, "answer": a.text, "ok": passes(a.text, it)} for it, a in zip(probe, got)]
    return {"passed": sum(r["ok"] for r in rows), "total": len(rows), "answers": rows}


def verdict(base_loss: float | None, loss: float | None, base_answers: dict | None = None,
            now_answers: dict | None = None, replay_share: float = 0.0) -> dict[str, Any]:
    """How general ability moved since the base model, and a plain warning past the thresholds."""
    out: dict[str, Any] = {"loss_base": _r(base_loss), "loss": _r(loss), "warning": ""}
    change = (loss - base_loss) / base_loss if base_loss and loss is not None else None
    out["loss_change"] = _r(change)
    lost = 0
    if base_answers and now_answers:
        lost = sum(b["ok"] and not n["ok"] for b, n in zip(base_answers["answers"], now_answers["answers"]))
        out.update(passed_base=base_answers["passed"], passed=now_answers["passed"], total=now_answers["total"],
                   lost=lost, lost_prompts=[b["prompt"] for b, n in zip(base_answers["answers"], now_answers["answers"])
                                            if b["ok"] and not n["ok"]])
    worse = []
    if change is not None and change > LOSS_WARN:
        worse.append(f"the reference answers' loss rose {change:.0%}")
    if lost >= LOST_ANSWERS_WARN:
        worse.append(f"{lost} general question(s) the base model answered right are now wrong")
    if worse:
        out["warning"] = f"General ability fell: {' and '.join(worse)}. To keep it, {advice(replay_share)}."
    out["verdict"] = "worse" if worse else "kept"
    return out


def change_words(before: float | None, after: float | None) -> str:
    """'better by 12%' / 'worse by 30%' / 'unchanged' for a loss going from before to after."""
    if before is None or after is None or not before:
        return "not measured"
    change = (after - before) / before
    if abs(change) < 0.01:
        return "unchanged"
    return f"{'better' if change < 0 else 'worse'} by {abs(change):.0%}"


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def headline(summary: dict[str, Any]) -> str:
    """The line Compare shows: 'task: better by 55% · general: worse by 3% (probe 9/16, base 10/16)'."""
    p = summary.get("probe") or {}
    if not p.get("task"):
        return ""
    answers = f"; general questions right: {p['passed']}/{p['total']} (base {p['passed_base']})" if p.get("total") else ""
    return f"task: {p['task']} · general: {p['general']} (reference-answer loss){answers}"
