"""Data path of the foundation: four shapes, chat-template rendering, answer-only loss."""

import json

import pytest
from conftest import SAMPLES, trained_pieces

from engine.config import DataConfig
from engine.data import prepare
from engine.data.render import IGNORE, render
from engine.data.shapes import detect, to_conversation
from engine.errors import DataError

SHAPES = {
    "alpaca": {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    "pair": {"question": "Capital of France?", "answer": "Paris."},
    "prompt_completion": {"prompt": "Say hi", "completion": "Hi!"},
    "messages": {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
}


@pytest.mark.parametrize("name, record", SHAPES.items())
def test_each_shape_becomes_user_then_assistant(name, record):
    shape = detect([record])
    assert shape is not None
    conv = to_conversation(record, shape)
    assert [m["role"] for m in conv] == ["user", "assistant"]
    assert conv[-1]["content"] in ("5", "Paris.", "Hi!", "Hello!")
    if name == "alpaca":
        assert conv[0]["content"] == "Add the numbers.\n\n2 and 3"


@pytest.mark.parametrize(
    "file, fmt, rows",
    [("pirate_trivia.jsonl", "alpaca", 90), ("support_desk.json", "pair", 70), ("chat_messages.jsonl", "messages", 40)],
)
def test_bundled_samples_are_detected(file, fmt, rows, demo_tokenizer):
    data = prepare(DataConfig(path=str(SAMPLES / file)), demo_tokenizer)
    assert (data.shape.format, data.rows, data.kept, data.skipped) == (fmt, rows, rows, [])


def test_only_the_answer_and_its_end_token_are_trained(demo_tokenizer):
    tok = demo_tokenizer
    r = render(tok, [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}])
    trained = [t for t in r.labels if t != IGNORE]
    assert tok.decode(trained) == "Paris.<|im_end|>"
    assert trained[-1] == tok.eos_token_id  # the model learns to stop
    # Ids are exactly the template's own tokenization of the conversation.
    assert r.input_ids == tok(r.text, add_special_tokens=False)["input_ids"]
    assert r.text.startswith("<|im_start|>system\n")  # the template's default system prompt


def test_every_assistant_turn_is_trained_in_multi_turn(demo_tokenizer):
    tok = demo_tokenizer
    conv = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "Uno."},
        {"role": "user", "content": "Two?"},
        {"role": "assistant", "content": "Dos."},
    ]
    assert trained_pieces(tok, render(tok, conv)) == ["Uno.<|im_end|>", "Dos.<|im_end|>"]


def test_template_without_end_of_turn_gets_eos(demo_tokenizer):
    tok = demo_tokenizer
    saved = tok.chat_template
    tok.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
    try:
        r = render(tok, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    finally:
        tok.chat_template = saved
    trained = [t for t in r.labels if t != IGNORE]
    assert trained[-1] == tok.eos_token_id
    assert tok.decode(trained).strip().startswith("Hello")


def _write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_bad_rows_are_skipped_with_row_and_reason(tmp_path, demo_tokenizer):
    good = [{"question": f"Q{i}?", "answer": f"A{i}."} for i in range(10)]
    rows = good[:3] + ['{"question": "broken', {"question": "no answer"}, {"question": "Q?", "answer": ""}] + good[3:]
    data = prepare(DataConfig(path=str(_write_jsonl(tmp_path / "d.jsonl", rows))), demo_tokenizer)
    assert data.kept == 10
    got = {p.row: p.reason for p in data.skipped}
    assert set(got) == {4, 5, 6}
    assert "not valid JSON" in got[4] and "missing answer" in got[5] and "empty answer" in got[6]


def test_too_long_rows_are_truncated_keeping_the_answer_start_and_reported(tmp_path, demo_tokenizer):
    rows = [{"question": f"Q{i}?", "answer": "short"} for i in range(5)] + [{"question": "Q?", "answer": "word " * 200}]
    data = prepare(DataConfig(path=str(_write_jsonl(tmp_path / "d.jsonl", rows)), max_seq_len=64), demo_tokenizer)
    assert data.skipped == [] and data.kept == 6
    assert all(len(e) <= 64 for e in data.train + data.val)
    assert data.length_fit.answer_cut == 1 and any("truncated inside its answer" in n for n in data.notes)


def test_split_is_deterministic_and_disjoint(demo_tokenizer):
    cfg = DataConfig(path=str(SAMPLES / "pirate_trivia.jsonl"), val_share=0.1, seed=7)
    a, b = prepare(cfg, demo_tokenizer), prepare(cfg, demo_tokenizer)
    assert [e.row for e in a.val] == [e.row for e in b.val] and len(a.val) == 9
    assert not {e.row for e in a.val} & {e.row for e in a.train}
    c = prepare(DataConfig(path=cfg.path, val_share=0.1, seed=8), demo_tokenizer)
    assert [e.row for e in c.val] != [e.row for e in a.val]


@pytest.mark.parametrize(
    "name, content, words",
    [
        ("broken.json", '[{"question": "a", "answer": "b"},\n {"question": ', "line 2 column"),
        ("empty.jsonl", "", "empty"),
        ("data.xlsx", "x", "unsupported file type"),
        ("odd.jsonl", '{"foo": 1}\n{"bar": 2}\n', "cannot tell the dataset's format"),
    ],
)
def test_file_problems_are_one_clear_message(tmp_path, demo_tokenizer, name, content, words):
    p = tmp_path / name
    p.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=words) as e:
        prepare(DataConfig(path=str(p)), demo_tokenizer)
    assert name in str(e.value)
