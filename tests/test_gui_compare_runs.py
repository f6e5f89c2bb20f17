"""Compare and Runs pages of the real window, over real runs of the demo model."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import SAMPLES


def test_compare_page_shows_both_answers_from_the_persona_run(qtbot, window, nova_run):
    w = window
    w.session.cfg.out_dir = str(nova_run.parent)
    page = w.compare_page
    w.show_page("Compare")
    page.refresh_runs()
    assert page.run_combo.findData(str(nova_run)) >= 0
    page.open_run(str(nova_run))
    qtbot.waitUntil(lambda: page.chat is not None, timeout=120_000)
    page.max_new.setValue(30)
    page.prompt.setPlainText("Who are you?")
    page.ask_button.click()
    qtbot.waitUntil(lambda: not page.busy, timeout=120_000)
    answers = page.answers()
    assert answers["base"] and answers["tuned"] and answers["base"] != answers["tuned"]
    assert "Nova" in answers["tuned"] and "Nova" not in answers["base"]
    assert "Nova" in page.panes["tuned"].toPlainText() and "You: Who are you?" in page.panes["base"].toPlainText()

    # A second turn continues each side's own conversation.
    page.prompt.setPlainText("And what is your name?")
    page.ask_button.click()
    qtbot.waitUntil(lambda: not page.busy, timeout=120_000)
    assert [r for r, _ in page.turns["tuned"]] == ["user", "assistant", "user", "assistant"]

    page.val_n.setValue(2)
    page.val_button.click()
    qtbot.waitUntil(lambda: not page.busy, timeout=300_000)
    assert page.table.rowCount() == 2 and page.table.item(0, 2).text()
    assert (nova_run / "compare" / "validation.md").is_file() and "validation.md" in page.val_label.text()


def test_thinking_is_folded_to_its_length():
    from gui.pages.compare_page import render_turns

    turns = [("user", "2+2?"), ("assistant", "<think>\nTwo and two make four.\n</think>\n\nFour.")]
    folded = render_turns(turns, show_thinking=False)
    assert "reasoning, 22 characters" in folded and "Two and two" not in folded and "Four." in folded
    assert "Two and two make four." in render_turns(turns, show_thinking=True)


def _train(qtbot, w, steps: int, stop_at: int | None = None) -> str:
    with qtbot.waitSignal(w.session.data_changed, timeout=60_000):
        w.data_page.open_path(SAMPLES / "support_desk.json")
    w.plan_page.max_steps.setValue(steps)
    if stop_at:
        w.controller.progress.connect(lambda d: d["step"] >= stop_at and w.controller.stop())
    with qtbot.waitSignal(w.controller.done, timeout=600_000):
        w.train()
    if stop_at:
        w.controller.progress.disconnect()
    return w.train_page.run_dir


def _refreshed(qtbot, page) -> None:
    """The Runs page lists its folder in the background: wait for the newest listing."""
    page.refresh()
    qtbot.waitUntil(lambda: not page.tasks.busy("list"), timeout=30_000)


def test_runs_page_lists_overlays_resumes_retrains_and_deletes(qtbot, window, monkeypatch):
    w = window
    finished = _train(qtbot, w, steps=3)
    stopped = _train(qtbot, w, steps=12, stop_at=2)
    page = w.runs_page
    w.show_page("Runs")
    _refreshed(qtbot, page)
    by_path = {r["path"]: r for r in page.rows}
    assert by_path[finished]["status"] == "finished" and by_path[stopped]["status"] == "stopped"
    assert by_path[stopped]["resumable"] and not by_path[finished]["resumable"]

    page.table.selectAll()  # two runs: their loss curves overlaid (train + eval each)
    assert page.curves() == 4

    page.table.clearSelection()
    page.select(stopped)
    assert page.buttons["resume"].isEnabled() and "support_desk.json" in page.config_view.toPlainText()
    assert page.config_view.toPlainText().startswith("Plan it ran: CPU, fp32, micro-batch")  # the plan, then the request
    with qtbot.waitSignal(w.controller.done, timeout=600_000):
        page.buttons["resume"].click()
    assert w.train_page.last_status == "finished"
    _refreshed(qtbot, page)
    assert {r["path"]: r for r in page.rows}[stopped]["status"] == "finished"

    page.select(finished)
    page.export("adapter", str(Path(finished).parent / "exported-adapter"))
    qtbot.waitUntil(lambda: not page.tasks.busy("export"), timeout=60_000)
    assert page.banner.property("kind") == "ok" and (Path(finished).parent / "exported-adapter" / "README.md").is_file()
    assert by_path[finished]["rows_used"] > 0 and by_path[finished]["trained_tokens"] > 0  # the Rows / Trained tokens columns
    with qtbot.waitSignal(w.session.data_changed, timeout=120_000):
        page.buttons["retrain"].click()
    assert w.stack.currentWidget() is w.plan_page and w.session.cfg.train.max_steps == 3 and w.session.cfg.name == ""
    # "Train again" loads the request: what the planner chose for that run is Auto again, re-planned.
    w.plan_page.refresh()
    for key in ("micro_batch", "seq_len", "gradient_checkpointing"):
        assert w.plan_page.reason[key].text().startswith("<b>Auto"), (key, w.plan_page.reason[key].text())

    monkeypatch.setattr(page, "confirm_delete", lambda name: name == Path(finished).name)
    w.show_page("Runs")
    page.select(finished)
    page.buttons["delete"].click()
    assert not Path(finished).exists() and Path(stopped).exists()
    qtbot.waitUntil(lambda: not page.tasks.busy("list"), timeout=30_000)  # the delete lists the folder again
    assert [r["path"] for r in page.rows] == [stopped]


def test_crashed_run_is_listed_as_crashed(tmp_path, tiny_model_folder):
    from engine.config import RunConfig
    from engine.runs import RunDir, list_runs

    cfg = RunConfig()
    cfg.model.source, cfg.data.path, cfg.out_dir, cfg.name = str(tiny_model_folder), str(SAMPLES / "support_desk.json"), str(tmp_path), "x"
    run = RunDir.create(cfg, model_name="tiny")
    run.write_config(cfg)
    run.write_data_report({})
    (run.path / "running.json").write_text('{"pid": 999999999, "host": "%s"}' % __import__("socket").gethostname())
    assert [r["status"] for r in list_runs(tmp_path)] == ["crashed"]
    shutil.rmtree(run.path)
    assert list_runs(tmp_path) == []
