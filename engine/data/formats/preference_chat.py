"""Preference pairs after a conversation: a `messages` (or ShareGPT `conversations`) list
that ends before the answer, and the chosen and rejected final answers beside it (texts or
one assistant message each)."""

from __future__ import annotations

from .base import DataFormat, Example, Mapping, RowError, first
from .preference import answer, messages_of, preferred, sides

LIST_NAMES = ("messages", "conversations", "conversation", "dialogue", "history")


def detect(keys: Mapping, record: dict) -> Mapping | None:
    s = sides(keys)
    field = first(keys, [n for n in LIST_NAMES if n in keys and isinstance(record[keys[n]], list)])
    return {"messages": field, **s} if s and field else None


def convert(record: dict, m: Mapping) -> list[dict]:
    key = m["messages"]
    if key not in record:
        raise RowError(f"missing messages field '{key}'", "missing field")
    context = messages_of(record[key], key)
    if context[-1]["role"] == "assistant":
        raise RowError(f"'{key}' should end before the answer (its last message is the assistant's)", "invalid row")
    return preferred(context, answer(record, m["chosen"], "chosen"), answer(record, m["rejected"], "rejected"))


FORMAT = DataFormat(
    name="preference_chat",
    label="Preference pairs after a chat: messages + chosen / rejected",
    roles=("messages", "chosen", "rejected"),
    required=("messages", "chosen", "rejected"),
    detect=detect,
    convert=convert,
    examples=(
        Example("messages + chosen / rejected",
                {"messages": [{"role": "user", "content": "Hi"}], "chosen": "Hello! How can I help?", "rejected": "What."},
                "(or ShareGPT `conversations`; the list ends before the answer)"),
    ),
    preference=True,
)
