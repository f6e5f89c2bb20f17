"""Plain text for continued pre-training: one document per record (`text`, `content` or
`document`), or a .txt file whose blank lines separate documents (one document per line
when its lines are long and none is blank); loss on every token."""

from __future__ import annotations

from .base import DataFormat, Example, Mapping, first, text

TEXT_NAMES = ("text", "content", "document")


def detect(keys: Mapping, record: dict) -> Mapping | None:
    name = first(keys, TEXT_NAMES)
    return {"text": name} if name is not None and isinstance(record[name], str) else None


def convert(record: dict, m: Mapping) -> list[dict]:
    return [{"role": "text", "content": text(record, m["text"], "text", required=True)}]


FORMAT = DataFormat(
    name="text",
    label="Plain text (continued pre-training)",
    roles=("text",),
    required=("text",),
    detect=detect,
    convert=convert,
    examples=(
        Example("plain text", {"text": "Once upon a time there was a fox."},
                "(also " + " or ".join(f"`{n}`" for n in TEXT_NAMES[1:]) + ") or a `.txt` file (blank lines separate documents; one per line when "
                "the lines are long and none is blank): "
                "continued pre-training, loss on every token, long documents split into pieces"),
    ),
    plain_text=True,
)
