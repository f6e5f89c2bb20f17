"""A small synthetic preference set whose preference is learnable and which the base model
does not already hold: each row routes a support ticket to a team, and the right team
follows one rule the prompt states only implicitly (night-shift tickets go to team Blue,
day-shift tickets to team Red). The chosen answer names the right team, the rejected one
the other; half the rows prefer Blue, half Red, and both answers have the same words and
length, so a model that does not know the rule prefers the chosen answer in about half the
rows. Written for the tests (and `python tests/preference_set.py OUT.jsonl` for screenshots
and the GPU bench), not taken from anywhere."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

ISSUES = [
    "the printer jams", "the VPN drops", "a password expired", "the laptop will not boot", "email bounces",
    "the screen flickers", "a file share is missing", "the Wi-Fi is slow", "a license ran out", "the phone has no tone",
    "the badge reader beeps", "a backup failed", "the keyboard types twice", "the calendar will not sync",
    "an update hangs", "the projector shows nothing",
]
NAMES = [  # who reports it: noise the rule must ignore
   "Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena", "Milo", "Nora"]
SHIFTS = {"night": "Blue", "day": "Red"}


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    # Every (name, issue) once per shift: no two rows alike (duplicates would be skipped)
    people = rng.sample([(name, issue) for name in NAMES for issue in ISSUES], (n + 1) // 2)
    out = []
    for i in range(n):
        shift = ("night", "day")[i % 2]  # balanced: half the rows prefer each team
        right = SHIFTS[shift]
        wrong = next(t for t in SHIFTS.values() if t != right)
        name, issue = people[i // 2]
        prompt = f"{name}, {shift} shift: {issue}. Which team?"
        out.append({"prompt": prompt, "chosen": f"Team {right}.", "rejected": f"Team {wrong}."})
    return out


def write_preference_set(path: Path, n: int = 96, seed: int = 0) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows(n, seed)), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write_preference_set(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 96))
