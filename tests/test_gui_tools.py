"""Tool calling in the window (issue 22): the Data page tells a row's schemas, calls and
results apart and maps schemas under any column; the Compare page offers the run's
schemas (or a file's) to both models and says which calls each answer makes."""

from __future__ import annotations

import json

from test_tool_calling import SCHEMAS, openai_row
from tool_set import TOOLS, write_tool_set, write_tools

from gui.example_view import PARTS, TRAINED_STYLE, highlighted_html


def _compact(html: str) -> str:
    return html.replace(" ", "")


def test_data_page_colours_schemas_calls_and_results_apart(qtbot, window, tmp_path):
    f = write_tool_set(tmp_path / "tools.jsonl", n=16)
    with qtbot.waitSignal(window.session.data_changed, timeout=60_000):
        window.data_page.open_path(f)
    page = window.data_page
    assert page.role_edits["tools"].isVisible() and page.role_edits["tools"].text() == "tools"
    shown = page.examples.toHtml()
    for label, _colour, style in PARTS.values():
        assert label in shown
    plain = page.examples.toPlainText()
    assert "tool schemas  You can call these functions" in plain  # the tag opens the schemas' block
    assert 'call  {"name": "get_weather", "arguments": {"city": ' in plain
    assert 'tool result  {"city": ' in plain
    compact = _compact(shown)
    assert "background-color:rgba(59,130,246" in compact and "background-color:rgba(245,158,11" in compact
    assert "text-decoration:underline" in compact and "background-color:rgba(34,197,94" in compact


def test_the_call_is_trained_and_underlined_the_schemas_and_result_are_not():
    text = "SYS\nQ\nCALL<e>\nRES\nOK<e>"
    spans = [(6, 13), (18, 23)]
    parts = [[0, 3, "tools"], [6, 10, "call"], [14, 17, "result"]]
    html = highlighted_html(text, spans, parts)
    call_style = TRAINED_STYLE + PARTS["call"][2]
    assert f'<span style="{call_style}">CALL</span>' in html
    assert f'<span style="{TRAINED_STYLE}">&lt;e&gt;</span>' in html  # trained, not the call
    assert f'<span style="{PARTS["tools"][2]}">SYS</span>' in html and f'<span style="{PARTS["result"][2]}">RES</span>' in html
    assert html.index("tool schemas") < html.index("SYS") and html.index("&nbsp;call&nbsp;") < html.index("CALL")
    assert highlighted_html("a<b", [(0, 1)]) == (
        "<pre style='white-space: pre-wrap; font-family: monospace;'>"
        f'<span style="{TRAINED_STYLE}">a</span>&lt;b</pre>')  # a row without tools: as before


def test_data_page_maps_schemas_under_an_unusual_column(qtbot, window, tmp_path):
    f = tmp_path / "specs.jsonl"
    rows = [{"api_specs": json.dumps(SCHEMAS), "messages": openai_row()["messages"]} for _ in range(2)]
    rows[1]["messages"] = rows[1]["messages"][:2]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with qtbot.waitSignal(window.session.data_changed, timeout=60_000):
        window.data_page.open_path(f)
    page = window.data_page
    assert page.role_edits["tools"].text() == "" and "Area of a circle" not in page.examples.toPlainText()
    page.role_edits["tools"].setText("api_specs")
    with qtbot.waitSignal(window.session.data_changed, timeout=60_000):
        page.apply_mapping()
    assert window.session.cfg.data.mapping == {"messages": "messages", "tools": "api_specs"}
    assert "Area of a circle" in page.examples.toPlainText() and "tool schemas" in page.examples.toPlainText()


def test_compare_page_offers_the_runs_tools_to_both_models(qtbot, window, tiny_tool_run, tmp_path, monkeypatch):
    w = window
    w.session.cfg.out_dir = str(tiny_tool_run.parent)
    page = w.compare_page
    w.show_page("Compare")
    page.open_run(str(tiny_tool_run))
    qtbot.waitUntil(lambda: page.chat is not None, timeout=120_000)
    field = page.tools_field
    assert field.tools == TOOLS and "3</b> function(s) from the run's data: get_weather, convert_currency, get_time" in field.summary.text()

    asked = []
    real = type(page.chat).answer
    monkeypatch.setattr(type(page.chat), "answer", lambda self, *a, **k: asked.append(k["tools"]) or real(self, *a, **k))
    page.max_new.setValue(3)
    page.prompt.setPlainText("Weather in Reykjavik?")
    page.ask_button.click()
    qtbot.waitUntil(lambda: not page.busy, timeout=120_000)
    assert asked == [TOOLS, TOOLS]  # base and tuned, the same schemas
    assert "well-formed call" in page.panes["base"].toPlainText()

    bad = tmp_path / "tools.json"
    bad.write_text('[{"description": "no name"}]')
    assert "tools.json" in field.load_file(str(bad)) and field.tools is None and "tools.json" in field.summary.text()
    assert field.load_file(str(write_tools(tmp_path / "mine.json"))) == "" and "from mine.json" in field.summary.text()
    field.none_button.click()
    assert field.tools is None and "none" in field.summary.text()
    field.data_button.click()
    assert field.tools == TOOLS


def test_an_answer_with_tools_says_which_calls_it_makes():
    from gui.pages.compare_page import render_turns

    turns = [("user", "Weather in Oslo?"), ("assistant", '{"name": "get_weather", "arguments": {"city": "Oslo"}}')]
    assert "1 well-formed call(s): get_weather(city=&#x27;Oslo&#x27;)" in render_turns(turns, False, tools=True)
    assert "well-formed" not in render_turns(turns, False)
    assert "no well-formed call" in render_turns([("user", "q"), ("assistant", "It is sunny.")], False, tools=True)
