"""The data formats TuneDesk reads: one module each, registered once in FORMATS.

Everything else derives from this list: detection (shapes.py), the checks of a given
format and mapping (prepare.py), the command line's --format choices and --map help, the
window's format menu and field form, and the README's table (`python -m
engine.data.formats` prints it; tests/test_registries.py checks the README against it).

The order is detection's precedence: a record is given the first format that recognises
it, so a list of messages wins over field names, and alpaca's instruction/output over
the question/answer names; a text with a label is labeled data, not plain text; a row with a
chosen and a rejected answer is a preference pair before anything else.
"""

from __future__ import annotations

from . import alpaca, labeled, messages, pair, preference, preference_chat, preference_dialogue, sharegpt, text
from .base import DataFormat

FORMATS: list[DataFormat] = [
    preference_chat.FORMAT,
    preference.FORMAT,
    preference_dialogue.FORMAT,
    messages.FORMAT,
    sharegpt.FORMAT,
    alpaca.FORMAT,
    pair.FORMAT,
    labeled.FORMAT,
    text.FORMAT,
]
BY_NAME = {f.name: f for f in FORMATS}
NAMES = tuple(BY_NAME)


def _form_order(role_lists) -> list[str]:
    """Every part of every format in one list where each format's parts keep their own
    order (the window shows one form and hides the parts the chosen format lacks)."""
    out: list[str] = []
    for roles in role_lists:
        for i, role in enumerate(roles):
            if role not in out:
                out.insert(next((out.index(r) for r in roles[i + 1:] if r in out), len(out)), role)
    return out


ROLES = _form_order(f.roles for f in FORMATS)


def markdown() -> str:
    """The README's table of formats: one row per example record."""
    rows = ["| `--format` | shape | one record | parts for `--map PART=FIELD` (**required**) |", "| --- | --- | --- | --- |"]
    for f in FORMATS:
        parts = ", ".join(f"**{r}**" if r in f.required else r for r in f.roles)
        rows += [f"| `{f.name}` | {ex.title} | {ex.markdown()} | {parts} |" for ex in f.examples]
    return "\n".join(rows)
