"""Read records from a dataset file, streaming, with the row number each came from.

`iter_records(path)` yields `(row, record)`; `row` is what a person finds in an editor:
the 1-based line of a JSONL / CSV / TXT record (a TXT of one document per line: its line) (CSV: the line where the record starts,
the header being line 1), the 1-based element of a JSON array, the 1-based record of a
Parquet file. A record that cannot be parsed comes as a `RowProblem` and is skipped by
the caller; a file that cannot be read at all raises `DataError` naming the file.

Nothing here holds the whole file: JSONL, CSV and TXT go line by line, a JSON array is
decoded one element at a time from a sliding buffer, Parquet one row group batch at a
time. Encodings (encoding.py): UTF-8 (with or without BOM), UTF-16 / UTF-32 with BOM;
CRLF is fine everywhere. A row holding a NUL byte or bytes that are not UTF-8, and a JSON
value nested too deeply for Python's parser, cost only that row (a JSON document: the
file, naming the line).

About 385 lines: the five file types share one way of naming a bad row and one decoding
of the bytes; split per type, that sharing would become five copies.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import re
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, TextIO

from ..errors import DataError
from .encoding import SNIFF_BYTES, bad_text, sniff

TEXT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".txt": "txt"}
SUPPORTED = tuple(TEXT_FORMATS) + (".parquet",)
CHUNK = 1 << 20
_WS = re.compile(r"[ \t\r\n]*")
ARCHIVES = (".zip", ".bz2", ".xz", ".7z", ".rar", ".tar", ".tgz", ".zst", ".lz4")
TXT_LINE_CHARS = 200  # a .txt whose lines are this long (median), with no blank line, has a document per line
TOO_DEEP = "nested too deeply (over about 900 levels of brackets); flatten the record"


@dataclass
class RowProblem:
    """A row that cannot be used, with a reason a person understands."""

    row: int
    reason: str
    kind: str = "invalid row"
    """Short category for summaries: 'invalid JSON', 'missing field', 'duplicate', …"""


def kind_of(path: Path) -> tuple[str, bool]:
    """(format, gzipped) from the file name, e.g. data.jsonl.gz -> ('jsonl', True)."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    suffix = suffixes[-2] if gz and len(suffixes) >= 2 else (suffixes[-1] if suffixes and not gz else "")
    if suffix == ".parquet" and not gz:
        return "parquet", False
    if suffix in TEXT_FORMATS:
        return TEXT_FORMATS[suffix], gz
    if suffixes and suffixes[-1] in ARCHIVES:
        raise DataError(f"{path.name}: a compressed archive ('{path.suffix}'); unpack it and open the dataset file inside "
                        "(only .gz is read as it is)")
    shown = "".join(path.suffixes[-2:]) if gz else (path.suffix or "(none)")
    raise DataError(
        f"{path.name}: unsupported file type '{shown}'; use .jsonl, .json, .csv, .tsv, .parquet or .txt (optionally .gz)"
    )


def iter_records(path: str | Path, notes: list[str] | None = None) -> Iterator[tuple[int, Any]]:
    """Records of the file; `notes` (if given) collects remarks worth telling the user."""
    path = Path(path)
    notes = notes if notes is not None else []
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path.name}: is a folder, not a dataset file")
    fmt, gz = kind_of(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path.name}: the file is empty")
    if fmt == "parquet":
        yield from _parquet(path)
        return
    try:
        yield from _text_records(path, fmt, gz, notes)
    except (gzip.BadGzipFile, zlib.error, EOFError) as e:
        raise DataError(f"{path.name}: not a valid gzip file ({e})") from None


# -- text files -----------------------------------------------------------------------
def _open_binary(path: Path, gz: bool) -> BinaryIO:
    return gzip.open(path, "rb") if gz else open(path, "rb")  # type: ignore[return-value]


def _open_text(path: Path, gz: bool, *, newline: str | None = None) -> TextIO:
    with _open_binary(path, gz) as f:
        enc = sniff(path.name, f.read(SNIFF_BYTES))
    binary = _open_binary(path, gz)
    binary.read(enc.skip)  # every byte-order mark, however many
    return io.TextIOWrapper(binary, encoding=enc.name, errors=enc.errors, newline=newline)


def _text_records(path: Path, fmt: str, gz: bool, notes: list[str]) -> Iterator[tuple[int, Any]]:
    if fmt in ("jsonl", "json"):
        # Files are often misnamed: trust the content. A JSON array is read as JSON, a
        # file of one object per line as JSONL, whatever the extension says.
        actual = _json_flavour(path, gz)
        if actual != fmt:
            notes.append(f"{path.name} holds {'a JSON array' if actual == 'json' else 'one JSON object per line'}; read as {actual.upper()}")
        fmt = actual
    if fmt in ("csv", "tsv"):
        reader = _csv_reader(_delimiter(path, gz, fmt, notes))
    else:
        reader = {"jsonl": _jsonl, "json": _json, "txt": _txt}[fmt]
    if fmt == "txt" and _one_document_per_line(path, gz):
        notes.append(f"{path.name}: one document per line (long lines, no blank lines between them); each line is a row")
        reader = _txt_lines
    f = _open_text(path, gz, newline="" if fmt in ("csv", "tsv") else None)
    try:
        yield from reader(f, path, fmt)
    except UnicodeDecodeError as e:
        raise DataError(f"{path.name}: not UTF-8 text further into the file (invalid byte {e.start} of a read block); save it as UTF-8") from None
    finally:
        f.close()


def _json_flavour(path: Path, gz: bool) -> str:
    """'json' for an array or one (wrapper) object, 'jsonl' for one object per line.

    Decided from the first 64 KB; when that cannot tell, the file name decides.
    """
    named_jsonl = kind_of(path)[0] == "jsonl"
    with _open_text(path, gz) as f:
        head = f.read(SNIFF_BYTES)
    stripped = head.lstrip()
    if stripped.startswith("["):
        return "json"
    lines = [x for x in stripped.split("\n") if x.strip()]
    if not stripped.startswith("{") or not lines:
        return "jsonl" if named_jsonl else "json"
    try:
        first = json.loads(lines[0])
    except (json.JSONDecodeError, RecursionError):
        return "jsonl" if named_jsonl else "json"  # pretty-printed, broken, or longer than the sniff
    if len(lines) > 1:
        return "jsonl"
    wrapper = isinstance(first, dict) and any(isinstance(v, list) and v and isinstance(v[0], dict) for v in first.values())
    # {"data": []} in a .json: a wrapper with nothing in it (said so), not one record with a field 'data'
    empty = not named_jsonl and isinstance(first, dict) and [v for v in first.values() if isinstance(v, list)] == [[]]
    return "json" if wrapper or empty else "jsonl"


def _json_msg(msg: str) -> str:
    # json's messages end in "... starting at" because they expect a position after them.
    return msg[: -len(" starting at")] if msg.endswith(" starting at") else msg


def _jsonl(f: TextIO, path: Path, fmt: str) -> Iterator[tuple[int, Any]]:
    for line_no, line in enumerate(f, 1):
        line = line.lstrip("\ufeff")  # files joined with `cat`: each one's byte-order mark
        if not line.strip():
            continue
        why = bad_text(line)
        if why:
            yield line_no, RowProblem(line_no, why, "bad bytes")
            continue
        try:
            record = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as e:
            yield line_no, RowProblem(line_no, f"not valid JSON: {_json_msg(e.msg)} (column {e.colno})", "invalid JSON")
            continue
        except RecursionError:
            yield line_no, RowProblem(line_no, f"not readable JSON: {TOO_DEEP}", "invalid JSON")
            continue
        if not isinstance(record, dict):
            yield line_no, RowProblem(line_no, f"expected an object with fields, found {type(record).__name__}", "wrong type")
            continue
        yield line_no, record


class _Stream:
    """A sliding window over a text stream for decoding one JSON value at a time."""

    def __init__(self, f: TextIO, name: str) -> None:
        self.f, self.name = f, name
        self.buf, self.pos, self.line, self.eof = "", 0, 1, False
        self.chunk = CHUNK
        self.decoder = json.JSONDecoder()
        self.bad = ""
        """Why the last value's text cannot be used (bad_text), or ''."""

    def _more(self) -> bool:
        if self.eof:
            return False
        data = self.f.read(self.chunk)
        if not data:
            self.eof = True
            return False
        self.line += self.buf.count("\n", 0, self.pos)
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def peek(self) -> str:
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def error(self, at: int, msg: str, what: str = "broken JSON") -> DataError:
        line = self.line + self.buf.count("\n", 0, at)
        col = at - self.buf.rfind("\n", 0, at)
        return DataError(f"{self.name}: {what} at line {line} column {col}: {_json_msg(msg)}")

    def value(self) -> Any:
        self.peek()  # raw_decode does not skip leading whitespace
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                # Maybe only cut by the buffer's end: read on, in growing chunks so a
                # huge element is not re-parsed once per megabyte.
                self.chunk = min(self.chunk * 2, 64 * CHUNK)
                if self._more():
                    continue
                raise self.error(e.pos, e.msg) from None
            except RecursionError:
                raise self.error(self.pos, TOO_DEEP, "JSON that cannot be read") from None
            if end == len(self.buf) and not self.eof and self._more():
                continue  # a number or literal may continue in the next chunk
            self.bad = bad_text(self.buf[self.pos : end])
            self.pos = end
            self.chunk = CHUNK
            return obj

    def expect(self, chars: str, what: str) -> str:
        c = self.peek()
        if c not in chars or not c:
            raise self.error(self.pos, f"expected {what}" if c else f"unexpected end of file, expected {what}")
        self.pos += 1
        return c


def _json(f: TextIO, path: Path, fmt: str) -> Iterator[tuple[int, Any]]:
    s = _Stream(f, path.name)
    first = s.peek()
    if first == "{":
        # An object holding one list of records, e.g. {"data": [...]}: decoded whole
        # (such wrappers are small in practice; big datasets are arrays or JSONL).
        data = s.value()
        if s.peek():
            raise s.error(s.pos, "extra data after the top-level object")
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(f"{path.name}: expected an array of records, or an object holding one list of records (found {len(lists)} lists)")
        for i, record in enumerate(lists[0], 1):
            yield i, _object_or_problem(i, record)
        return
    if first != "[":
        raise s.error(s.pos, "expected an array of records '[…]'")
    s.pos += 1
    i = 0
    if s.peek() == "]":
        s.pos += 1
    else:
        while True:
            i += 1
            record = s.value()
            yield i, RowProblem(i, s.bad, "bad bytes") if s.bad else _object_or_problem(i, record)
            if s.expect(",]", "',' or ']'") == "]":
                break
    if s.peek():
        raise s.error(s.pos, "extra data after the array")


def _object_or_problem(i: int, record: Any) -> Any:
    if isinstance(record, dict):
        return record
    return RowProblem(i, f"expected an object with fields, found {type(record).__name__}", "wrong type")


DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
SNIFF_LINES = 20


def _delimiter(path: Path, gz: bool, fmt: str, notes: list[str]) -> str:
    """A TSV's tab; for a CSV, whichever of , ; tab | splits the header into the most
    columns that the first rows repeat (Excel writes ';' where the comma is the decimal
    mark; '|' and tabs turn up in exports). Ties go to the comma."""
    if fmt == "tsv":
        return "\t"
    with _open_text(path, gz, newline="") as f:
        head = "".join(itertools.islice(iter(f.readline, ""), SNIFF_LINES))
    best, best_score = ",", (0, 0)
    for sep in DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(head), delimiter=sep) if r]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        body = rows[1:-1] if len(rows) > 2 else rows[1:]  # the last line read may be cut short
        agree = sum(len(r) == len(rows[0]) for r in body)
        score = (int(agree * 10 >= len(body) * 8), len(rows[0]))  # 80% of the rows agree, then more columns
        if score > best_score:
            best, best_score = sep, score
    if best != ",":
        notes.append(f"{path.name}: fields separated by {DELIMITERS[best]}s, not commas; read that way")
    return best


def _csv_reader(delimiter: str):
    return lambda f, path, fmt: _csv(f, path, fmt, delimiter)


def _csv(f: TextIO, path: Path, fmt: str, delimiter: str) -> Iterator[tuple[int, Any]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(f, delimiter=delimiter, strict=True)
    kind = fmt.upper()
    sep = DELIMITERS[delimiter]
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise DataError(f"{path.name}: no header row with column names in the first line")
        header = [h.strip() for h in header]
        start = reader.line_num + 1
        for values in reader:
            if not values or not any(v.strip() for v in values):
                start = reader.line_num + 1
                continue
            why = bad_text(delimiter.join(values))
            if why:
                yield start, RowProblem(start, why, "bad bytes")
            elif len(values) != len(header):
                yield start, RowProblem(start, f"has {len(values)} fields, the header has {len(header)}: the field counts "
                                        f"differ (a stray {sep} in a field, or one missing?)", "wrong field count")
            else:
                yield start, dict(zip(header, values))
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"{path.name}: broken {kind} in the record starting at line {start}: {e} (an unclosed quote?)") from None


def _txt(f: TextIO, path: Path, fmt: str) -> Iterator[tuple[int, Any]]:
    """Plain text for continued pre-training: one record per blank-line separated block
    (or per line: _one_document_per_line)."""
    block: list[str] = []
    start = 1
    for line_no, line in enumerate(f, 1):
        if line.strip():
            if not block:
                start = line_no
            block.append(line)
        elif block:
            yield start, _text_record(start, block)
            block = []
    if block:
        yield start, _text_record(start, block)


def _one_document_per_line(path: Path, gz: bool) -> bool:
    """A .txt of long lines and no blank line among them (an export of articles, one per
    line), judged from its first 64 KB; blank-line separated paragraphs are documents otherwise."""
    with _open_text(path, gz) as f:
        head = f.read(SNIFF_BYTES).strip("\r\n")
    lines = head.splitlines()
    if any(not x.strip() for x in lines):
        return False
    lengths = sorted(len(x) for x in lines)
    return lengths[len(lengths) // 2] >= TXT_LINE_CHARS


def _txt_lines(f: TextIO, path: Path, fmt: str) -> Iterator[tuple[int, Any]]:
    for line_no, line in enumerate(f, 1):
        if line.strip():
            yield line_no, _text_record(line_no, [line])


def _text_record(start: int, lines: list[str]) -> Any:
    text = "".join(lines).rstrip("\n")
    why = bad_text(text)
    return RowProblem(start, why, "bad bytes") if why else {"text": text}


# -- parquet ------------------------------------------------------------------------------
def parquet_class_names(path: Path) -> dict[str, list[str]]:
    """The names of a Parquet file's ClassLabel columns ({column: names}), which `datasets`
    writes into the schema's metadata; {} for other files."""
    try:
        import pyarrow.parquet as pq

        meta = (pq.read_schema(path).metadata or {}).get(b"huggingface")
        features = json.loads(meta)["info"]["features"] if meta else {}
    except Exception:  # unreadable files are reported by _parquet, with the reason
        return {}
    return {k: list(v["names"]) for k, v in features.items()
            if isinstance(v, dict) and v.get("_type") == "ClassLabel" and v.get("names")}


def _parquet(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
    except ImportError:
        raise DataError(f"{path.name}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for non-Parquet bytes
        raise DataError(f"{path.name}: not a readable Parquet file ({e})") from None
    i = 0
    try:
        for batch in pf.iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                i += 1
                yield i, record
    except Exception as e:
        raise DataError(f"{path.name}: the Parquet file is damaged after record {i} ({e})") from None
