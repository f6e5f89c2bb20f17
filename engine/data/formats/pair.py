"""One prompt and its answer, under the many names datasets give them (question/answer,
prompt/completion, input/output, …); optionally a system prompt and a chain of thought,
e.g. medical-o1-reasoning-SFT's Question / Complex_CoT / Response."""

from __future__ import annotations

from .base import REASONING_NAMES, SYSTEM_NAMES, DataFormat, Example, Mapping, answer_turn, optional_parts, system_turn, text

# (prompt field, answer field) under the names people use; the first the record has wins.
# instruction/output is not here: that is the alpaca format.
PAIR_NAMES: list[tuple[str, str]] = [
    ("question", "answer"),
    ("question", "response"),
    ("question", "output"),
    ("query", "response"),
    ("query", "answer"),
    ("prompt", "response"),
    ("prompt", "completion"),
    ("prompt", "answer"),
    ("prompt", "output"),
    ("instruction", "response"),
    ("input", "output"),
    ("input", "response"),
    ("q", "a"),
    ("user", "assistant"),
    ("human", "assistant"),
    ("human", "gpt"),
    ("context", "response"),
    ("problem", "solution"),
]


def detect(keys: Mapping, record: dict) -> Mapping | None:
    for p, a in PAIR_NAMES:
        if p in keys and a in keys:
            return {"prompt": keys[p], "answer": keys[a], **optional_parts(keys)}
    return None


def convert(record: dict, m: Mapping) -> list[dict]:
    return system_turn(record, m) + [
        {"role": "user", "content": text(record, m["prompt"], "prompt", required=True)},
        answer_turn(record, m),
    ]


FORMAT = DataFormat(
    name="pair",
    label="Question / answer pairs",
    roles=("prompt", "answer", "system", "reasoning"),
    required=("prompt", "answer"),
    detect=detect,
    convert=convert,
    examples=(
        Example("question / answer", {"question": "Capital of Peru?", "answer": "Lima."},
                "— any case; also " + ", ".join(f"`{p}`/`{a}`" for p, a in PAIR_NAMES[1:])),
        Example("prompt / completion", {"prompt": "Once upon a time", "completion": " there was a fox."}),
        Example("reasoning", {"Question": "…", "Complex_CoT": "…", "Response": "…"},
                "(medical-o1-reasoning-SFT): a chain of thought under any of "
                + ", ".join(f"`{n}`" for n in REASONING_NAMES) + "; a system prompt under "
                + " or ".join(f"`{n}`" for n in SYSTEM_NAMES)),
    ),
)
