"""The Data page's "From the Hub" field and labeled data's instruction, in the real window
(offline: a folder laid out like a Hub repository, read by the same code as an id)."""

from __future__ import annotations

import pytest
from sentiment import write_hub_folder

from engine.data import hub


@pytest.fixture(autouse=True)
def _fresh():
    hub.forget()
    yield
    hub.forget()


def test_fetch_from_the_hub_shows_labeled_data_and_its_editable_instruction(qtbot, window, tmp_path):
    folder = write_hub_folder(tmp_path / "imdb", n=40)
    page = window.data_page
    page.hub_edit.setText(str(folder))
    page.hub_rows.setValue(30)
    page.hub_button.click()
    # (the first run's sample may land first: wait for the Hub dataset's report)
    qtbot.waitUntil(lambda: (window.session.data_report or {}).get("file") == str(folder), timeout=120_000)
    d = window.session.cfg.data
    assert (d.path, d.from_hub, d.hub_split, d.max_samples) == (str(folder), True, "train", 30)
    assert page.format_combo.currentData() == "labeled"
    assert page.instruction_edit.isVisible() and page.instruction_edit.text() == "Classify this text as one of: neg, pos."
    assert "Hugging Face Hub dataset" in page.file_label.text() and "first 30 rows" in page.file_label.text()
    assert "30</b> rows read" in page.counts_label.text()
    assert not page.hub_progress.isVisible() and page.hub_button.isEnabled()

    page.instruction_edit.setText("Is this review negative or positive? Answer neg or pos.")
    with qtbot.waitSignal(window.session.data_changed, timeout=60_000):
        page.apply_mapping()
    assert window.session.cfg.data.instruction == "Is this review negative or positive? Answer neg or pos."
    assert "Is this review negative or positive?" in window.session.data_report["examples"][0]["text"]
    assert window.session.cfg.data.from_hub  # still the Hub dataset


def test_an_unreachable_hub_id_is_one_line_and_cancel_stops_a_fetch(qtbot, window):
    page = window.data_page
    page.hub_edit.setText("someone/not-here")
    page.hub_button.click()
    qtbot.waitUntil(lambda: page.banner.property("kind") == "error", timeout=180_000)  # the window may still be loading the demo model on a busy CPU
    assert page.banner.text() == ("Could not reach the Hugging Face Hub to fetch someone/not-here (offline?). "
                                  "Download it on a machine with internet or give a local file.")
    assert page.hub_button.isEnabled()

    page.hub_button.click()
    assert page.hub_cancel.isVisible() and not page.hub_button.isEnabled()
    page.hub_cancel.click()
    assert page.banner.text().startswith("Cancelled") and page.hub_button.isEnabled() and not page.hub_cancel.isVisible()


def test_a_failed_fetch_s_message_outlasts_a_load_already_under_way(qtbot, window):
    """The first run's sample can finish loading after a quick Hub failure (a busy CPU): its
    report must not replace the error the user has not read yet; the user's next action does."""
    from gui_helpers import load_sample

    load_sample(qtbot, window)
    page = window.data_page
    page.hub_edit.setText("someone/not-here")
    page.hub_button.click()
    qtbot.waitUntil(lambda: page.banner.property("kind") == "error", timeout=180_000)
    error = page.banner.text()
    with qtbot.waitSignal(window.session.data_changed, timeout=60_000):
        window.session.load_data()  # a load the page did not start, landing after the failure
    assert page.banner.property("kind") == "error" and page.banner.text() == error
    assert "rows read" in page.counts_label.text()  # the report itself is still shown

    with qtbot.waitSignal(window.session.data_changed, timeout=60_000):
        page.open_path(window.session.cfg.data.path)  # the user's next action
    assert page.banner.property("kind") == "ok" and "rows are usable" in page.banner.text()
