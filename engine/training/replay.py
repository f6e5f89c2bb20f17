"""Replay from the base model, against forgetting, offline: before training, the base
model (adapter off) answers general prompts (resources/probe/replay.json, none of them
in the forgetting meter's probe); a share of the training mix is made of those
self-generated conversations, so the adapter learns the task without moving the model's
answers elsewhere. Answers the base model did not finish within the token limit are
left out (training on them would teach the model not to stop).

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
DEFAULT_SHARE = 0.2  # of the training mix; measured on the demo model: scripts/forgetting_check.py


def prompts() -> list[str]:
    return json.loads((paths.resources_dir() / REPLAY_FILE).read_text(encoding="utf-8"))["prompts"]


def rows_needed(share: float, task_rows: int) -> int:
    """Replay rows that make `share` of a mix with `task_rows` task rows."""
    return 0 if share <= 0 else max(1, math.ceil(share / (1 - share) * task_rows))


def conversations(model, tokenizer, device, system: str | None, model_folder: str | Path,
                  status=lambda _: None) -> list[list[dict]]:
    """The base model's finished answers to the replay prompts (from the cache when the
    same model answered the same prompts before)."""
    asked = prompts()
    key = hashlib.sha256(json.dumps([str(model_folder), asked, system, MAX_NEW_TOKENS]).encode()).hexdigest()[:16]
    cached = paths.cache_dir() / "replay" / f"{key}.jsonl"
    if cached.is_file():
        return [json.loads(line) for line in cached.read_text(encoding="utf-8").splitlines() if line]
    status(f"Replay: the base model answers {len(asked)} general prompts…")
    with model.disable_adapter():
        got = greedy(model, tokenizer, [prompt_ids(tokenizer, p, system) for p in asked], MAX_NEW_TOKENS, device,
                     batch=len(asked))
    head = [{"role": "system", "content": system}] if system else []
    convs = [head + [{"role": "user", "content": p}, {"role": "assistant", "content": a.text}]
             for p, a in zip(asked, got) if a.ended and a.text]
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_text(cached, "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in convs))
    return convs


def examples(tokenizer, convs: list[list[dict]], n: int, seq_len: int) -> list[Example]:
    """`n` replay examples (the conversations repeated when the share asks for more),
    numbered below zero so they are never taken for rows of the user's file; rows longer
    than the run's length are left out."""
    rendered = []
    for c in convs:
        r = render(tokenizer, c)
        if len(r.input_ids) <= seq_len:
            rendered.append((np.asarray(r.input_ids, dtype=np.int32), np.asarray(r.labels) != IGNORE))
    if not rendered:
        return []
    return [Example(-1 - i, *rendered[i % len(rendered)]) for i in range(n)]


def save(run_path: Path, convs: list[list[dict]]) -> None:
    write_text(run_path / RUN_FILE, "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in convs))


def load(run_path: Path) -> list[list[dict]] | None:
    f = run_path / RUN_FILE
    return [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line] if f.is_file() else None
