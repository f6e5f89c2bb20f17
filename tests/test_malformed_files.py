"""Malformed and awkward dataset files: each is either read (bad rows skipped and reported
with their row and reason) or refused with one DataError naming the file and the reason.

Every file is generated in tmp_path (see malformed_corpus.py). One table, CASES, holds
each file and its expected outcome; the same table drives the `inspect` CLI checks.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from conftest import REPO
from malformed_corpus import (
    alpaca,
    corrupt_gzip_bytes,
    csv_text,
    cut_mid_character,
    deep_json,
    docx_bytes,
    exe_bytes,
    json_error_position,
    jsonl,
    many_qa,
    parquet_bytes,
    pdf_bytes,
    png_bytes,
    prose,
    qa,
    qa_csv_rows,
    random_bytes,
    tool_rows,
    truncated,
    with_tool_row,
    write_bytes,
    write_gz,
    write_parquet,
    write_text,
    xlsx_bytes,
    zip_bytes,
)

from engine.config import DataConfig
from engine.data import prepare
from engine.errors import DataError

TIME_LIMIT_S = 20  # a hang guard, not a benchmark
HARD_STOP_S = 120  # SIGALRM, in case the engine never returns at all
MB50 = 50 * 1024 * 1024
TRACEBACK = re.compile(r'Traceback \(most recent call last\)|File "[^"]*", line \d+')

INTL = {"question": "Vendez-vous des vélos électriques ?", "answer": "Oui, à partir de 1 299 €, livraison comprise."}
LATIN1 = {"question": "Où se trouve le magasin ?", "answer": "Rue de la Gare 12, à côté de la boulangerie."}


@dataclass(frozen=True)
class Case:
    id: str
    name: str
    """File (or folder) name inside tmp_path."""
    make: Callable[[Path], None]
    """Writes the file at the path it gets (or a folder, or nothing at all)."""
    error: tuple[str, ...] = ()
    """Keywords the DataError message must hold (case-insensitive); empty: prepare must succeed."""
    kept: int | None = None
    """Exact number of rows kept; None: at least 2 (plain text, whose row split is the engine's)."""
    skipped: dict[int, str] = field(default_factory=dict)
    """Row -> keyword of its reason; exactly these rows are skipped."""


def fails(id, name, make, *words) -> Case:
    return Case(id, name, make, error=tuple(words))


def works(id, name, make, kept, skipped=None) -> Case:
    return Case(id, name, make, kept=kept, skipped=skipped or {})


def text(content: str, **kw) -> Callable[[Path], None]:
    return lambda p: write_text(p, content, **kw)


def raw(data: bytes) -> Callable[[Path], None]:
    return lambda p: write_bytes(p, data)


def broken_json(id, name, content) -> Case:
    line, col = json_error_position(content)
    return fails(id, name, text(content), f"broken json at line {line} column {col}")


def no_separator(content: str, sep: str, n: int) -> str:
    """`content` with the n-th (1-based) occurrence of `sep` replaced by `sep` minus its comma."""
    parts = content.split(sep)
    assert len(parts) > n
    return sep.join(parts[:n]) + sep.replace(",", "") + sep.join(parts[n:])


def multiline_csv() -> str:
    """Header on line 1; quoted answers spanning lines; an empty answer on line 8."""
    q = qa(8)
    rows = [
        [q[0]["question"], "Every 150-300 km.\nWipe the chain first.\nThen one drop per roller."],  # lines 2-4
        [q[1]["question"], q[1]["answer"]],                                                        # line 5
        [q[2]["question"], "Yes, within 30 days.\nKeep the receipt."],                             # lines 6-7
        ["Do you sell gift cards?", ""],                                                           # line 8
        *[[r["question"], r["answer"]] for r in q[3:]],                                            # lines 9-13
    ]
    return csv_text(["question", "answer"], rows)


def unclosed_quote_csv() -> str:
    """Line 6 opens a quote that is never closed (no other quote in the file)."""
    rows = [[r["question"], r["answer"].replace(",", ";")] for r in qa(8)]
    good = csv_text(["question", "answer"], rows).splitlines()
    assert '"' not in "".join(good)
    return "\n".join(good[:5] + ['"Do you sell gift cards?,Yes in any amount from 10 euros'] + good[5:]) + "\n"


def gz_text_bytes(content: str) -> bytes:
    return gzip.compress(content.encode("utf-8"))


def make_folder(p: Path) -> None:
    p.mkdir()
    (p / "train.jsonl").write_text(jsonl(qa(8)), encoding="utf-8")


def huge_answer(p: Path) -> None:
    blob = ("Spare part 4471-B, chainring bolt set, steel, silver, fits 104/64 BCD. " * (MB50 // 70 + 1))[:MB50]
    write_text(p, jsonl(qa(2) + [{"question": "Can you list the whole parts catalogue?", "answer": blob}] + qa(6, 2)))


def huge_garbage(p: Path) -> None:
    chunk = base64.b64encode(random_bytes(3 * 1024 * 1024 // 4 * 4, seed=5)).decode("ascii")
    blob = (chunk * (MB50 // len(chunk) + 1))[:MB50]
    write_text(p, jsonl(qa(2) + [blob] + qa(6, 2)))


LONG_WARRANTY = "The frame and fork are covered against manufacturing defects for the life of the original owner. " * 250
QA_JSON = json.dumps(qa(12), indent=2)

CASES: list[Case] = [
    # --- where the file is not a file we can read
    fails("missing_file", "does_not_exist.jsonl", lambda p: None, "no such file"),
    fails("folder", "training_data", make_folder, "is a folder"),
    fails("folder_named_jsonl", "chats.jsonl", make_folder, "is a folder"),
    fails("xlsx", "support_faq.xlsx", raw(xlsx_bytes()), "unsupported file type"),
    fails("docx", "support_faq.docx", raw(docx_bytes()), "unsupported file type"),
    fails("pdf", "bike_manual.pdf", raw(pdf_bytes()), "unsupported file type"),
    fails("no_extension", "dataset", text(jsonl(qa(8))), "unsupported file type"),
    # --- empty
    fails("empty_jsonl", "train.jsonl", text(""), "empty"),
    fails("whitespace_jsonl", "train.jsonl", text("  \n\n\t\n   \n"), "empty"),
    fails("newlines_json", "faq.json", text("\n\n\n\r\n"), "empty"),
    fails("empty_csv", "faq.csv", text(""), "empty"),
    fails("blank_txt", "notes.txt", text("\n   \n\n"), "empty"),
    # --- binary or not UTF-8
    fails("png_named_jsonl", "support.jsonl", raw(png_bytes()), "not a text file"),
    fails("random_bytes_jsonl", "export.jsonl", raw(random_bytes(8192)), "not a text file"),
    fails("zip_named_jsonl", "support.jsonl", raw(zip_bytes({"support.jsonl": jsonl(qa(12))})), "not a text file"),
    fails("random_bytes_csv", "faq.csv", raw(random_bytes(4096, seed=9)), "not a text file"),
    fails("exe_named_txt", "notes.txt", raw(exe_bytes()), "not a text file"),
    fails("latin1_jsonl", "support.jsonl", text(jsonl(qa(7) + [LATIN1]), encoding="latin-1"), "not utf-8"),
    fails("cp1252_csv", "faq.csv", text(csv_text(["question", "answer"], qa_csv_rows(7) + [
        [INTL["question"], "Oui, dès 1 299 € — demandez le “pack ville”."]]), encoding="cp1252"), "not utf-8"),
    fails("latin1_txt", "notes.txt", text("Vérifiez la pression des pneus avant chaque sortie.\n" * 40, encoding="latin-1"), "not utf-8"),
    # --- broken JSON documents: the real line and column
    broken_json("json_truncated_download", "faq.json", QA_JSON[: int(len(QA_JSON) * 0.6)]),
    broken_json("json_missing_comma", "faq.json", no_separator(QA_JSON, "},\n  {", 4)),
    broken_json("json_trailing_comma", "faq.json", QA_JSON[:-2] + ",\n]"),
    broken_json("json_python_repr", "faq.json", repr(qa(8))),
    broken_json("json_unescaped_quote", "faq.json", QA_JSON.replace("'pay monthly'", '"pay monthly"')),
    # --- CSV, gzip and Parquet that cannot be decoded
    fails("csv_unclosed_quote", "faq.csv", text(unclosed_quote_csv()), "csv", "line"),
    fails("gz_corrupt", "support.jsonl.gz", raw(corrupt_gzip_bytes()), "gzip"),
    fails("gz_truncated", "support.jsonl.gz", raw(truncated(gz_text_bytes(jsonl(qa(12))))), "gzip"),
    fails("parquet_garbage", "faq.parquet", raw(random_bytes(4096, seed=13)), "parquet"),
    fails("parquet_truncated", "faq.parquet", raw(truncated(parquet_bytes({
        "question": [r["question"] for r in qa(12)], "answer": [r["answer"] for r in qa(12)]}))), "parquet"),
    # --- fields nobody can map
    fails("unmappable_jsonl", "tickets.jsonl", text(jsonl([
        {"ticket_id": 1040 + i, "status": "closed", "agent": name} for i, name in enumerate("Mia Leo Ana Tom Eva Sam".split())
    ])), "cannot tell the dataset's format"),
    fails("unmappable_csv", "catalogue.csv", text(csv_text(["sku", "colour", "price_eur"], [
        ["CH-104", "silver", "24.90"], ["TY-700", "black", "31.50"], ["HL-220", "red", "59.00"],
        ["BR-510", "grey", "18.00"], ["SD-330", "brown", "42.00"], ["PD-015", "black", "27.90"],
    ])), "cannot tell the dataset's format"),
    # --- too few usable rows
    fails("too_many_bad_rows", "support.jsonl", text(jsonl(
        qa(2) + [repr(r) for r in qa(6, 2)] + qa(2, 8)   # Python dicts pasted as lines: 6 of 10 bad
    )), "usable row", "not valid json"),
    fails("one_usable_row", "support.jsonl", text(jsonl(qa(1) + [{"question": "Do you sell gift cards?"}])),
          "usable row", "missing"),
    fails("all_answers_lists", "quiz.jsonl", text(jsonl([
        {"question": r["question"], "answer": [r["answer"], "I don't know"]} for r in qa(8)
    ])), "usable row", "should be text"),
    # --- JSONL rows that are skipped, with the line they are on
    works("jsonl_truncated_line", "support.jsonl", text(jsonl(
        qa(3) + ['{"question": "Do you sell second-hand bikes?", "answ'] + qa(5, 3)
    )), 8, {4: "not valid json"}),
    works("jsonl_comment_and_trailing_comma", "support.jsonl", text(jsonl(
        ["# exported from helpdesk 2024-05-02"] + qa(4) + [json.dumps(qa(1, 4)[0]) + ","] + qa(4, 5)
    )), 8, {1: "not valid json", 6: "not valid json"}),
    works("jsonl_last_line_cut", "support.jsonl", text(jsonl(
        qa(8) + ['{"question": "How should I store my bike over winter?", "answer": "Keep it dry and indoors if pos'],
        final_newline=False,
    )), 8, {9: "not valid json"}),
    works("jsonl_not_objects", "support.jsonl", text(jsonl(
        qa(4) + ["42"] + qa(2, 4) + ['["Do you fit child seats?", "Yes."]'] + qa(2, 6) + ['"Thanks for reading!"']
    )), 8, {5: "expected an object", 8: "expected an object", 11: "expected an object"}),
    works("jsonl_missing_answer", "support.jsonl", text(jsonl(
        qa(3) + [{"question": "Do you sell gift cards?"}] + qa(3, 3)
        + [{"question": "Can I rent a cargo bike?", "answr": "Yes, from 35 euros a day."}] + qa(2, 6)
    )), 8, {4: "missing", 8: "missing"}),
    works("jsonl_empty_answers", "support.jsonl", text(jsonl(
        qa(4) + [{"question": "Do you sell gift cards?", "answer": ""}] + qa(3, 4)
        + [{"question": "Can I rent a cargo bike?", "answer": "   \n  "}] + qa(1, 7)
    )), 8, {5: "empty", 9: "empty"}),
    works("jsonl_wrong_types", "support.jsonl", text(jsonl(
        qa(3) + [{"question": "Which sizes do you stock?", "answer": ["S", "M", "L"]}] + qa(3, 3)
        + [{"question": "What are your opening hours?", "answer": {"mon-fri": "9-18", "sat": "10-16"}}] + qa(2, 6)
        + [{"question": "Is the shop open on Sundays?", "answer": False}]
    )), 8, {4: "should be text", 8: "should be text", 11: "should be text"}),
    works("jsonl_number_answers", "support.jsonl", text(jsonl(
        qa(8) + [{"question": "How many gears does the City 7 have?", "answer": 7},
                 {"question": "What does a basic service cost in euros?", "answer": 49.5}]
    )), 10),
    works("jsonl_duplicates", "support.jsonl", text(jsonl(
        qa(5) + qa(1, 1) + qa(2, 5) + qa(1, 1) + qa(1, 3)
    )), 7, {6: "duplicate of row 2", 9: "duplicate of row 2", 10: "duplicate of row 4"}),
    works("jsonl_too_long", "support.jsonl", text(jsonl(
        qa(4) + [{"question": "Can you paste the full warranty terms?", "answer": LONG_WARRANTY}] + qa(4, 4)
    )), 9),  # the long answer is truncated to the length (and said so), not dropped
    works("jsonl_blank_lines_between", "support.jsonl", text(jsonl(
        qa(2) + ["", ""] + qa(2, 2) + ["  "] + ['{"question": "Do you sell gift cards?" "answer": "Yes."}'] + qa(4, 4)
    )), 8, {8: "not valid json"}),
    works("jsonl_crlf_bad_line", "support.jsonl", text(jsonl(
        qa(5) + ['{"question": "Do you sell gift cards?", "answer": "Yes, in any amount"'] + qa(3, 5), newline="\r\n"
    )), 8, {6: "not valid json"}),
    works("jsonl_mixed_schemas", "support.jsonl", text(jsonl(
        qa(3) + alpaca(1, 8) + qa(5, 3) + alpaca(1, 9)
    )), 8, {4: "missing", 10: "missing"}),
    works("jsonl_exactly_half_bad", "support.jsonl", text(jsonl(
        [row for r in qa(6) for row in (r, {"question": r["question"] + " (follow-up)", "answer": ""})]
    )), 6, {2: "empty", 4: "empty", 6: "empty", 8: "empty", 10: "empty", 12: "empty"}),
    # --- tolerated encodings, line endings and containers
    works("jsonl_utf8_bom", "support.jsonl", text(jsonl(qa(7) + [INTL]), bom=True), 8),
    works("jsonl_utf16le_bom", "support.jsonl", text(jsonl(qa(7) + [INTL]), encoding="utf-16-le", bom=True), 8),
    works("jsonl_utf16be_bom", "support.jsonl", text(jsonl(qa(7) + [INTL]), encoding="utf-16-be", bom=True), 8),
    works("json_utf16le_bom", "faq.json", text(json.dumps(qa(7) + [INTL], indent=2, ensure_ascii=False),
                                              encoding="utf-16-le", bom=True), 8),
    works("jsonl_crlf", "support.jsonl", text(jsonl(qa(8), newline="\r\n") + "\r\n\r\n"), 8),
    works("jsonl_trailing_blank_lines", "support.jsonl", text(jsonl(qa(8)) + "\n\n   \n\n"), 8),
    works("json_array_named_jsonl", "support.jsonl", text(json.dumps(qa(8), indent=2)), 8),
    works("jsonl_named_json", "faq.json", text(jsonl(qa(8))), 8),
    works("json_data_wrapper", "faq.json", text(json.dumps({"version": 2, "data": qa(8), "exported": "2024-05-02"}, indent=2)), 8),
    works("json_array_bad_elements", "faq.json", text(json.dumps(
        qa(2) + [{"question": "Do you sell gift cards?"}] + qa(4, 2) + [42] + qa(2, 6), indent=2
    )), 8, {3: "missing", 8: "expected an object"}),
    works("json_wrapper_bad_element", "faq.json", text(json.dumps({"data": (
        qa(5) + [{"question": "Do you sell gift cards?", "answer": ""}] + qa(3, 5)
    )}, indent=2)), 8, {6: "empty"}),
    works("jsonl_gz", "support.jsonl.gz", lambda p: write_gz(p, jsonl(qa(8))), 8),
    works("jsonl_gz_bad_line", "support.jsonl.gz", lambda p: write_gz(p, jsonl(
        qa(2) + ['{"question": "Do you sell gift cards?", answer: "Yes"}'] + qa(6, 2)
    )), 8, {3: "not valid json"}),
    works("csv_gz", "faq.csv.gz", lambda p: write_gz(p, csv_text(["question", "answer"], qa_csv_rows(8))), 8),
    works("tsv", "faq.tsv", text(csv_text(["question", "answer"], qa_csv_rows(7) + [
        ["What does the sign \"no entry\" mean for bikes?", "It applies to bikes too unless a sign says otherwise."]
    ], delimiter="\t")), 8),
    works("csv_multiline_quoted", "faq.csv", text(multiline_csv()), 8, {8: "empty"}),
    works("csv_excel_bom_crlf", "faq.csv", text(csv_text(["Question", "Answer"], qa_csv_rows(8), newline="\r\n"), bom=True), 8),
    works("parquet", "faq.parquet", lambda p: write_parquet(p, {
        "question": [r["question"] for r in qa(8)], "answer": [r["answer"] for r in qa(8)]}), 8),
    works("parquet_null_answer", "faq.parquet", lambda p: write_parquet(p, {
        "question": [r["question"] for r in qa(9)],
        "answer": [None if i == 2 else r["answer"] for i, r in enumerate(qa(9))]}), 8, {3: "missing"}),
    works("txt_plain", "maintenance_guide.txt", text(prose(60)), None),
    # --- one 50 MB line
    works("huge_answer_line", "support.jsonl", huge_answer, 8, {3: "too long"}),
    works("huge_garbage_line", "support.jsonl", huge_garbage, 8, {3: "not valid json"}),
    # --- round two (issue 22): nesting deeper than Python's parser goes
    fails("json_deep_array", "faq.json", text(deep_json(5000)), "nested too deeply", "line 1"),
    fails("json_very_deep_array", "faq.json", text(deep_json(200_000)), "nested too deeply", "line 1"),
    fails("json_deep_wrapper", "faq.json", text('{"data": ' + deep_json(3000, "{") + "}"), "nested too deeply"),
    fails("json_deep_element", "faq.json", text(
        json.dumps(qa(3), indent=2)[:-2] + ",\n  " + deep_json(3000) + "\n]"), "nested too deeply", "line 14"),
    works("jsonl_deep_line", "support.jsonl", text(jsonl(qa(3) + [deep_json(5000)] + qa(5, 3))), 8, {4: "nested too deeply"}),
    works("jsonl_deep_object_line", "support.jsonl", text(jsonl(
        qa(3) + ['{"question": "Why?", "answer": ' + deep_json(100_000, "{") + "}"] + qa(5, 3))), 8, {4: "nested too deeply"}),
    works("jsonl_deep_first_line", "support.jsonl", text(jsonl([deep_json(3000, "{")] + qa(8))), 8, {1: "nested too deeply"}),
    # --- a NUL byte or a bad byte costs only its row
    works("jsonl_nul_line", "support.jsonl", text(jsonl(
        qa(3) + ['{"question": "Do you sell gift cards?", "answer": "Yes\x00"}'] + qa(5, 3))), 8, {4: "NUL byte"}),
    works("jsonl_nul_between_fields", "support.jsonl", text(jsonl(
        qa(6) + ['{"question": "Gift cards?",\x00 "answer": "Yes."}'] + qa(2, 6))), 8, {7: "NUL byte"}),
    works("csv_nul_field", "faq.csv", text(csv_text(["question", "answer"], qa_csv_rows(3) + [
        ["Do you sell gift cards?", "Yes\x00\x00"]] + qa_csv_rows(5, 3))), 8, {5: "NUL byte"}),
    works("txt_nul_paragraph", "maintenance_guide.txt", text(prose(30).replace("Section 5.", "Section\x005.")), None,
          {9: "NUL byte"}),
    works("jsonl_cut_mid_character", "support.jsonl", raw(cut_mid_character(
        jsonl(qa(7)) + '{"question": "Vendez-vous des vélos ?", "answer": "Oui, dès 1 299 €')),
          7, {8: "not utf-8"}),
    works("jsonl_latin1_line_late", "support.jsonl", lambda p: write_bytes(p, jsonl(many_qa(400)).encode("utf-8")
          + jsonl([LATIN1]).encode("latin-1")), 400, {401: "not utf-8"}),
    fails("jsonl_utf16_no_bom", "support.jsonl", text(jsonl(qa(8)), encoding="utf-16-le"), "utf-16", "byte-order mark"),
    fails("csv_utf16be_no_bom", "faq.csv", text(csv_text(["question", "answer"], qa_csv_rows(8)), encoding="utf-16-be"),
          "utf-16", "byte-order mark"),
    # --- byte-order marks: any number, any UTF
    works("jsonl_double_bom", "support.jsonl", raw(b"\xef\xbb\xbf" * 2 + jsonl(qa(7) + [INTL]).encode("utf-8")), 8),
    works("csv_triple_bom", "faq.csv", raw(b"\xef\xbb\xbf" * 3 + csv_text(["question", "answer"], qa_csv_rows(8)).encode()), 8),
    works("jsonl_utf16_double_bom", "support.jsonl", raw(("\ufeff\ufeff" + jsonl(qa(8))).encode("utf-16-le")), 8),
    works("jsonl_utf32_bom", "support.jsonl", text(jsonl(qa(7) + [INTL]), encoding="utf-32-le", bom=True), 8),
    works("jsonl_concatenated_with_boms", "support.jsonl", raw(
        b"\xef\xbb\xbf" + jsonl(qa(4)).encode() + b"\xef\xbb\xbf" + jsonl(qa(4, 4)).encode()), 8),
    # --- delimiters and field counts
    fails("tsv_ragged", "faq.tsv", text("question\tanswer\n" + "".join(
        f"{q}\t{a}\tshop\n" for q, a in qa_csv_rows(8))), "field counts differ", "row 2"),
    works("tsv_some_ragged", "faq.tsv", text(csv_text(["question", "answer"], qa_csv_rows(3) + [
        ["Gift cards?", "Yes", "from 10 euros"]] + qa_csv_rows(5, 3) + [["Cargo bikes?"]], delimiter="\t")), 8,
          {5: "field counts differ", 11: "field counts differ"}),
    works("csv_ragged", "faq.csv", text(csv_text(["question", "answer"], qa_csv_rows(6) + [
        ["Gift cards?", "Yes", "10", "euros"]] + qa_csv_rows(2, 6))), 8, {8: "field counts differ"}),
    works("csv_semicolons", "faq.csv", text(csv_text(["question", "answer"], qa_csv_rows(8), delimiter=";")), 8),
    works("csv_tabs_named_csv", "faq.csv", text(csv_text(["question", "answer"], qa_csv_rows(8), delimiter="\t")), 8),
    # --- truncated files and giant fields
    works("jsonl_cut_in_escape", "support.jsonl", text(jsonl(qa(8)) + '{"question": "Caf\\u00'), 8,
          {9: "not valid json"}),
    fails("json_gz_truncated", "faq.json.gz", raw(truncated(gz_text_bytes(QA_JSON), 0.7)), "gzip"),
    works("csv_huge_field", "faq.csv", lambda p: write_text(p, csv_text(["question", "answer"], qa_csv_rows(2) + [
        ["Can you list the whole parts catalogue?", "Chainring bolt set, steel. " * 200_000]] + qa_csv_rows(6, 2))),
          8, {4: "too long"}),
    fails("one_row_only", "support.jsonl", text(jsonl(qa(1))), "usable row", "at least 2"),
    # --- round three (issue 22): archives and containers, more encodings and separators
    fails("zip_archive", "support.jsonl.zip", raw(zip_bytes({"support.jsonl": jsonl(qa(8))})), "compressed archive", "unpack"),
    fails("bz2_archive", "support.jsonl.bz2", raw(bz2.compress(jsonl(qa(8)).encode())), "compressed archive", "unpack"),
    fails("gz_named_plain", "support.jsonl.gz", text(jsonl(qa(8))), "not a valid gzip file"),
    fails("gz_of_nothing", "support.jsonl.gz", raw(gzip.compress(b"")), "empty"),
    fails("shift_jis_jsonl", "support.jsonl", lambda p: write_bytes(p, jsonl(qa(7) + [
        {"question": "電動自転車はありますか？", "answer": "はい、店内にございます。"}], ).encode("shift_jis")), "not utf-8"),
    works("csv_vertical_bars", "faq.csv", text(csv_text(["question", "answer"], qa_csv_rows(8), delimiter="|")), 8),
    fails("json_empty_array", "faq.json", text("[]\n"), "no records"),
    fails("json_wrapper_empty_list", "faq.json", text('{"data": []}'), "no records"),
    fails("json_array_of_pairs", "faq.json", text(json.dumps([[r["question"], r["answer"]] for r in qa(8)])),
          "expected an object"),
    # --- tool calling: a bad schema or call costs its row, said plainly
    works("tools_fine", "weather.jsonl", text(jsonl(tool_rows(8))), 8),
    works("tools_broken_json", "weather.jsonl", text(jsonl(with_tool_row(
        {**tool_rows(1, 9)[0], "tools": '[{"name": "get_weather", "parameters": '}))), 8, {7: "not valid json"}),
    works("tools_not_a_list", "weather.jsonl", text(jsonl(with_tool_row({**tool_rows(1, 9)[0], "tools": 42}))), 8,
          {7: "list of function schemas"}),
    works("tools_schema_without_name", "weather.jsonl", text(jsonl(with_tool_row(
        {**tool_rows(1, 9)[0], "tools": [{"description": "weather"}]}))), 8, {7: "schema 1"}),
    works("tools_nested_too_deeply", "weather.jsonl", text(jsonl(with_tool_row(
        {**tool_rows(1, 9)[0], "tools": deep_json(5000)}))), 8, {7: "nested too deeply"}),
    works("tools_giant_schema", "weather.jsonl", text(jsonl(with_tool_row(
        {**tool_rows(1, 9)[0], "tools": [{"name": "catalogue", "description": "Every part. " * 400_000}]}))), 8,
          {7: "too long"}),
    works("tool_call_without_name", "weather.jsonl", text(jsonl(with_tool_row({"messages": [
        {"role": "user", "content": "Weather?"}, {"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]}))),
          8, {7: "function call"}),
    works("tool_call_not_json", "weather.jsonl", text(jsonl(with_tool_row({"messages": [
        {"role": "user", "content": "Weather?"}, {"role": "assistant", "content": None, "tool_calls": "get_weather(Leeds)"}]}))),
          8, {7: "not valid json"}),
    works("tool_result_only", "weather.jsonl", text(jsonl(with_tool_row({"messages": [
        {"role": "user", "content": "Weather?"}, {"role": "tool", "content": "sunny"}]}))), 8, {7: "no assistant message"}),
    works("sharegpt_row_in_messages_file", "weather.jsonl", text(jsonl(with_tool_row({"conversations": [
        {"from": "human", "value": "Weather?"}, {"from": "function_call", "value": '{"name": "get_weather"'}]}))), 8,
          {7: "missing messages field"}),
    works("sharegpt_call_not_json", "weather.jsonl", text(jsonl([{"conversations": [
        {"from": "human", "value": f"Weather in {c}?"}, {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": c}})}
    ], "tools": json.dumps([{"name": "get_weather"}])} for c in ["Leeds", "Ghent", "Basel", "Turin", "Lyon", "Graz"]] + [{"conversations": [
        {"from": "human", "value": "Weather in Porto?"}, {"from": "function_call", "value": "get_weather(city=Porto)"}]}])), 6,
          {7: "not valid json"}),
]

CASES_BY_ID = {c.id: c for c in CASES}
assert len(CASES_BY_ID) == len(CASES), "case ids must be unique"


# ------------------------------------------------------------------ checks


def assert_no_traceback(message: str) -> None:
    assert not TRACEBACK.search(message), f"looks like a traceback: {message[:500]!r}"


def assert_words(message: str, words: tuple[str, ...]) -> None:
    for w in words:
        assert w.lower() in message.lower(), f"{w!r} not in {message[:500]!r}"


def assert_skipped(got: dict[int, str], expected: dict[int, str]) -> None:
    assert set(got) == set(expected), f"skipped rows {sorted(got)} != {sorted(expected)}: {got}"
    for row, word in expected.items():
        assert_no_traceback(got[row])
        assert word.lower() in got[row].lower(), f"row {row}: {word!r} not in {got[row]!r}"


@pytest.fixture
def hard_stop():
    """Fails a test that never returns (SIGALRM), where time.monotonic alone cannot."""
    def on_alarm(signum, frame):
        raise TimeoutError(f"no answer after {HARD_STOP_S} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(HARD_STOP_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_there_are_enough_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_prepare(case: Case, tmp_path, demo_tokenizer, hard_stop):
    path = tmp_path / case.name
    case.make(path)

    start = time.monotonic()
    try:
        # 2,048 tokens: the length a plan for a small card sets; the too-long case is measured against it.
        data = prepare(DataConfig(path=str(path), max_seq_len=2048), demo_tokenizer)
    except DataError as e:
        elapsed = time.monotonic() - start
        message = str(e)
        assert_no_traceback(message)
        assert case.error, f"unexpected DataError: {message[:500]}"
        assert case.name in message, f"the file name is not in {message[:500]!r}"
        assert_words(message, case.error)
        assert elapsed < TIME_LIMIT_S, f"took {elapsed:.1f} s"
        return
    elapsed = time.monotonic() - start
    assert elapsed < TIME_LIMIT_S, f"took {elapsed:.1f} s"

    got = {p.row: p.reason for p in data.skipped}
    assert not case.error, f"expected a DataError with {case.error}; kept {data.kept}, skipped {got}"
    assert len(got) == len(data.skipped), f"a row is reported twice: {[(p.row, p.reason) for p in data.skipped]}"
    assert_skipped(got, case.skipped)
    if case.kept is None:
        assert data.kept >= 2
    else:
        assert data.kept == case.kept
    assert data.rows == data.kept + len(data.skipped)


# ------------------------------------------------------------------ the same files through `inspect`

CLI_CASES = [
    "missing_file", "folder", "png_named_jsonl", "xlsx", "json_truncated_download", "too_many_bad_rows",
    "jsonl_truncated_line", "csv_multiline_quoted", "parquet", "txt_plain",
    "json_deep_array", "json_deep_element", "jsonl_nul_line", "tsv_ragged", "jsonl_double_bom",
    "zip_archive", "tools_broken_json",
]


def inspect(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "inspect", str(path), "--json"],
        capture_output=True, text=True, timeout=60, cwd=str(REPO),
    )


@pytest.mark.parametrize("case_id", CLI_CASES)
def test_inspect_cli(case_id, tmp_path):
    case = CASES_BY_ID[case_id]
    path = tmp_path / case.name
    case.make(path)
    r = inspect(path)
    assert_no_traceback(r.stdout + r.stderr)

    if case.error:
        assert r.returncode == 2, f"exit {r.returncode}; stderr: {r.stderr[-1000:]}"
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got: {r.stderr[-1000:]!r}"
        assert lines[0].startswith("tunedesk inspect: error:")
        assert case.name in lines[0]
        assert_words(lines[0], case.error)
        return

    assert r.returncode == 0, f"exit {r.returncode}; stderr: {r.stderr[-1000:]}"
    report = json.loads(r.stdout)
    assert {"format", "rows", "kept", "skipped", "mapping", "lengths"} <= set(report)
    assert all(set(s) >= {"row", "reason"} for s in report["skipped"])
    assert_skipped({s["row"]: s["reason"] for s in report["skipped"]}, case.skipped)
    if case.kept is not None:
        assert report["kept"] == case.kept
    assert report["rows"] == report["kept"] + len(report["skipped"])
    if case_id == "txt_plain":
        assert report["format"] == "text"
