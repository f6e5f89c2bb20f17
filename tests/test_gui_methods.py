"""The window's Method choice (issue 20): a preference file previewed side by side, DPO
chosen on the Plan page, a few steps trained offscreen with the reward plots filling, the
Runs page naming the method, Compare answering both ways; DPO refused on one-answer rows."""

from __future__ import annotations

from conftest import SAMPLES
from preference_set import rows, write_preference_set


def test_dpo_from_the_window(qtbot, window, tmp_path):
    w = window
    with qtbot.waitSignal(w.session.data_changed, timeout=60_000):
        w.data_page.open_path(write_preference_set(tmp_path / "tickets.jsonl", 24))
    assert "Preference pairs" in w.data_page.examples_label.text()
    preview, first = w.data_page.examples.toPlainText(), rows(24)[0]  # the preview starts with the file's first row
    assert "Chosen" in preview and "Rejected" in preview
    assert preview.index(first["chosen"]) < preview.index(first["rejected"])  # side by side: chosen left

    box = w.plan_page.method_box
    w.show_page("Plan")
    assert "chosen answer only" in box.banner.text()  # SFT on a preference file: said before training
    box.method.setCurrentIndex(box.method.findData("grpo"))
    assert box.group.isVisibleTo(box) and box.rewards.isVisibleTo(box) and not box.beta.isVisibleTo(box)
    box.r_length.setChecked(True)
    box.r_regex.setChecked(True)
    box.regex.setText(r"^Team \w+\.$")
    assert w.session.cfg.method.rewards == ["match", "length:0-256", r"regex:^Team \w+\.$"]
    box.method.setCurrentIndex(box.method.findData("dpo"))
    box.beta.setValue(0.5)
    assert (w.session.cfg.method.name, w.session.cfg.method.beta) == ("dpo", 0.5)
    assert box.beta.isVisibleTo(box) and not box.group.isVisibleTo(box) and not box.banner.text()
    assert "DPO" in box.about.text() and "pairs" in w.plan_page.reason["micro_batch"].text()

    w.plan_page.max_steps.setValue(2)
    w.plan_page.eval_every.setValue(1)
    with qtbot.waitSignal(w.controller.done, timeout=600_000):
        w.train()
    assert w.train_page.last_status == "finished"
    qtbot.waitUntil(lambda: w.train_page.method_plots.points().get("reward_margin", 0) == 2, timeout=5_000)
    points = w.train_page.method_plots.points()
    assert points["pref_accuracy"] == 2 and points["eval_reward_margin"] == 3  # steps 0, 1, 2
    assert w.train_page.method_plots.isVisibleTo(w.train_page)

    w.show_page("Runs")
    w.runs_page.refresh()
    qtbot.waitUntil(lambda: w.runs_page.table.rowCount() == 1, timeout=30_000)
    headers = [w.runs_page.table.horizontalHeaderItem(c).text() for c in range(w.runs_page.table.columnCount())]
    assert w.runs_page.table.item(0, headers.index("Method")).text() == "DPO"

    page = w.compare_page
    w.show_page("Compare")
    page.open_run(w.train_page.run_dir)
    qtbot.waitUntil(lambda: page.chat is not None, timeout=120_000)
    page.max_new.setValue(8)
    page.prompt.setPlainText("Ana, night shift: the VPN drops. Which team?")
    page.ask_button.click()
    qtbot.waitUntil(lambda: not page.busy, timeout=120_000)
    answers = page.answers()
    assert answers["base"] and answers["tuned"]


def test_dpo_on_one_answer_rows_is_refused_before_training(qtbot, window):
    w = window
    with qtbot.waitSignal(w.session.data_changed, timeout=60_000):
        w.data_page.open_path(SAMPLES / "support_desk.json")
    box = w.plan_page.method_box
    box.method.setCurrentIndex(box.method.findData("dpo"))
    assert "DPO learns from a chosen and a rejected answer per row" in box.banner.text()
    w.train()
    assert not w.controller.running
    assert "use a preference file" in w.train_page.banner.text().lower() or "preference file" in w.train_page.banner.text()
