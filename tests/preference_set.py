"""A small synthetic preference set whose preference is learnable and which the base model
does not already hold. Each row asks which support team takes a ticket; the chosen answer
names one of the teams on call (ON_CALL), the rejected one a team that is not (OFF_DUTY).
The pairing of the two colours is random, both lists hold common and rarer colour words,
and both answers have the same form and length, so a model that does not know the rota
finds the chosen answer more likely in about half the rows; learning the rota raises
that share. Written for the tests (and `python tests/preference_set.py OUT.jsonl [N]` for
screenshots), not taken from anywhere."""

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
NAMES = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena", "Milo", "Nora"]
ON_CALL = ["Blue", "Green", "Gold", "Orange", "Silver", "Purple"]
OFF_DUTY = ["Red", "Black", "White", "Yellow", "Brown", "Pink"]


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    prompts = rng.sample([(name, issue) for name in NAMES for issue in ISSUES], n)  # no two rows alike
    out = []
    for name, issue in prompts:
        prompt = f"{name} reports that {issue}. Which team takes the ticket?"
        out.append({"prompt": prompt, "chosen": f"Team {rng.choice(ON_CALL)}.", "rejected": f"Team {rng.choice(OFF_DUTY)}."})
    return out


def write_preference_set(path: Path, n: int = 96, seed: int = 0) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows(n, seed)), encoding="utf-8")
    return path


def dpo_request(folder: Path, steps: int, system_prompt: str = "Route support tickets."):
    """The DPO request the CPU acceptance trains on the demo model (tests/test_preference_acceptance.py,
    bench/trl_dpo.py): 64 rota pairs, a quarter held out, beta 0.5, lr 1e-3, 8 pairs a step.
    The system prompt is shorter than the demo template's own."""
    from engine.config import RunConfig

    cfg = RunConfig()
    cfg.data.path = str(write_preference_set(Path(folder) / "rota.jsonl", 64))
    cfg.data.val_share = 0.25
    cfg.data.system_prompt = system_prompt
    cfg.method.name, cfg.method.beta = "dpo", 0.5
    cfg.train.lr, cfg.train.max_steps, cfg.train.effective_batch, cfg.train.micro_batch = 1e-3, steps, 8, 8
    cfg.out_dir, cfg.name = str(folder), "dpo"
    return cfg


if __name__ == "__main__":
    print(write_preference_set(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 96))
