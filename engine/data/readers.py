"""Read records from a dataset file, one at a time, with the row number they came from.

Readers yield `(row, record)` pairs; `row` is what a user sees in an editor (the
1-based line of a JSONL file, the 1-based element of a JSON array). A broken JSONL line
is a row problem (`RowProblem`), reported and skipped; a file that cannot be read at all
is a `DataError` naming the file and the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataError

SUPPORTED = (".jsonl", ".json")


@dataclass
class RowProblem:
    """A row that cannot be used, with a reason a person understands."""

    row: int
    reason: str


def _open_text(path: Path):
    # utf-8-sig strips a byte-order mark; newline=None folds CRLF to LF.
    return open(path, encoding="utf-8-sig", newline=None)


def iter_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a dataset file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise DataError(f"{path.name}: unsupported file type '{suffix or '(none)'}'; use {', '.join(SUPPORTED)}")
    if path.stat().st_size == 0:
        raise DataError(f"{path.name}: the file is empty")
    try:
        if suffix == ".jsonl":
            yield from _jsonl(path)
        else:
            yield from _json(path)
    except UnicodeDecodeError as e:
        raise DataError(f"{path.name}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as e:
                yield line_no, RowProblem(line_no, f"not valid JSON ({e.msg} at column {e.colno})")


def _json(path: Path) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as f:
        text = f.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path.name}: broken JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if isinstance(data, dict):
        # An object holding one list of records, e.g. {"data": [...]}.
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(f"{path.name}: expected an array of records, or an object holding one list of records")
        data = lists[0]
    if not isinstance(data, list):
        raise DataError(f"{path.name}: expected an array of records, found {type(data).__name__}")
    for i, record in enumerate(data, 1):
        yield i, record
