"""Replay from the base model, against forgetting, offline: before training, the base
model (adapter off) answers general prompts (resources/probe/replay.json, none of them
in the forgetting meter's probe); a share of the training mix is made of those
self-generated conversations, so the adapter learns the task without moving the model's
answers elsewhere. Answers the base model did not finish within the token limit are
left out (training on them would teach the model not to stop), and so are its wrong
answers to the prompts with a known answer (rehearsing a mistake teaches it).

Most prompts ask for a short answer in a given form (one word, only a number, yes or
no, a list, the prompt's language): measured on the demo model (scripts/forgetting_check.py),
a task of short questions with one kind of answer (an identity set) otherwise teaches the
model to answer every short request that way, and a few such prompts in the replay set
taught it the base model's one poor answer instead of its habit. The rows a share asks
for are drawn across the whole set (seeded), not its first entries, so every kind is in.

The conversations are kept in the run folder (replay.jsonl): a resumed run trains on the
same ones; and in the cache per model and prompt set, so a second run does not wait."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from .. import paths
from ..atomic import write_text
from ..data.example import Example
from ..data.render import IGNORE, render
from ..eval.generate import greedy, prompt_ids

REPLAY_FILE = "probe/replay.json"
RUN_FILE = "replay.jsonl"
MAX_NEW_TOKENS = 64
BATCH = 32  # prompts answered at once: the set's longest prompt pads a batch, and a CPU's memory holds 32
DEFAULT_SHARE = 0.2  # of the training mix; measured on the demo model: scripts/forgetting_check.py


def entries() -> list[tuple[str, tuple[str, ...]]]:
    """(prompt, accepted answers) of the replay set; no accepted answers: any finished answer is kept."""
    raw = json.loads((paths.resources_dir() / REPLAY_FILE).read_text(encoding="utf-8"))["prompts"]
    return [(e, ()) if isinstance(e, str) else (e["prompt"], tuple(a.lower() for a in e.get("accept", ())))
            for e in raw]


def prompts() -> list[str]:
    return [p for p, _ in entries()]


def kept(answer, accept: tuple[str, ...]) -> bool:
    """A base answer worth replaying: finished, not empty, and right where the right answer is known."""
    return answer.ended and bool(answer.text) and (not accept or any(a in answer.text.lower() for a in accept))


def rows_needed(share: float, task_rows: int) -> int:
    """Replay rows that make `share` of a mix with `task_rows` task rows."""
    return 0 if share <= 0 else max(1, math.ceil(share / (1 - share) * task_rows))


def conversations(model, tokenizer, device, system: str | None, model_folder: str | Path,
                  status=lambda _: None) -> list[list[dict]]:
    """The base model's finished answers to the replay prompts (from the cache when the
    same model answered the same prompts before)."""
    asked = entries()
    key = hashlib.sha256(json.dumps([str(model_folder), asked, system, MAX_NEW_TOKENS]).encode()).hexdigest()[:16]
    cached = paths.cache_dir() / "replay" / f"{key}.jsonl"
    if cached.is_file():
        return [json.loads(line) for line in cached.read_text(encoding="utf-8").splitlines() if line]
    status(f"Replay: the base model answers {len(asked)} general prompts…")
    with model.disable_adapter():
        got = greedy(model, tokenizer, [prompt_ids(tokenizer, p, system) for p, _ in asked], MAX_NEW_TOKENS, device,
                     batch=BATCH)
    head = [{"role": "system", "content": system}] if system else []
    convs = [head + [{"role": "user", "content": p}, {"role": "assistant", "content": a.text}]
             for (p, accept), a in zip(asked, got) if kept(a, accept)]
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_text(cached, "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in convs))
    return convs


def examples(tokenizer, convs: list[list[dict]], n: int, seq_len: int) -> list[Example]:
    """`n` replay examples, drawn across all the conversations in a seeded order (repeated
    when the share asks for more), numbered below zero so they are never taken for rows of
    the user's file; rows longer than the run's length are left out."""
    rendered = []
    for c in convs:
        r = render(tokenizer, c)
        if len(r.input_ids) <= seq_len:
            rendered.append((np.asarray(r.input_ids, dtype=np.int32), np.asarray(r.labels) != IGNORE))
    if not rendered:
        return []
    order = np.random.default_rng(0).permutation(len(rendered))  # fixed: a resumed run draws the same rows
    return [Example(-1 - i, *rendered[order[i % len(rendered)]]) for i in range(n)]


def save(run_path: Path, convs: list[list[dict]]) -> None:
    write_text(run_path / RUN_FILE, "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in convs))


def load(run_path: Path) -> list[list[dict]] | None:
    f = run_path / RUN_FILE
    return [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line] if f.is_file() else None
