"""ShareGPT: a `conversations` list of {from, value} turns (human / gpt / system /
function_call / observation / tool, or user / assistant), read by the messages parser;
a function_call turn holds the call as JSON (a list for parallel calls), and the row's
`tools` field its schemas."""

from __future__ import annotations

from .base import DataFormat, Example
from .messages import ROLE_ALIASES, convert, list_field

FORMAT = DataFormat(
    name="sharegpt",
    label="ShareGPT (from / value)",
    roles=("messages", "tools"),
    required=("messages",),
    detect=list_field("conversations"),
    convert=convert,
    examples=(
        Example("ShareGPT", {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
                "(roles " + "/".join(ROLE_ALIASES) + "; a `function_call` turn is a JSON call, `tools` the schemas)"),
    ),
)
