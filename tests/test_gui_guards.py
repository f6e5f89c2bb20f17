"""Issue 17 in the window: the forgetting meter on the Train page, the best adapter on the
Runs page, Compare's task/general line, and the Plan page's data-sized defaults. One tiny
random-model run (real files) feeds the pages; no demo model is loaded."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLES


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model_folder):
    from engine.config import RunConfig
    from engine.reporting import RecordingReporter
    from engine.training.train import Trainer

    out = tmp_path_factory.mktemp("guards-gui")
    cfg = RunConfig()
    cfg.model.source, cfg.data.path = str(tiny_model_folder), str(SAMPLES / "support_desk.json")
    cfg.out_dir, cfg.name = str(out), "tiny"
    cfg.train.micro_batch, cfg.train.max_steps, cfg.train.lr, cfg.train.eval_every = 2, 8, 0.5, 1
    cfg.train.patience, cfg.train.warmup_ratio, cfg.train.replay_share = 2, 0.0, 0.0
    rep = RecordingReporter()
    t = Trainer(cfg, rep)
    t.setup()
    t.fit()
    return out / "tiny", rep


def test_train_page_plots_the_meter_and_says_which_adapter(qtbot, gui_settings, tiny_run):
    from gui.pages.train_page import TrainPage
    from gui.session import Session
    from gui.worker import TrainController

    _, rep = tiny_run
    page = TrainPage(Session(), TrainController())
    qtbot.addWidget(page)
    page._reset_series()
    for kind, data in rep.events:
        if kind == "metrics":
            page._on_metrics(data)
        if kind == "finished":
            page._on_finished(data)
    page._redraw()
    evals = [d for k, d in rep.events if k == "metrics" and "eval_loss" in d]
    assert page.meter_points() == {"task": len(evals), "general": len(evals)} and len(evals) >= 3
    summary = rep.of("finished")[0]["summary"]
    text = page.banner.text()
    assert f"step {summary['best_step']}'s" in text and "general:" in text


def test_runs_page_marks_the_best_and_compare_shows_task_and_general(qtbot, gui_settings, tiny_run):
    from gui.pages.compare_page import ComparePage
    from gui.pages.runs_page import COLUMNS, RunsPage
    from gui.session import Session

    run, _ = tiny_run
    session = Session()
    session.cfg.out_dir = str(run.parent)
    page = RunsPage(session)
    qtbot.addWidget(page)
    page.refresh()
    qtbot.waitUntil(lambda: bool(page.rows), timeout=30_000)
    col = [k for k, _ in COLUMNS].index("best")
    best = page.table.item(0, col).text()
    summary = json.loads((run / "summary.json").read_text())
    assert best.startswith(f"★ step {summary['best_step']} · {summary['best_eval_loss']:.3f}")
    page.select(str(run))
    assert page.curves() == 2 and page.best_marks == 1  # train and eval curves, and the star on the best evaluation
    assert "The adapter: step" in page.config_view.toPlainText()

    compare = ComparePage(session)
    qtbot.addWidget(compare)
    compare._show_meter(summary)
    assert compare.meter.text().startswith("<b>task: ") and " · general: " in compare.meter.text()


def test_plan_page_shows_sized_defaults_as_auto(qtbot, window):
    from gui_helpers import load_sample

    w = window
    load_sample(qtbot, w, "support_desk.json")
    w.plan_page.refresh()
    for key in ("lr", "epochs", "eval_every", "lora_r"):
        assert w.plan_page.reason[key].text().startswith("<b>Auto"), (key, w.plan_page.reason[key].text())
    w.plan_page.lr.setValue(0.0001)
    w.plan_page.refresh()
    assert w.session.cfg.train.lr == 0.0001 and w.plan_page.reason["lr"].text().startswith("Set by you")
