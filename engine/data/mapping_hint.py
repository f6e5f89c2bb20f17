"""One message for a file whose parts TuneDesk cannot place: everything to add at once.

A user who gets "give the format too", then "needs a field", then the answer, spends three
tries; this message names the columns it found, every flag still missing, and a complete
line to copy (the window shows the same sentence above its field pickers)."""

from __future__ import annotations

from typing import Any

from .formats import FORMATS

_SPECS = {f.name: f for f in FORMATS}


def _guess(columns: list[str], given: dict[str, str]) -> str:
    """The format a file most likely is: one whose parts include every part the user mapped
    (the question/answer pair first), else plain text for a single column, else a pair."""
    fits = [f.name for f in FORMATS if given and set(given) <= set(f.roles)]
    if fits:
        return "pair" if "pair" in fits else fits[0]
    return "text" if len(columns) == 1 else "pair"


def mapping_hint(file: str, columns: list[str], *, fmt: str | None, given: dict[str, str] | None,
                 detected: Any = None) -> str:
    """The sentence for `file` (its `columns`, in file order), given the user's --format
    (`fmt`) and --map (`given`) and what detection found (a Shape or None)."""
    given = dict(given or {})
    target = fmt or (detected.format if detected is not None else _guess(columns, given))
    spec = _SPECS[target]
    have = {**(dict(detected.mapping) if detected is not None and detected.format == target else {}), **given}
    missing = [r for r in spec.required if r not in have]
    free = [c for c in columns if c not in have.values()]
    example = {**have, **{r: (free.pop(0) if free else "FIELD") for r in missing}}
    add = ([] if fmt else [f"--format {target}"]) + [f"--map {r}={example[r]}" for r in missing]
    line = " ".join([f"--format {target}"] + [f"--map {r}={f}" for r, f in example.items() if r in spec.roles])
    if fmt:
        why = f"the {target} format needs a field for {', '.join(missing)}"
    elif given:
        why = "cannot tell the dataset's format from its fields, so --map alone is not enough"
    else:
        why = "cannot tell the dataset's format from its fields"
    shown = ", ".join(columns[:20]) + (f" and {len(columns) - 20} more" if len(columns) > 20 else "")
    formats = "; ".join(f"{f.name}: {', '.join(f.required)}" for f in FORMATS)
    return (f"{file}: {why} (its fields: {shown or 'none'}). Add {' '.join(add)} (the fields each format needs: "
            f"{formats}); for example:\n    {line}")
