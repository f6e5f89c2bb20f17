"""How a dataset file's bytes become text, and what a row's text may not hold.

The encoding is judged from the first 64 KB: UTF-8 (with or without byte-order mark),
UTF-16 or UTF-32 with a byte-order mark. However many byte-order marks the file starts
with (files saved twice by tools that each add one), all are skipped: nothing is lost.

A few stray bytes must cost only the row that holds them, not the whole file: UTF-8 is
decoded with `surrogateescape`, so a byte that is not UTF-8 further into the file (a
line cut in the middle of a character, one pasted Latin-1 line) becomes a lone surrogate
that `bad_text` finds, as it finds a NUL byte; the reader then skips that row, naming it.
A file whose first 64 KB are mostly control bytes is not text at all, and one with a
NUL in every other byte is UTF-16 saved without its mark: both are refused in one sentence.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from ..errors import DataError

SNIFF_BYTES = 64 * 1024
# UTF-32's marks first: UTF-32-LE's starts with UTF-16-LE's.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_BAD = re.compile("[\x00\udc80-\udcff]")


@dataclass(frozen=True)
class Encoding:
    name: str
    skip: int
    """Bytes of byte-order marks at the start of the file, skipped before decoding."""

    @property
    def errors(self) -> str:
        return "surrogateescape" if self.name == "utf-8" else "strict"


def sniff(name: str, head: bytes) -> Encoding:
    """The encoding of a file whose first bytes are `head`; DataError when it is not text."""
    for bom, encoding in BOMS:
        if head.startswith(bom):
            skip = len(bom)
            while head.startswith(bom, skip):
                skip += len(bom)
            return Encoding(encoding, skip)
    if not head.strip():
        raise DataError(f"{name}: the file is empty")
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13)) + head.count(127)
    if controls > len(head) * 0.05:
        if _looks_utf16(head):
            raise DataError(f"{name}: not a text file TuneDesk can read: it looks like UTF-16 saved without a "
                            "byte-order mark; save it as UTF-8")
        raise DataError(f"{name}: not a text file (binary data)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as e:
        raise DataError(f"{name}: not UTF-8 text (invalid byte at offset {e.start}); save it as UTF-8") from None
    return Encoding("utf-8", 0)


def _looks_utf16(head: bytes) -> bool:
    """Mostly ASCII written as UTF-16: a NUL in (nearly) every other byte."""
    half = len(head) // 2
    zeros = sorted((head[0::2].count(0), head[1::2].count(0)))
    return half > 0 and zeros[1] > 0.6 * half and zeros[0] < 0.1 * half


def bad_text(s: str) -> str:
    """Why this row's text cannot be used (a NUL byte, bytes that are not UTF-8), or ''."""
    m = _BAD.search(s)
    if m is None:
        return ""
    if m.group() == "\x00":
        return f"holds a NUL byte (binary data) at character {m.start() + 1}; remove it"
    return f"not UTF-8 text at character {m.start() + 1} (a cut or mis-encoded character); save the file as UTF-8"

