"""Preference pairs as two whole dialogues, the chosen and the rejected, that share their
start (Anthropic HH-RLHF: "\\n\\nHuman: … \\n\\nAssistant: …" texts; TRL's implicit prompt:
two message lists). The shared start, up to the last assistant turn, is the prompt; what
follows on each side is that side's answer."""

from __future__ import annotations

import re

from .base import DataFormat, Example, Mapping, RowError
from .preference import messages_of, preferred, sides

TURN = re.compile(r"(?:^|\n\n)(Human|Assistant|User):[ \t]?")
ROLES = {"human": "user", "user": "user", "assistant": "assistant"}


def _is_dialogue(value) -> bool:
    return (isinstance(value, str) and "Human:" in value and "Assistant:" in value) or (
        isinstance(value, list) and len(value) > 1)


def detect(keys: Mapping, record: dict) -> Mapping | None:
    s = sides(keys)
    if s is None or not all(_is_dialogue(record[f]) for f in s.values()):
        return None
    return s


def turns(value: str, key: str) -> list[dict]:
    """'\\n\\nHuman: hi\\n\\nAssistant: hello' -> messages."""
    marks = list(TURN.finditer(value))
    if not marks:
        raise RowError(f"'{key}' has no 'Human:' / 'Assistant:' turns", "invalid row")
    out = []
    for k, mk in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(value)
        out.append({"role": ROLES[mk.group(1).lower()], "content": value[mk.end():end].strip()})
    return out


def _split(chosen: list[dict], rejected: list[dict]) -> tuple[list[dict], str, str]:
    """(the shared turns, each side's last answer): both sides must end in one answer after the same turns."""
    for side, msgs in (("chosen", chosen), ("rejected", rejected)):
        if msgs[-1]["role"] != "assistant":
            raise RowError(f"the {side} dialogue should end with the assistant's answer", "invalid row")
    if chosen[:-1] != rejected[:-1]:
        raise RowError("the chosen and rejected dialogues differ before their last answer; "
                       "only the last answer may differ", "invalid row")
    c, r = chosen[-1]["content"], rejected[-1]["content"]
    for side, a in (("chosen", c), ("rejected", r)):
        if not a.strip():
            raise RowError(f"empty {side} answer", "empty field")
    return chosen[:-1], c, r


def convert(record: dict, m: Mapping) -> list[dict]:
    parts = []
    for side in ("chosen", "rejected"):
        key = m[side]
        if key not in record or record[key] is None:
            raise RowError(f"missing {side} field '{key}'", "missing field")
        value = record[key]
        if isinstance(value, str):
            parts.append(turns(value, key))
        elif isinstance(value, list):
            parts.append(messages_of(value, key))
        else:
            raise RowError(f"field '{key}' should be a dialogue (text or messages), found {type(value).__name__}", "wrong type")
    context, c, r = _split(*parts)
    return preferred(context, c, r)


FORMAT = DataFormat(
    name="preference_dialogue",
    label="Preference dialogues: whole chosen / rejected conversations (HH)",
    roles=("chosen", "rejected"),
    required=("chosen", "rejected"),
    detect=detect,
    convert=convert,
    examples=(
        Example("chosen / rejected dialogues",
                {"chosen": "\n\nHuman: Capital of Peru?\n\nAssistant: Lima.",
                 "rejected": "\n\nHuman: Capital of Peru?\n\nAssistant: No idea."},
                "(Anthropic HH-RLHF; or two message lists sharing their start: the shared start is the prompt)"),
    ),
    preference=True,
)
