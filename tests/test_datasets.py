"""Every dataset shape and file kind, detected and rendered through real chat templates."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from conftest import trained_pieces
from templates import r1_tokenizer

from engine.config import DataConfig
from engine.data import prepare
from engine.data.readers import iter_records
from engine.data.render import render
from engine.data.shapes import detect, to_conversation
from engine.errors import DataError

REPO = Path(__file__).resolve().parent.parent

MEDICAL = {
    "Question": "A 45-year-old man has crushing chest pain radiating to the left arm for 30 minutes. What is the first test to order?",
    "Complex_CoT": "Crushing chest pain radiating to the arm suggests an acute coronary syndrome. The fastest test that changes management is an ECG, which should be done within 10 minutes of arrival.",
    "Response": "Order a 12-lead ECG immediately, within 10 minutes of arrival.",
}


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def r1_tok(demo_folder):
    return r1_tokenizer(demo_folder)


# -- shapes -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "record, prompt_field, answer_field",
    [
        ({"question": "What is 2+2?", "answer": "4"}, "question", "answer"),
        ({"Question": "What is 2+2?", "Response": "4"}, "Question", "Response"),
        ({"query": "Capital of Peru?", "response": "Lima."}, "query", "response"),
        ({"prompt": "Say hello", "response": "Hello!"}, "prompt", "response"),
        ({"prompt": "Once upon a time", "completion": " there was a fox."}, "prompt", "completion"),
        ({"input": "Translate: bonjour", "output": "hello"}, "input", "output"),
        ({"q": "Is water wet?", "a": "Yes."}, "q", "a"),
    ],
)
def test_question_answer_pairs_under_their_common_names(record, prompt_field, answer_field):
    shape = detect([record])
    assert shape.format == "pair"
    assert shape.mapping == {"prompt": prompt_field, "answer": answer_field}


def test_alpaca_with_system_and_history(demo_tokenizer):
    rec = {
        "system": "You are a math tutor.",
        "instruction": "And times three?",
        "input": "",
        "output": "Twelve.",
        "history": [["What is two plus two?", "Four."]],
    }
    shape = detect([rec])
    conv = to_conversation(rec, shape)
    assert [m["role"] for m in conv] == ["system", "user", "assistant", "user", "assistant"]
    assert trained_pieces(demo_tokenizer, render(demo_tokenizer, conv)) == ["Four.<|im_end|>", "Twelve.<|im_end|>"]


def test_sharegpt_roles_and_what_is_trained(demo_tokenizer):
    rec = {
        "conversations": [
            {"from": "system", "value": "You can call tools."},
            {"from": "human", "value": "Weather in Oslo?"},
            {"from": "function_call", "value": '{"name": "weather", "arguments": {"city": "Oslo"}}'},
            {"from": "observation", "value": '{"temp_c": 3}'},
            {"from": "gpt", "value": "It is 3 °C in Oslo."},
        ]
    }
    shape = detect([rec])
    assert shape.format == "sharegpt"
    conv = to_conversation(rec, shape)
    assert [m["role"] for m in conv] == ["system", "user", "assistant", "tool", "assistant"]
    pieces = trained_pieces(demo_tokenizer, render(demo_tokenizer, conv))
    assert pieces == ['{"name": "weather", "arguments": {"city": "Oslo"}}<|im_end|>', "It is 3 °C in Oslo.<|im_end|>"]


def test_openai_messages_with_parts_reasoning_and_weights(demo_tokenizer):
    rec = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi, "}, {"type": "text", "value": "who made you?"}]},
            {"role": "assistant", "content": "An old answer.", "weight": 0},
            {"role": "user", "content": "And now?"},
            {"role": "assistant", "content": [{"type": "reasoning", "text": "The user repeats."}, {"type": "text", "text": "Still me."}]},
        ]
    }
    conv = to_conversation(rec, detect([rec]))
    assert conv[0]["content"] == "Hi, who made you?"
    assert conv[3] == {"role": "assistant", "content": "Still me.", "reasoning": "The user repeats."}
    r = render(demo_tokenizer, conv)  # demo template: not a reasoning one, thought dropped
    assert trained_pieces(demo_tokenizer, r) == ["Still me.<|im_end|>"]  # weight 0 turn is context only
    assert "An old answer." in r.text and "The user repeats." not in r.text


def test_plain_text_is_trained_on_every_token(tmp_path, demo_tokenizer):
    p = tmp_path / "notes.txt"
    p.write_text("First paragraph about tides.\nIt continues here.\n\nSecond paragraph, about the moon.\n", encoding="utf-8")
    data = prepare(DataConfig(path=str(p), val_share=0), demo_tokenizer)
    assert data.shape.format == "text" and data.kept == 2
    rows = sorted(data.train, key=lambda e: e.row)
    assert [e.row for e in rows] == [1, 4]  # the line where each block starts
    assert all(e.trained.all() for e in rows)
    assert demo_tokenizer.decode(rows[0].input_ids) == "First paragraph about tides.\nIt continues here.<|im_end|>"


def test_long_plain_text_is_split_not_dropped(tmp_path, demo_tokenizer):
    p = write_jsonl(tmp_path / "book.jsonl", [{"text": "word " * 300}, {"text": "short text"}])
    data = prepare(DataConfig(path=str(p), max_seq_len=64, val_share=0), demo_tokenizer)
    assert data.skipped == [] and data.kept >= 5
    assert all(len(e) <= 64 for e in data.train)
    assert any("split" in n for n in data.notes)


# -- reasoning ---------------------------------------------------------------------------
def test_medical_o1_renders_its_thought_inside_think_for_r1(tmp_path, r1_tok):
    p = write_jsonl(tmp_path / "medical.jsonl", [MEDICAL, {**MEDICAL, "Question": "Another case?"}])
    data = prepare(DataConfig(path=str(p), val_share=0), r1_tok)
    assert data.shape.to_dict() == {"format": "pair", "mapping": {"prompt": "Question", "answer": "Response", "reasoning": "Complex_CoT"}}
    assert data.reasoning == "think" and any("<think>" in n for n in data.notes)
    sample = data.samples[0]
    expected = (
        "<｜begin▁of▁sentence｜><｜User｜>" + MEDICAL["Question"] + "<｜Assistant｜><think>\n"
        + MEDICAL["Complex_CoT"] + "\n</think>\n\n" + MEDICAL["Response"] + "<｜end▁of▁sentence｜>"
    )
    assert sample["text"] == expected
    # The trained span is the assistant turn only: after the generation prompt, through EOS.
    (a, b), = sample["spans"]
    assert sample["text"][a:b] == MEDICAL["Complex_CoT"] + "\n</think>\n\n" + MEDICAL["Response"] + "<｜end▁of▁sentence｜>"
    ex = next(e for e in data.train if e.row == 1)
    trained = r1_tok.decode(ex.input_ids[ex.trained])
    assert trained.startswith(MEDICAL["Complex_CoT"][:40]) and trained.endswith(MEDICAL["Response"] + "<｜end▁of▁sentence｜>")
    untrained = r1_tok.decode(ex.input_ids[~ex.trained])
    assert MEDICAL["Question"] in untrained and untrained.endswith("<｜Assistant｜><think>\n")


def test_r1_generation_prompt_matches_what_was_trained(r1_tok):
    conv = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    r = render(r1_tok, conv)  # no thought in the data: an empty think block, closed
    prompt = r1_tok.apply_chat_template(conv[:1], tokenize=False, add_generation_prompt=True)
    assert r.text.startswith(prompt)
    assert r.text[len(prompt):] == "\n</think>\n\nHello.<｜end▁of▁sentence｜>"


def test_r1_multi_turn_trains_earlier_answers_and_the_last_thought(r1_tok):
    conv = [
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "Uno."},
        {"role": "user", "content": "Two?"},
        {"role": "assistant", "content": "Dos.", "reasoning": "Spanish for two."},
    ]
    pieces = trained_pieces(r1_tok, render(r1_tok, conv))
    assert pieces[0] == "Uno.<｜end▁of▁sentence｜>"
    assert pieces[1].replace(" ", "").startswith("Spanishfortwo.") and pieces[1].endswith("Dos.<｜end▁of▁sentence｜>")


def test_other_models_drop_the_thought_or_keep_it_inline(tmp_path, demo_tokenizer):
    p = write_jsonl(tmp_path / "medical.jsonl", [MEDICAL, {**MEDICAL, "Question": "Another case?"}])
    dropped = prepare(DataConfig(path=str(p), val_share=0, cache=False), demo_tokenizer)
    assert dropped.reasoning == "drop" and any("dropped" in n for n in dropped.notes)
    assert MEDICAL["Complex_CoT"] not in dropped.samples[0]["text"]
    kept = prepare(DataConfig(path=str(p), val_share=0, reasoning="keep", cache=False), demo_tokenizer)
    assert kept.reasoning == "inline"
    assert "<think>\n" + MEDICAL["Complex_CoT"] + "\n</think>\n\n" + MEDICAL["Response"] in kept.samples[0]["text"]


# -- files -------------------------------------------------------------------------------
ROWS = [{"question": f"What is {i} plus {i}?", "answer": f"{i} plus {i} is {2 * i}."} for i in range(1, 13)]


def _write(tmp_path: Path, kind: str) -> Path:
    if kind == "csv":
        p = tmp_path / "qa.csv"
        with open(p, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, ["question", "answer"])
            w.writeheader()
            w.writerows(ROWS)
    elif kind == "tsv":
        p = tmp_path / "qa.tsv"
        p.write_text("question\tanswer\n" + "".join(f"{r['question']}\t{r['answer']}\n" for r in ROWS), encoding="utf-8")
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        p = tmp_path / "qa.parquet"
        pq.write_table(pa.Table.from_pylist(ROWS), p)
    elif kind == "jsonl.gz":
        p = tmp_path / "qa.jsonl.gz"
        with gzip.open(p, "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in ROWS)
    elif kind == "utf16-crlf":
        p = tmp_path / "qa.jsonl"
        p.write_bytes("".join(json.dumps(r) + "\r\n" for r in ROWS).encode("utf-16"))
    elif kind == "json-object":
        p = tmp_path / "qa.json"
        p.write_text(json.dumps({"version": 2, "data": ROWS}, indent=2), encoding="utf-8-sig")
    return p


@pytest.mark.parametrize("kind", ["csv", "tsv", "parquet", "jsonl.gz", "utf16-crlf", "json-object"])
def test_every_file_kind_is_read(tmp_path, demo_tokenizer, kind):
    data = prepare(DataConfig(path=str(_write(tmp_path, kind)), cache=False), demo_tokenizer)
    assert (data.shape.format, data.rows, data.kept, data.skipped) == ("pair", 12, 12, [])


def test_csv_rows_are_numbered_by_their_starting_line(tmp_path):
    p = tmp_path / "multi.csv"
    p.write_text('question,answer\n"A\nmultiline question",yes\nsecond,no\n', encoding="utf-8")
    assert [row for row, _ in iter_records(p)] == [2, 4]


def test_json_array_is_streamed_not_loaded_whole(tmp_path):
    row = json.dumps({"question": "q" * 200, "answer": "a" * 800})
    peaks = []
    for n in (15000, 45000):
        p = tmp_path / f"big{n}.json"
        with open(p, "w", encoding="utf-8") as f:
            f.write("[\n" + ",\n".join([row] * n) + "\n]\n")
        tracemalloc.start()
        count = sum(1 for _ in iter_records(p))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert count == n
    # Memory is a few read blocks whatever the size: 3x the file, not 3x the memory.
    assert peaks[1] < 1.2 * peaks[0] and peaks[1] < p.stat().st_size / 3


# -- override, cache, inspect ---------------------------------------------------------------
def test_explicit_mapping_when_detection_cannot_tell(tmp_path, demo_tokenizer):
    p = write_jsonl(tmp_path / "odd.jsonl", [{"ask": f"Q{i}?", "reply": f"A{i}."} for i in range(5)])
    with pytest.raises(DataError, match="cannot tell"):
        prepare(DataConfig(path=str(p)), demo_tokenizer)
    data = prepare(DataConfig(path=str(p), format="pair", mapping={"prompt": "ask", "answer": "reply"}), demo_tokenizer)
    assert data.kept == 5
    with pytest.raises(DataError, match="'replies' is not in the file"):
        prepare(DataConfig(path=str(p), format="pair", mapping={"prompt": "ask", "answer": "replies"}), demo_tokenizer)


def test_tokenized_data_is_cached_by_content_and_settings(tmp_path, demo_tokenizer, monkeypatch):
    monkeypatch.setenv("TUNEDESK_HOME", str(tmp_path / "home"))  # an empty cache
    p = write_jsonl(tmp_path / "c.jsonl", ROWS)
    first = prepare(DataConfig(path=str(p)), demo_tokenizer)
    again = prepare(DataConfig(path=str(p)), demo_tokenizer)
    assert not first.from_cache and again.from_cache
    assert [e.input_ids.tolist() for e in first.train] == [e.input_ids.tolist() for e in again.train]
    assert not prepare(DataConfig(path=str(p), reasoning="drop"), demo_tokenizer).from_cache
    # The length is fitted after reading, from the cache: whole rows are stored once.
    assert prepare(DataConfig(path=str(p), max_seq_len=512), demo_tokenizer).from_cache
    write_jsonl(p, ROWS[::-1])  # same rows, different file content
    assert not prepare(DataConfig(path=str(p)), demo_tokenizer).from_cache


def test_inspect_json_is_the_documented_object(tmp_path, demo_folder):
    rows = ROWS + [{"question": "dup"}, ROWS[0]]
    p = write_jsonl(tmp_path / "i.jsonl", rows)
    r = subprocess.run([sys.executable, "-m", "engine.cli", "inspect", str(p), "--json"], capture_output=True,
                       text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("format", "rows", "kept", "skipped", "mapping", "lengths", "examples", "notes", "tokens_per_epoch"):
        assert key in out
    assert (out["format"], out["rows"], out["kept"]) == ("pair", 14, 12)
    assert out["skipped"] == [
        {"row": 13, "reason": "missing answer field 'answer'"},
        {"row": 14, "reason": "exact duplicate of row 1"},
    ]
    assert set(out["lengths"]) >= {"min", "p50", "p95", "max", "histogram"}
    assert out["examples"][0]["marked"].count("[[") == 1
    human = subprocess.run([sys.executable, "-m", "engine.cli", "inspect", str(p)], capture_output=True, text=True,
                           timeout=300, cwd=REPO)
    assert "exact duplicate of row 1" in human.stdout and "p95" in human.stdout
