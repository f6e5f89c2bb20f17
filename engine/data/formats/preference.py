"""Preference pairs (DPO, ORPO): a prompt and two answers to it, the chosen one and the
rejected one, e.g. UltraFeedback's or TRL's prompt / chosen / rejected. Each part is a text
or, as TRL writes conversational rows, a list of messages (the prompt's may hold a whole
conversation; each answer's is one assistant message).

Every preference format converts a row to the conversation of its chosen answer whose last
assistant message also carries the rejected answer (``"rejected": text``); prepare.py renders
it twice, so the prompt's tokens are the same on both sides and only each answer is trained.
Earlier assistant turns are context (weight 0): the preference is about the last answer.
The helpers here are shared by the other preference formats (preference_chat.py,
preference_dialogue.py)."""

from __future__ import annotations

from typing import Any

from .base import SYSTEM_NAMES, DataFormat, Example, Mapping, RowError, first, system_turn, text
from .messages import _message

CHOSEN_NAMES = ("chosen", "chosen_response", "response_chosen", "preferred", "accepted")
REJECTED_NAMES = ("rejected", "rejected_response", "response_rejected", "dispreferred")
PROMPT_NAMES = ("prompt", "question", "instruction", "input", "query")


def sides(keys: Mapping) -> Mapping | None:
    """{'chosen': field, 'rejected': field} when the record names both answers."""
    c, r = first(keys, CHOSEN_NAMES), first(keys, REJECTED_NAMES)
    return {"chosen": c, "rejected": r} if c and r else None


def answer(record: dict, key: str, what: str) -> str:
    """One side's answer: a text, one assistant message, or a list holding one."""
    if key not in record or record[key] is None:
        raise RowError(f"missing {what} field '{key}'", "missing field")
    value: Any = record[key]
    if isinstance(value, list):
        if len(value) != 1:
            raise RowError(f"'{key}' should be one answer (a text or one assistant message), found {len(value)} messages",
                           "wrong type")
        value = value[0]
    if isinstance(value, dict):
        msg = _message(value, 1)
        if msg["role"] != "assistant":
            raise RowError(f"the {what} answer '{key}' should be an assistant message, found {msg['role']}", "invalid row")
        value = msg["content"]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RowError(f"field '{key}' should be text, found {type(value).__name__}", "wrong type")
    if not value.strip():
        raise RowError(f"empty {what} answer ('{key}')", "empty field")
    return value


def preferred(context: list[dict], chosen: str, rejected: str) -> list[dict]:
    """The row's conversation: context (its assistant turns untrained), then the chosen
    answer carrying the rejected one."""
    if chosen.strip() == rejected.strip():
        raise RowError("the chosen and the rejected answers are the same: nothing to prefer", "invalid row")
    ctx = [{**m, "weight": 0.0} if m["role"] == "assistant" else m for m in context]
    if not any(m["role"] == "user" for m in ctx):
        raise RowError("no prompt before the answers", "missing field")
    return ctx + [{"role": "assistant", "content": chosen, "rejected": rejected}]


def messages_of(value: Any, key: str) -> list[dict]:
    """A list of {role, content} (or {from, value}) messages, parsed as the messages format does."""
    if not isinstance(value, list) or not value:
        raise RowError(f"'{key}' should be a non-empty list of messages", "wrong type")
    return [_message(item, i) for i, item in enumerate(value, 1)]


def detect(keys: Mapping, record: dict) -> Mapping | None:
    s, p = sides(keys), first(keys, PROMPT_NAMES)
    if s is None or p is None:
        return None
    system = first(keys, SYSTEM_NAMES)
    return {"prompt": p, **s, **({"system": system} if system else {})}


def convert(record: dict, m: Mapping) -> list[dict]:
    key = m["prompt"]
    value = record.get(key)
    if isinstance(value, list):
        context = system_turn(record, m) + messages_of(value, key)
    else:
        context = system_turn(record, m) + [{"role": "user", "content": text(record, key, "prompt", required=True)}]
    return preferred(context, answer(record, m["chosen"], "chosen"), answer(record, m["rejected"], "rejected"))


FORMAT = DataFormat(
    name="preference",
    label="Preference pairs: prompt / chosen / rejected",
    roles=("prompt", "chosen", "rejected", "system"),
    required=("prompt", "chosen", "rejected"),
    detect=detect,
    convert=convert,
    examples=(
        Example("prompt / chosen / rejected", {"prompt": "Capital of Peru?", "chosen": "Lima.", "rejected": "Cusco."},
                "(DPO / ORPO; each part a text or TRL's message lists; also "
                + ", ".join(f"`{n}`" for n in PROMPT_NAMES[1:]) + " for the prompt)"),
    ),
    preference=True,
)
