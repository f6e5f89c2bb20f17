"""Tool calling as a first-class shape (issue 22, part 1): schemas kept, calls rendered in
the template's own tool format (or the documented system-prompt form), parallel calls
kept apart, duplicates judged on the whole row, inspect showing it all."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import trained_pieces

from engine.config import DataConfig
from engine.data import prepare
from engine.data.formats.base import RowError
from engine.data.render import render
from engine.data.report import describe, format_text
from engine.data.shapes import detect, to_conversation
from engine.data.tool_form import TOOLS_INTRO, native

# A minimal Qwen2.5-style template: tools listed in the system turn, each call in its own
# <tool_call> block, tool results in a user turn.
QWEN_STYLE = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content }}{%- else %}{{- 'You are a helpful assistant.' }}{%- endif %}"
    "{{- '\\n\\n# Tools\\n<tools>' }}{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
    "{{- '\\n</tools><|im_end|>\\n' }}"
    "{%- elif messages[0].role == 'system' %}{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'user' or (message.role == 'system' and not loop.first) or (message.role == 'assistant' and not message.tool_calls) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- elif message.role == 'assistant' %}{{- '<|im_start|>assistant' }}"
    "{%- if message.content %}{{- '\\n' + message.content }}{%- endif %}"
    "{%- for tool_call in message.tool_calls %}{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}"
    "{{- '\\n<tool_call>\\n{\"name\": \"' + tool_call.name + '\", \"arguments\": ' }}{{- tool_call.arguments | tojson }}{{- '}\\n</tool_call>' }}"
    "{%- endfor %}{{- '<|im_end|>\\n' }}"
    "{%- elif message.role == 'tool' %}"
    "{%- if loop.index0 == 0 or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

AREA = {"name": "area", "description": "Area of a circle", "parameters": {"type": "object", "properties": {"r": {"type": "number"}}}}
CLOCK = {"name": "now", "description": "The time", "parameters": {"type": "object", "properties": {}}}
SCHEMAS = [{"type": "function", "function": AREA}, {"type": "function", "function": CLOCK}]
CALL_1 = {"name": "area", "arguments": {"r": 1.5}}
CALL_2 = {"name": "area", "arguments": {"r": 3}}


def openai_row(tools=(AREA, CLOCK)) -> dict:
    return {
        "tools": list(tools),
        "messages": [
            {"role": "user", "content": "Areas for r=1.5 and r=3?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "area", "arguments": '{"r": 1.5}'}},
                {"id": "c2", "type": "function", "function": {"name": "area", "arguments": {"r": 3}}},
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "7.07"},
            {"role": "tool", "tool_call_id": "c2", "content": "28.27"},
            {"role": "assistant", "content": "7.07 and 28.27."},
        ],
    }


def sharegpt_row(tools) -> dict:
    return {
        "conversations": [
            {"from": "human", "value": "Area for r=1.5, and the time?"},
            {"from": "function_call", "value": json.dumps([CALL_1, {"name": "now", "arguments": {}}])},
            {"from": "observation", "value": '{"area": 7.07, "now": "12:00"}'},
            {"from": "gpt", "value": "7.07; it is noon."},
        ],
        "tools": tools,
    }


@pytest.fixture(scope="module")
def qwen_style(demo_tokenizer):
    tok = copy.deepcopy(demo_tokenizer)
    tok.chat_template = QWEN_STYLE
    return tok


def decoded(tok, r) -> str:
    return tok.decode(r.input_ids)


def test_demo_template_has_no_tool_format_so_the_system_prompt_form_is_used(demo_tokenizer):
    assert not native(demo_tokenizer)  # SmolLM2's template never mentions tools
    row = openai_row()
    conv = to_conversation(row, detect([row]))
    r = render(demo_tokenizer, conv)
    text = decoded(demo_tokenizer, r)
    listing = TOOLS_INTRO + "\n" + "\n".join(json.dumps(s) for s in SCHEMAS)
    expected = demo_tokenizer.apply_chat_template([
        {"role": "system", "content": listing},
        {"role": "user", "content": "Areas for r=1.5 and r=3?"},
        {"role": "assistant", "content": json.dumps(CALL_1) + "\n" + json.dumps(CALL_2)},
        {"role": "tool", "content": "7.07"},
        {"role": "tool", "content": "28.27"},
        {"role": "assistant", "content": "7.07 and 28.27."},
    ], tokenize=False)
    assert r.text == expected == text
    for schema in SCHEMAS:
        assert json.dumps(schema) in text
    # each call trained, on its own line; results are context only
    assert trained_pieces(demo_tokenizer, r) == [
        json.dumps(CALL_1) + "\n" + json.dumps(CALL_2) + "<|im_end|>", "7.07 and 28.27.<|im_end|>"]
    assert "}{" not in text


def test_a_template_with_tools_gets_them_through_apply_chat_template(qwen_style):
    assert native(qwen_style)
    row = openai_row()
    r = render(qwen_style, to_conversation(row, detect([row])))
    calls = [{"type": "function", "function": c, "id": i} for c, i in ((CALL_1, "c1"), (CALL_2, "c2"))]
    expected = qwen_style.apply_chat_template([
        {"role": "user", "content": "Areas for r=1.5 and r=3?"},
        {"role": "assistant", "content": "", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "7.07"},
        {"role": "tool", "tool_call_id": "c2", "content": "28.27"},
        {"role": "assistant", "content": "7.07 and 28.27."},
    ], tools=SCHEMAS, tokenize=False)
    text = decoded(qwen_style, r)
    assert r.text == expected == text
    assert "<tools>" in text and all(json.dumps(s) in text for s in SCHEMAS)
    first, second = (f'<tool_call>\n{{"name": "area", "arguments": {json.dumps(c["arguments"])}}}\n</tool_call>' for c in (CALL_1, CALL_2))
    pieces = trained_pieces(qwen_style, r)
    assert pieces == [f"{first}\n{second}<|im_end|>", "7.07 and 28.27.<|im_end|>"]  # each call its own block
    assert "<tool_response>\n7.07\n</tool_response>" in text and not any("tool_response" in p for p in pieces)


@pytest.mark.parametrize("tools", [json.dumps([AREA, CLOCK]), [AREA, CLOCK]], ids=["json-string", "list"])
def test_sharegpt_parallel_calls_stay_separate_and_keep_their_tools(demo_tokenizer, qwen_style, tools):
    row = sharegpt_row(tools)
    shape = detect([row])
    assert shape.format == "sharegpt"
    conv = to_conversation(row, shape)
    assert conv[0] == {"role": "tools", "tools": SCHEMAS}
    assert [c["name"] for c in conv[2]["tool_calls"]] == ["area", "now"]
    assert conv[3]["role"] == "tool"
    plain = decoded(demo_tokenizer, render(demo_tokenizer, conv))
    assert json.dumps(CALL_1) + "\n" + json.dumps({"name": "now", "arguments": {}}) in plain
    native_text = decoded(qwen_style, render(qwen_style, conv))
    assert native_text.count("<tool_call>") == 2 and json.dumps(SCHEMAS[1]) in native_text


def test_bad_tools_and_calls_are_plain_row_errors():
    with pytest.raises(RowError, match="field 'tools' is not valid JSON"):
        to_conversation(sharegpt_row("[{not json"), detect([sharegpt_row([])]))
    with pytest.raises(RowError, match="schema 1 should be an object with a 'name'"):
        to_conversation(sharegpt_row([{"description": "no name"}]), detect([sharegpt_row([])]))
    row = sharegpt_row([AREA])
    row["conversations"][1]["value"] = "call area please"
    with pytest.raises(RowError, match="message 2's function call is not valid JSON"):
        to_conversation(row, detect([row]))


def test_rows_differing_only_in_tools_are_not_duplicates(tmp_path, demo_tokenizer):
    rows = [openai_row([AREA]), openai_row([AREA, CLOCK]), openai_row([AREA]), openai_row([])]
    path = tmp_path / "tools.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    data = prepare(DataConfig(path=str(path), val_share=0, cache=False), demo_tokenizer)
    assert [(p.row, p.reason) for p in data.skipped] == [(3, "exact duplicate of row 1")]
    assert data.kept == 3


def test_a_sharegpt_tool_file_is_detected_and_inspect_shows_schemas_and_calls(tmp_path, demo_tokenizer):
    path = tmp_path / "glaive.jsonl"
    path.write_text("\n".join(json.dumps(sharegpt_row(json.dumps(t))) for t in ([AREA, CLOCK], [CLOCK, AREA], [AREA])),
                    encoding="utf-8")
    data = prepare(DataConfig(path=str(path), val_share=0, cache=False), demo_tokenizer)
    assert data.shape.format == "sharegpt" and data.kept == 3 and not data.skipped
    assert any("3 row(s) with tool schemas or calls" in n and "system message" in n for n in data.notes)
    report = describe(data, str(path))
    shown = format_text(report)
    assert json.dumps(SCHEMAS[0]) in shown
    assert "[[" + json.dumps(CALL_1) + "\n" + json.dumps({"name": "now", "arguments": {}}) + "<|im_end|>]]" in shown
