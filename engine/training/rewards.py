"""GRPO's checkable rewards: each scores one sampled answer in [0, 1]; a run sums the
ones the user picked (config.MethodConfig.rewards, parsed by config.parse_reward).

- match:  the answer's final part equals the reference's; when the reference ends in a
          number, numbers are compared as numbers (the last one of each), so "= 68." and
          "68" agree and "680" does not.
- format: a <think>…</think> block first, then a non-empty answer (the DeepSeek-R1 form);
          a block the generation prompt already opened counts as opened.
- length: MIN-MAX tokens scores 1; outside, it falls linearly to 0 at MIN/2 tokens below
          and at 2 x MAX above, so a group that is all too long still ranks its shorter
          answers higher (an all-or-nothing reward would give such a group nothing to learn).
- regex:  the pattern is found in the answer's final part.

"Final part": the text after the last </think>, else after the last "answer:", else the
whole answer, as reasoning models and graders write it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..config import parse_reward

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_ANSWER = re.compile(r"answer\s*(?:is)?\s*[:：]", re.IGNORECASE)
_THINK = re.compile(r"^\s*<think>.*?</think>\s*\S", re.DOTALL)


@dataclass(frozen=True)
class Sample:
    """One sampled answer, with what the rewards compare it to."""

    completion: str
    reference: str = ""
    tokens: int = 0
    opened_think: bool = False
    """The generation prompt already ends with <think> (reasoning templates)."""


def final_answer(text: str) -> str:
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    else:
        found = list(_ANSWER.finditer(text))
        if found:
            text = text[found[-1].end():]
    return text.strip()


def last_number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def _plain(text: str) -> str:
    return " ".join(text.casefold().strip().strip(".!?\"'`*").split())


def match(s: Sample) -> float:
    ref, got = final_answer(s.reference), final_answer(s.completion)
    want = last_number(ref)
    if want is not None:
        have = last_number(got)
        return float(have is not None and abs(have - want) <= 1e-6 * max(1.0, abs(want)))
    return float(bool(ref) and _plain(got) == _plain(ref))


def format_(s: Sample) -> float:
    text = ("<think>" if s.opened_think and not s.completion.lstrip().startswith("<think>") else "") + s.completion
    return float(bool(_THINK.match(text)) and text.count("</think>") == 1)


def length(lo: int, hi: int) -> Callable[[Sample], float]:
    def score(s: Sample) -> float:
        n = s.tokens
        if lo <= n <= hi:
            return 1.0
        if n < lo:
            return max(0.0, (n - lo / 2) / (lo / 2)) if lo > 1 else 0.0
        return max(0.0, 1.0 - (n - hi) / hi)
    return score


def regex(pattern: re.Pattern) -> Callable[[Sample], float]:
    return lambda s: float(pattern.search(final_answer(s.completion)) is not None)


def build(specs: list[str]) -> dict[str, Callable[[Sample], float]]:
    """The run's rewards by name (reward_<name> in the metrics); a repeated kind is numbered."""
    out: dict[str, Callable[[Sample], float]] = {}
    for spec in specs:
        kind, arg = parse_reward(spec)
        fn = {"match": lambda _: match, "format": lambda _: format_, "length": lambda a: length(*a),
              "regex": regex}[kind](arg)
        name, n = kind, 2
        while name in out:
            name, n = f"{kind}{n}", n + 1
        out[name] = fn
    return out


def needs_reference(specs: list[str]) -> bool:
    """Only match compares with the row's answer; format, length and regex need none."""
    return any(parse_reward(s)[0] == "match" for s in specs)


def score(rewards: dict[str, Callable[[Sample], float]], s: Sample) -> dict[str, float]:
    return {name: float(fn(s)) for name, fn in rewards.items()}
