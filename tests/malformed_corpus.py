"""Generators for the malformed / awkward dataset files of test_malformed_files.py.

Everything is built from code in the test's tmp_path; no binary fixture is committed.
The content imitates what users really feed the app: a bike shop's support Q&A,
exported by hand, by Excel, by pandas, by a half-finished download.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import struct
import zipfile
import zlib
from pathlib import Path

QA_PAIRS = [
    ("How often should I oil my bike chain?",
     "Every 150-300 km, or after any ride in the rain. Wipe the chain clean first, put one drop on each roller, then wipe off the excess."),
    ("What tyre pressure should I use on a city bike?",
     "Most city tyres run well at 3.5 to 5 bar (50-70 psi). The allowed range is printed on the tyre sidewall; use the lower end on wet or bumpy roads."),
    ("Can I return a helmet I have already worn?",
     "Yes, within 30 days if it shows no damage and you have the receipt. For hygiene reasons we ask that the inner pads are still attached."),
    ("How long does a full service take?",
     "A full service usually takes two working days. Book online and we will text you when the bike is ready to collect."),
    ("Why do my brakes squeal when it rains?",
     "Water and grit on the rim or disc cause most squeals. Clean the braking surface with isopropyl alcohol; if it persists the pads may be glazed and need replacing."),
    ("Do you fit child seats?",
     "Yes. We fit rear seats on frames with rack mounts and front seats on most step-through bikes. Fitting is free when you buy the seat from us."),
    ("How do I know which frame size I need?",
     "Stand over the bike with both feet flat: you want 2-5 cm of clearance for a road bike and 5-10 cm for a mountain bike. Come in for a free fit session if unsure."),
    ("Is my e-bike battery covered by the warranty?",
     "Batteries are covered for two years or 500 full charge cycles, whichever comes first, as long as the battery was charged with the original charger."),
    ("Can I ride my e-bike in heavy rain?",
     "Yes, the motor and battery are splash-proof to IPX4. Avoid pressure washers and do not submerge the bike; dry the battery contacts after wet rides."),
    ("What is included in the basic tune-up?",
     "Gear and brake adjustment, tyre inflation, chain lubrication, a bolt check and a safety test ride. Parts are charged separately if anything needs replacing."),
    ("Do you offer financing?",
     "We offer 0% financing over 12 months on bikes above 500 euros, subject to a credit check. Ask at the counter or choose 'pay monthly' at checkout."),
    ("How should I store my bike over winter?",
     "Keep it dry and indoors if possible, inflate the tyres, clean and oil the chain, and charge e-bike batteries to about 60% every few weeks."),
]



def qa(n: int, start: int = 0) -> list[dict]:
    """n distinct question/answer records."""
    assert start + n <= len(QA_PAIRS), "not enough distinct Q&A pairs"
    return [{"question": q, "answer": a} for q, a in QA_PAIRS[start:start + n]]


def alpaca(n: int, start: int = 0) -> list[dict]:
    return [{"instruction": q, "input": "", "output": a} for q, a in QA_PAIRS[start:start + n]]


def jsonl(rows: list, *, newline: str = "\n", final_newline: bool = True) -> str:
    """One line per row: dicts and other values are dumped, str rows are written as they are."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    return newline.join(lines) + (newline if final_newline else "")


def csv_text(header: list[str], rows: list[list], *, delimiter: str = ",", newline: str = "\n") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def qa_csv_rows(n: int, start: int = 0) -> list[list[str]]:
    return [[r["question"], r["answer"]] for r in qa(n, start)]


def prose(paragraphs: int) -> str:
    """Plain text in many distinct short paragraphs (a shop's maintenance guide)."""
    sentences = [
        "Check the tyre pressure before every long ride.",
        "A clean chain shifts more quietly and lasts longer.",
        "Brake pads wear faster on wet, gritty roads.",
        "Tighten stem bolts in small steps, alternating sides.",
        "Store batteries in a cool, dry place away from sunlight.",
        "Inspect the cables for fraying where they enter the housing.",
        "A loose headset shows up as a knock when you brake hard.",
        "Wheels that rub the brake pads may need truing.",
    ]
    out = []
    for i in range(paragraphs):
        picked = [sentences[(i * 3 + k) % len(sentences)] for k in range(5)]
        out.append(f"Section {i + 1}. " + " ".join(picked) + f" This note was reviewed in workshop week {i + 7}.")
    return "\n\n".join(out) + "\n"


# ------------------------------------------------------------------ writers


def write_text(path: Path, text: str, *, encoding: str = "utf-8", bom: bool = False) -> None:
    data = text.encode(encoding)
    if bom:
        data = "\ufeff".encode(encoding) + data
    path.write_bytes(data)


def write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def write_gz(path: Path, text: str) -> None:
    path.write_bytes(gzip.compress(text.encode("utf-8")))


def write_parquet(path: Path, columns: dict[str, list]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)


def parquet_bytes(columns: dict[str, list]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


# ------------------------------------------------------------------ binary look-alikes


def random_bytes(n: int, seed: int = 7) -> bytes:
    data = random.Random(seed).randbytes(n)
    # Never start like a BOM or a gzip / zip header: this is meant to be plain noise.
    assert not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x1f\x8b", b"PK"))
    return data


def png_bytes(width: int = 16, height: int = 16) -> bytes:
    """A real, valid PNG (a small grey gradient)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes((x * 16 + y) % 256 for x in range(width)) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def zip_bytes(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def xlsx_bytes() -> bytes:
    """The skeleton of an Excel workbook (a zip of XML parts)."""
    return zip_bytes({
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook><sheets><sheet name="Q&amp;A" sheetId="1"/></sheets></workbook>',
        "xl/worksheets/sheet1.xml": "<worksheet><sheetData><row><c t=\"inlineStr\"><is><t>question</t></is></c></row></sheetData></worksheet>",
    })


def docx_bytes() -> bytes:
    return zip_bytes({
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types/>',
        "word/document.xml": "<w:document><w:body><w:p><w:r><w:t>Q: How often should I oil my chain?</w:t></w:r></w:p></w:body></w:document>",
    })


def pdf_bytes() -> bytes:
    return (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\nstream\n"
        + zlib.compress(b"BT /F1 12 Tf (How often should I oil my chain?) Tj ET")
        + b"\nendstream\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def exe_bytes() -> bytes:
    header = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48
    return header + b"This program cannot be run in DOS mode.\r\r\n$" + b"\x00" * 200 + random_bytes(1024, seed=3)


def corrupt_gzip_bytes() -> bytes:
    """A gzip header followed by a deflate stream of noise."""
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + random_bytes(2048, seed=11)


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def json_error_position(text: str) -> tuple[int, int]:
    """(line, column) where Python's json parser stops on `text`."""
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        return e.lineno, e.colno
    raise AssertionError("this JSON text is not broken")


# ------------------------------------------------------------------ round two (issue 22)


def deep_json(levels: int, bracket: str = "[") -> str:
    """A JSON value nested `levels` deep: [[[…]]] or {"a": {"a": …}}."""
    if bracket == "[":
        return "[" * levels + "]" * levels
    return '{"a": ' * levels + "1" + "}" * levels


def many_qa(n: int) -> list[dict]:
    """n distinct question/answer records (the Q&A pairs, numbered as support tickets)."""
    return [{"question": f"{q} (ticket {i})", "answer": a}
            for i, (q, a) in enumerate(QA_PAIRS[k % len(QA_PAIRS)] for k in range(n))]


def cut_mid_character(text: str) -> bytes:
    """`text` as UTF-8 with its last character (a multi-byte one) cut in half."""
    data = text.encode("utf-8")
    assert len(text[-1].encode("utf-8")) > 1
    return data[:-1]


# ------------------------------------------------------------------ round three (issue 22): tool calling

WEATHER_SCHEMA = {"name": "get_weather", "description": "Current weather in a city",
                  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
SHOP_CITIES = ["Leeds", "Ghent", "Utrecht", "Basel", "Turin", "Lyon", "Graz", "Aarhus", "Bergen", "Porto", "Kraków"]


def tool_rows(n: int, start: int = 0) -> list[dict]:
    """n distinct OpenAI-style rows: a question about a shop's city, answered by one get_weather call."""
    return [{"tools": [WEATHER_SCHEMA], "messages": [
        {"role": "user", "content": f"Is it cycling weather in {city} today?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{i}", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}]},
    ]} for i, city in enumerate(SHOP_CITIES[start:start + n], start)]


def with_tool_row(bad: dict, n: int = 8, at: int = 6) -> list[dict]:
    """n good tool rows with `bad` at 1-based row at+1 (the bad row is the file's line at+1)."""
    rows = tool_rows(n)
    return rows[:at] + [bad] + rows[at:]
