"""A small tool-calling dataset (OpenAI messages with `tools` schemas): questions about the
weather, currencies and the local time, each answered by one call (two for a question on
two cities), a few answered in words after the tool's result, and a few needing no tool.
Written for the tests and scripts/tool_call_acceptance.py, not taken from anywhere."""

from __future__ import annotations

import json
import random
from pathlib import Path


def _schema(name: str, description: str, **params: tuple[str, str]) -> dict:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": {k: {"type": t, "description": d} for k, (t, d) in params.items()},
                       "required": list(params)}}}


WEATHER = _schema("get_weather", "Current weather in a city", city=("string", "the city's name"))
CURRENCY = _schema("convert_currency", "Convert an amount of money", amount=("number", "how much"),
                   from_currency=("string", "ISO code, e.g. USD"), to_currency=("string", "ISO code, e.g. EUR"))
CLOCK = _schema("get_time", "Local time in a city", city=("string", "the city's name"))
TOOLS = [WEATHER, CURRENCY, CLOCK]

CITIES = ["Paris", "Tokyo", "Lima", "Cairo", "Oslo", "Madrid", "Toronto", "Nairobi", "Sydney", "Berlin", "Lisbon",
          "Seoul", "Chicago", "Mumbai", "Dublin", "Prague", "Denver", "Hanoi", "Vienna", "Bogota"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR"]
WEATHER_Q = ["What's the weather in {c}?", "Is it raining in {c} right now?", "How warm is it in {c} today?",
             "weather {c}", "Tell me the current weather in {c}.", "Should I take an umbrella in {c}?",
             "What is the temperature in {c}?", "Can you check the weather for {c}, please?"]
CURRENCY_Q = ["Convert {a} {f} to {t}.", "How much is {a} {f} in {t}?", "What are {a} {f} worth in {t}?",
              "{a} {f} to {t} please", "I have {a} {f}; how many {t} is that?"]
TIME_Q = ["What time is it in {c}?", "Tell me the local time in {c}.", "time in {c}?", "Is it night in {c} now?"]
TWO_Q = ["Compare the weather in {c} and {d}.", "What's the weather in {c} and in {d}?"]
NO_TOOL = [("Hello!", "Hello! Ask me about the weather, the time or a currency."),
           ("Thanks, that's all.", "You're welcome!"),
           ("Who are you?", "An assistant that can check the weather, the time and exchange rates.")]
# Kept out of the training rows: the acceptance check asks about it.
UNSEEN_CITY = "Reykjavik"


def _call(name: str, **arguments) -> dict:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def rows(n: int = 96, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = i % 8
        if kind in (0, 1, 2):
            c = rng.choice(CITIES)
            q, calls = rng.choice(WEATHER_Q).format(c=c), [_call("get_weather", city=c)]
        elif kind in (3, 4):
            a, (f, t) = rng.choice([5, 20, 50, 100, 250, 1000, 12.5]), rng.sample(CURRENCIES, 2)
            q = rng.choice(CURRENCY_Q).format(a=a, f=f, t=t)
            calls = [_call("convert_currency", amount=a, from_currency=f, to_currency=t)]
        elif kind == 5:
            c = rng.choice(CITIES)
            q, calls = rng.choice(TIME_Q).format(c=c), [_call("get_time", city=c)]
        elif kind == 6:
            c, d = rng.sample(CITIES, 2)
            q, calls = rng.choice(TWO_Q).format(c=c, d=d), [_call("get_weather", city=c), _call("get_weather", city=d)]
        else:
            q, a = NO_TOOL[i // 8 % len(NO_TOOL)]
            out.append({"tools": TOOLS, "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
            continue
        messages = [{"role": "user", "content": q}, {"role": "assistant", "content": "", "tool_calls": calls}]
        if i % 16 == 0:  # now and then the tool answers and the assistant says it in words
            c = calls[0]["function"]["arguments"]["city"]
            messages += [{"role": "tool", "name": "get_weather", "content": json.dumps({"city": c, "sky": "sunny", "celsius": 21})},
                         {"role": "assistant", "content": f"It is sunny in {c}, 21 °C."}]
        out.append({"tools": TOOLS, "messages": messages})
    return out


def write_tool_set(path: Path, n: int = 96, seed: int = 0) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows(n, seed))
    return path


def write_tools(path: Path) -> Path:
    """The schemas alone, as `compare --tools FILE` takes them."""
    path.write_text(json.dumps(TOOLS, indent=1), encoding="utf-8")
    return path
