"""Tool calling, round three (issue 22): where a rendered row shows its schemas, calls and
results (the Data page and inspect colour them), the `tools` part of --map, the calls an
answer makes, and compare's tools rendered as training rendered them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_tool_calling import CALL_1, CALL_2, QWEN_STYLE, SCHEMAS, openai_row, sharegpt_row
from tool_set import TOOLS, write_tool_set, write_tools

from engine import cli
from engine.config import DataConfig
from engine.data import prepare
from engine.data.render import generation_prompt, render
from engine.data.report import inspect_file
from engine.data.shapes import detect, to_conversation
from engine.data.tool_form import calls_in
from engine.data.tool_parts import MAX_PARTS, _differ, tool_parts
from engine.data.tool_sets import load_tools_file, tools_in_dataset
from engine.errors import DataError


@pytest.fixture(scope="module")
def qwen_style(demo_tokenizer):
    import copy

    tok = copy.deepcopy(demo_tokenizer)
    tok.chat_template = QWEN_STYLE
    return tok


def _parts(tok, row):
    conv = to_conversation(row, detect([row]))
    r = render(tok, conv)
    return r, [(r.text[a:b], kind) for a, b, kind in tool_parts(tok, conv, r.text)], tool_parts(tok, conv, r.text)


@pytest.mark.parametrize("which", ["demo", "qwen"])
def test_schemas_each_parallel_call_and_each_result_are_found_in_the_rendered_row(which, demo_tokenizer, qwen_style):
    tok = demo_tokenizer if which == "demo" else qwen_style
    r, found, spans = _parts(tok, openai_row())
    kinds = [k for _, k in found]
    assert kinds == ["tools", "call", "call", "result", "result"]
    schemas = found[0][0]
    assert all(json.dumps(s) in schemas for s in SCHEMAS)
    if which == "demo":  # the system-prompt form: the intro line belongs to the schemas' block
        assert schemas.startswith("You can call these functions")
    calls = [t for t, k in found if k == "call"]
    assert [c for t in calls for c in calls_in(t)] == [CALL_1, CALL_2]  # two blocks, one call each
    if which == "qwen":  # the template's own call format, tags and all
        assert all(t.startswith("<tool_call>") and t.endswith("</tool_call>") for t in calls)
    assert [t for t, k in found if k == "result"] == ["7.07", "28.27"]
    # the calls are trained, the schemas and the results are not
    for a, b, kind in spans:
        inside = any(s <= a and b <= e for s, e in r.trained_spans)
        assert inside == (kind == "call"), (kind, r.text[a:b])


def test_a_sharegpt_parallel_call_list_gives_one_part_per_call(demo_tokenizer):
    row = sharegpt_row([s["function"] for s in SCHEMAS])
    _, found, _ = _parts(demo_tokenizer, row)
    assert [k for _, k in found] == ["tools", "call", "call", "result"]
    assert [json.loads(t)["name"] for t, k in found if k == "call"] == ["area", "now"]


def test_a_run_that_could_sit_in_several_places_is_placed_at_a_whole_part():
    c1, c2 = json.dumps(CALL_1), json.dumps(CALL_2)
    for a, b, want in [
        (f"x\n{c1}\n{c2}<e>", f"x\n{c2}<e>", c1), (f"x\n{c1}\n{c2}<e>", f"x\n{c1}<e>", c2),
        (f"[T] [{c1}, {c2}]", f"[T] [{c2}]", c1), (f"[T] [{c1}, {c2}]", f"[T] [{c1}]", c2),
    ]:
        s, e = _differ(a, b)
        assert a[s:e] == want


def test_a_long_agent_trace_shows_its_first_parts(demo_tokenizer):
    turns = [[{"role": "user", "content": f"r={i}?"}, {"role": "assistant", "content": "", "tool_calls": [CALL_2 | {"arguments": {"r": i}}]}]
             for i in range(30)]
    conv = [{"role": "tools", "tools": SCHEMAS}] + [m for t in turns for m in t]
    text = render(demo_tokenizer, conv).text
    parts = tool_parts(demo_tokenizer, conv, text)
    assert len(parts) == MAX_PARTS and [p[2] for p in parts] == ["tools"] + ["call"] * (MAX_PARTS - 1)
    assert [calls_in(text[a:b])[0]["arguments"]["r"] for a, b, _ in parts[1:]] == list(range(MAX_PARTS - 1))


def test_rows_without_tools_have_no_parts_and_inspect_counts_them(tmp_path, demo_tokenizer):
    f = write_tool_set(tmp_path / "tools.jsonl", n=16)
    report = inspect_file(DataConfig(path=str(f), cache=False), demo_tokenizer)
    assert report["mapping"] == {"messages": "messages", "tools": "tools"}
    first = report["examples"][0]  # row 1 calls get_weather, the tool answers, the assistant says it
    assert [p[2] for p in first["parts"]] == ["tools", "call", "result"]
    a, b, _ = first["parts"][1]
    assert calls_in(first["text"][a:b])[0]["name"] == "get_weather"
    plain = tmp_path / "plain.jsonl"
    plain.write_text("\n".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                        {"role": "assistant", "content": f"a{i}"}]}) for i in range(4)))
    assert all(ex["parts"] == [] for ex in inspect_file(DataConfig(path=str(plain), cache=False), demo_tokenizer)["examples"])


def _api_specs_file(tmp_path):
    """Schemas under a column no detector knows, as a JSON string; the first row has none."""
    f = tmp_path / "specs.jsonl"
    rows = [{"messages": openai_row()["messages"][:2]}] + [
        {"api_specs": json.dumps(SCHEMAS), "messages": openai_row()["messages"][:2] + [{"role": "user", "content": f"and {i}?"},
                                                                                     {"role": "assistant", "content": "ok"}]}
        for i in range(3)]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return f


def test_tools_under_an_unusual_column_are_mapped_with_map_tools(tmp_path, demo_tokenizer, capsys):
    f = _api_specs_file(tmp_path)
    unmapped = prepare(DataConfig(path=str(f), cache=False), demo_tokenizer)
    assert "tools" not in unmapped.shape.mapping  # nothing names the column: its schemas would be lost
    assert not any(json.dumps(SCHEMAS[0]) in s["text"] for s in unmapped.samples)

    assert cli.main(["inspect", str(f), "--map", "tools=api_specs", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mapping"] == {"messages": "messages", "tools": "api_specs"}
    assert any("4 row(s) with tool schemas or calls" in n for n in report["notes"])
    second = report["examples"][1]
    assert [p[2] for p in second["parts"]][:1] == ["tools"] and json.dumps(SCHEMAS[0]) in second["text"]

    assert cli.main(["inspect", str(f), "--map", "tools=apispecs"]) == 2
    assert "field 'apispecs' is not in the file" in capsys.readouterr().err


def test_a_functions_field_on_some_rows_only_is_found(tmp_path, demo_tokenizer):
    rows = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}]} for i in range(5)]
    rows.append(sharegpt_row(json.dumps([s["function"] for s in SCHEMAS])) | {"functions": None})
    rows[-1]["functions"] = rows[-1].pop("tools")
    f = tmp_path / "some.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows))
    data = prepare(DataConfig(path=str(f), cache=False), demo_tokenizer)
    assert data.shape.mapping == {"messages": "conversations", "tools": "functions"}
    assert any("1 row(s) with tool schemas" in n for n in data.notes)


def test_calls_in_an_answer():
    assert calls_in('{"name": "get_weather", "arguments": {"city": "Oslo"}}') == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    two = '<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n<tool_call>\n{"name": "b", "arguments": "{\\"y\\": 2}"}\n</tool_call>'
    assert calls_in(two) == [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {"y": 2}}]
    assert calls_in('[{"type": "function", "function": {"name": "a", "parameters": {}}}]') == [{"name": "a", "arguments": {}}]
    for bad in ("The weather in Oslo is fine.", '{"name": "get_weather", "arguments": {"city": "Oslo"}', '{"name": "x"}',
                '{"name": 3, "arguments": {}}', '{"city": "Oslo"}', ""):
        assert calls_in(bad) == [], bad


@pytest.mark.parametrize("which", ["demo", "qwen"])
def test_the_prompt_of_an_answer_with_tools_is_the_training_rows_prefix(which, demo_tokenizer, qwen_style):
    tok = demo_tokenizer if which == "demo" else qwen_style
    row = openai_row()
    conv = to_conversation(row, detect([row]))
    trained = render(tok, conv)
    prompt = generation_prompt(tok, [{"role": "user", "content": "Areas for r=1.5 and r=3?"}], SCHEMAS)
    first_answer = trained.trained_spans[0][0]
    assert trained.text[:first_answer].rstrip() == prompt.rstrip() and len(prompt) >= first_answer - 1
    assert generation_prompt(tok, [{"role": "user", "content": "hi"}]) == tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)


def test_tool_files_and_the_datasets_schemas(tmp_path):
    good = write_tools(tmp_path / "schemas.json")
    assert load_tools_file(good) == TOOLS
    (tmp_path / "one.json").write_text(json.dumps(TOOLS[0]["function"]))
    assert load_tools_file(tmp_path / "one.json") == [TOOLS[0]]
    (tmp_path / "wrapped.json").write_text(json.dumps({"functions": [t["function"] for t in TOOLS]}))
    assert load_tools_file(tmp_path / "wrapped.json") == TOOLS
    for name, text, reason in [("broken.json", "[{", "not valid JSON"), ("noname.json", '[{"description": "x"}]', "schema 1"),
                               ("empty.json", "[]", "no tool schemas"), ("text.json", '"get_weather"', "list of function schemas")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError) as e:
            load_tools_file(tmp_path / name)
        assert str(e.value).startswith(name) and reason in str(e.value)
    with pytest.raises(DataError, match="missing.json: cannot read"):
        load_tools_file(tmp_path / "missing.json")
    data = write_tool_set(tmp_path / "set.jsonl", n=24)
    assert [t["function"]["name"] for t in tools_in_dataset(DataConfig(path=str(data)))] == ["get_weather", "convert_currency", "get_time"]
    assert tools_in_dataset(DataConfig(path=str(tmp_path / "gone.jsonl"))) == []


def test_compare_with_tools_prompts_as_training_rendered_the_rows(tiny_tool_run, demo_tokenizer):
    from engine.chat import ChatSession, tools_for

    session = ChatSession(tiny_tool_run, device="cpu")
    tools = tools_for(tiny_tool_run, "data")
    assert tools == TOOLS == session.dataset_tools()
    cfg, _ = session.run.read_config()
    data = prepare(cfg.data, session.tokenizer)
    row = next(e for e in data.train + data.val if e.row == 2)  # one question, one call, in the training rows
    question = json.loads((tiny_tool_run.parent / "tools.jsonl").read_text().splitlines()[1])["messages"][0]["content"]
    start = int(np.flatnonzero(row.trained)[0])
    assert session.prompt_ids(question, tools)[0].tolist() == row.input_ids[:start].tolist()
    assert session.prompt_ids(question)[0].tolist() != row.input_ids[:start].tolist()  # without them: another prompt


def test_compare_cli_takes_tools_and_says_which_calls_each_answer_makes(tiny_tool_run, tmp_path, capsys):
    assert cli.main(["compare", str(tiny_tool_run), "--prompt", "Weather in Reykjavik?", "--tools", "data",
                     "--max-new-tokens", "4", "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tools"] == ["get_weather", "convert_currency", "get_time"]
    assert isinstance(out["base_calls"], list) and isinstance(out["tuned_calls"], list)
    bad = tmp_path / "tools.json"
    bad.write_text("{not json")
    assert cli.main(["compare", str(tiny_tool_run), "--prompt", "hi", "--tools", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == (
        "tunedesk compare: error: tools.json: the tool schemas are not valid JSON "
        "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))")
