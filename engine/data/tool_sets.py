"""Tool schemas offered at answer time (Compare, `tunedesk compare --tools`): from a JSON
file, or the ones a run's dataset offered. They are normalised like a row's
(formats/tools.py), so an answer's prompt is rendered as training rendered its rows."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from ..config import DataConfig
from ..errors import DataError
from .formats.base import RowError
from .formats.tools import parse_tools
from .readers import RowProblem, iter_records
from .shapes import to_conversation

DATASET_ROWS = 2000  # rows read for the dataset's schemas: enough for any file's set, quick for a big one


def load_tools_file(path: str | Path) -> list[dict]:
    """The schemas in a JSON file: a list of function schemas (OpenAI's {"type":
    "function", "function": {…}} or bare {name, description, parameters}), one schema, or
    an object with a `tools` / `functions` list."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as e:
        raise DataError(f"{path}: cannot read the tool schemas ({e.strerror or e})") from None
    except (ValueError, RecursionError) as e:
        raise DataError(f"{path.name}: the tool schemas are not valid JSON ({str(e)[:120]})") from None
    if isinstance(value, dict) and not ({"tools", "functions"} & {k.lower() for k in value}):
        value = [value]
    try:
        tools = parse_tools(value if isinstance(value, dict) else {"tools": value}, what="the schemas")
    except RowError as e:
        raise DataError(f"{path.name}: {e} (expected a JSON list of function schemas)") from None
    if not tools:
        raise DataError(f"{path.name}: no tool schemas in the file; give a list of function schemas")
    return tools


def tools_in_dataset(cfg: DataConfig, rows: int = DATASET_ROWS) -> list[dict]:
    """Every distinct function the dataset's first `rows` rows offer (the first schema
    given for a name), in the order met; [] when the file offers none or cannot be read."""
    from .prepare import resolve_shape

    try:
        shape = resolve_shape(cfg, [])
    except DataError:
        return []
    if "tools" not in shape.spec.roles:
        return []
    found: dict[str, dict] = {}
    try:
        for _, record in itertools.islice(iter_records(Path(cfg.path)), rows):
            try:
                conv = [] if isinstance(record, RowProblem) else to_conversation(record, shape)
            except RowError:
                continue
            if conv and conv[0]["role"] == "tools":
                for t in conv[0]["tools"]:
                    found.setdefault(t["function"]["name"], t)
    except DataError:  # the file changed or went away since training: what was found so far
        pass
    return list(found.values())
