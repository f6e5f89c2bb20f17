"""Labeled data for classification: a text and its label (IMDB's text / label, a CSV's
review / sentiment) becomes a prompt -> label answer: an instruction naming every label,
the text, and the label as the answer the model learns to write.

Labels are strings as written, or integers named by a ClassLabel feature (a Hub dataset, a
Parquet file written by `datasets`) or by the user (`--labels negative,positive`: 0 is
the first name). The instruction is editable; its default is made from the field names,
e.g. "Classify the sentiment of this review as one of: negative, positive."

The label names are a property of the whole dataset, not of one row: `settle` reads every
record's label once, before conversion (shapes.Shape.options carries the result).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from .base import DataFormat, Example, Mapping, RowError, first, text

TEXT_NAMES = ("text", "review", "sentence", "content", "document", "comment", "tweet", "body", "message",
              "utterance", "statement", "review_text")
LABEL_NAMES = ("label", "labels", "sentiment", "class", "category", "target", "emotion", "intent", "topic",
               "polarity", "stance", "coarse_label", "fine_label")
# Field names too generic to say what is classified: "Classify this text" rather than "the label of this text".
_GENERIC = {"label", "labels", "class", "category", "target", "text", "content", "document", "body", "message"}
MAX_LABEL_CHARS = 50  # a longer "label" is an answer: the pair format's business
MAX_LABELS = 100


def _scalar_label(value: Any) -> bool:
    if isinstance(value, bool) or isinstance(value, int):
        return True
    return isinstance(value, str) and 0 < len(value.strip()) <= MAX_LABEL_CHARS and "\n" not in value.strip()


def detect(keys: Mapping, record: dict) -> Mapping | None:
    name, label = first(keys, TEXT_NAMES), first(keys, LABEL_NAMES)
    if name is None or label is None or not isinstance(record[name], str) or not _scalar_label(record[label]):
        return None
    return {"text": name, "label": label}


def _number(value: Any) -> int | None:
    """The integer a label is ("1" in a CSV is 1), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def label_of(record: dict, key: str, labels: list[str], numbered: bool) -> str:
    """The answer of one record: its label's name."""
    if key not in record or record[key] is None:
        raise RowError(f"missing label field '{key}'", "missing field")
    value = record[key]
    if isinstance(value, (dict, list, float)):
        raise RowError(f"field '{key}' should be a label (text or a whole number), found {type(value).__name__}",
                       "wrong type")
    n = _number(value)
    if numbered and n is not None:
        if not 0 <= n < len(labels):
            raise RowError(f"label {n} has no name (names: {', '.join(labels)}; 0 is the first)", "unknown label")
        return labels[n]
    name = str(value).strip()
    if not name:
        raise RowError(f"empty label ('{key}')", "empty field")
    if numbered and name not in labels:
        raise RowError(f"label '{name}' is not one of {', '.join(labels)}", "unknown label")
    return name


def default_instruction(m: Mapping, labels: list[str]) -> str:
    what, of = m["label"].lower().replace("_", " "), m["text"].lower().replace("_", " ")
    subject = ("" if what in _GENERIC else f"the {what} of ") + ("this text" if of in _GENERIC else f"this {of}")
    return f"Classify {subject} as one of: {', '.join(labels)}."


def settle(m: Mapping, records: Iterable[dict], settings: dict) -> tuple[dict, list[str]]:
    """The label names (given, from a ClassLabel, or as found) and the instruction."""
    given, class_names = settings.get("labels"), settings.get("class_names")
    names = list(given or class_names or [])
    numbered = bool(names)
    counts: Counter[str] = Counter()
    for r in records:
        try:
            counts[label_of(r, m["label"], names, numbered)] += 1
        except RowError:
            continue  # the row is skipped, with its reason, when it is converted
    if not numbered:
        found = list(counts)
        numbers = [_number(x) for x in found]
        names = [str(x) for x in sorted(numbers)] if all(n is not None for n in numbers) else sorted(found)
    if not names:
        raise ValueError(f"no usable label in the field '{m['label']}'")
    if len(names) > MAX_LABELS:
        raise ValueError(f"the field '{m['label']}' has {len(names):,} different labels (at most {MAX_LABELS}): "
                         "it looks like answers, not labels; choose the Question / answer format (--format pair)")
    source = "names you gave" if given else "ClassLabel names" if class_names else "as written"
    notes = [f"labels ({source}): " + ", ".join(f"{n} ({counts.get(n, 0):,} rows)" for n in names)]
    if not numbered and all(_number(n) is not None for n in names):
        notes.append(f"the labels are numbers without names: the model learns to answer {', '.join(names)}; "
                     "name them (--labels negative,positive, or Label names on the Data page)")
    if len(counts) == 1 and sum(counts.values()) > 1:
        only = next(iter(counts))
        notes.append(f"every row has the label '{only}': the model can only learn that answer "
                     "(a split sorted by label? take rows from a shuffled one, or more of them)")
    instruction = settings.get("instruction") or default_instruction(m, names)
    return {"labels": names, "instruction": instruction, "numbered": numbered}, notes


def convert(record: dict, m: Mapping, labels: list[str] = (), instruction: str = "",
            numbered: bool = False) -> list[dict]:
    body = text(record, m["text"], "text", required=True)
    answer = label_of(record, m["label"], list(labels), numbered)
    prompt = f"{instruction.strip()}\n\n{body}" if instruction.strip() else body
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


FORMAT = DataFormat(
    name="labeled",
    label="Labeled text: text + label (classification)",
    roles=("text", "label"),
    required=("text", "label"),
    detect=detect,
    convert=convert,
    settle=settle,
    examples=(
        Example("text + label", {"review": "Loved every minute.", "sentiment": "positive"},
                "— also `text`/`label` (IMDB), " + ", ".join(f"`{n}`" for n in TEXT_NAMES[2:6]) + " … with "
                + ", ".join(f"`{n}`" for n in LABEL_NAMES[3:8]) + " …; integer labels named by a ClassLabel or "
                "`--labels`; an editable instruction (`--instruction`) names the labels; Compare reports accuracy"),
    ),
)
