"""ShareGPT: a `conversations` list of {from, value} turns (human / gpt / system /
function_call / observation / tool, or user / assistant), read by the messages parser."""

from __future__ import annotations

from .base import DataFormat, Example
from .messages import ROLE_ALIASES, convert, list_field

FORMAT = DataFormat(
    name="sharegpt",
    label="ShareGPT (from / value)",
    roles=("messages",),
    required=("messages",),
    detect=list_field("conversations"),
    convert=convert,
    examples=(
        Example("ShareGPT", {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
                "(roles " + "/".join(ROLE_ALIASES) + ")"),
    ),
)
