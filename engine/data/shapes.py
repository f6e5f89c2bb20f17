"""Recognise the shape of a dataset's records and turn each record into a conversation.

A shape is a format of the registry (engine/data/formats) and a mapping of its parts to
the file's fields. Detection votes over the first records: each record gets the first
format that recognises it. The user can override it with a format and a field mapping,
e.g. format 'pair' with {'prompt': 'Question', 'answer': 'Response', 'reasoning': 'Complex_CoT'}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .formats import BY_NAME, FORMATS, DataFormat
from .formats.base import RowError
from .formats.tools import tools_field


@dataclass
class Shape:
    format: str
    """The name of a format in engine/data/formats."""
    mapping: dict[str, str] = field(default_factory=dict)
    """Field of each part, e.g. {'prompt': 'Question', 'answer': 'Response'}."""
    options: dict[str, Any] = field(default_factory=dict)
    """What a format settled from the whole dataset (the labeled format's labels and
    instruction): passed to its convert."""

    @property
    def spec(self) -> DataFormat:
        return BY_NAME[self.format]

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "mapping": dict(self.mapping), **self.options}


def detect(records: list[dict]) -> Shape | None:
    """The shape most of the sample records have, or None."""
    votes: dict[tuple, int] = {}
    for r in records:
        if isinstance(r, dict):
            shape = detect_one(r)
            if shape is not None:
                key = (shape.format, tuple(sorted(shape.mapping.items())))
                votes[key] = votes.get(key, 0) + 1
    if not votes:
        return None
    (fmt, mapping), _ = max(votes.items(), key=lambda kv: kv[1])
    shape = Shape(fmt, dict(mapping))
    if "tools" in shape.spec.roles:
        # Schemas are often on some rows only: any sample row naming them names the field
        # (a vote would let the rows without schemas hide it).
        lowered = ({k.lower(): k for k in r if isinstance(k, str)} for r in records if isinstance(r, dict))
        key = next((k for keys in lowered if (k := tools_field(keys))), None)
        if key:
            shape.mapping["tools"] = key
    return shape


def detect_one(r: dict) -> Shape | None:
    keys = {k.lower(): k for k in r if isinstance(k, str)}
    for f in FORMATS:
        mapping = f.detect(keys, r)
        if mapping is not None:
            return Shape(f.name, mapping)
    return None


def to_conversation(record: Any, shape: Shape) -> list[dict]:
    if not isinstance(record, dict):
        raise RowError(f"expected an object with fields, found {type(record).__name__}", "wrong type")
    if shape.format not in BY_NAME:
        raise RowError(f"unknown format {shape.format}")
    return shape.spec.convert(record, shape.mapping, **shape.options)
