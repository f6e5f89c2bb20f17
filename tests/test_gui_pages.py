"""Each page of the real window, offscreen, with the demo model loaded."""

from __future__ import annotations

from pathlib import Path

from conftest import SAMPLES
from gui_helpers import load_sample
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent


def test_data_page_sample_shows_shape_counts_examples_and_histogram(qtbot, window):
    w = window
    load_sample(qtbot, w)
    page = w.data_page
    assert page.format_combo.currentData() == "alpaca"
    assert page.role_edits["instruction"].text() == "instruction" and page.role_edits["answer"].text() == "output"
    assert "90</b> rows read" in page.counts_label.text() and "<b>0</b> skipped" in page.counts_label.text()
    html = page.examples.toHtml()
    assert "Arr, matey!" in html and "background-color:rgba(34,197,94" in html.replace(" ", "")
    bars = [i for i in page.hist.getPlotItem().items if type(i).__name__ == "BarGraphItem"]
    assert len(bars) == 1
    assert page.banner.isVisible() and "All 90 rows are usable" in page.banner.text()
    assert w.session.cfg.data.path.endswith("pirate_trivia.jsonl")


def test_data_page_bad_file_names_file_row_and_reason(qtbot, window, tmp_path):
    bad = tmp_path / "orders.jsonl"
    rows = ['{"question": "q%d", "answer": "a%d"}' % (i, i) for i in range(6)]
    rows.insert(3, '{"question": "broken", "answer": ')
    bad.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with qtbot.waitSignal(window.session.data_changed, timeout=60_000):
        window.data_page.open_path(bad)
    page = window.data_page
    assert "1 row(s) cannot be used" in page.banner.text()
    assert page.skipped_table.rowCount() == 1
    assert page.skipped_table.item(0, 0).text() == "4" and "json" in page.skipped_table.item(0, 1).text().lower()

    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with qtbot.waitSignal(window.session.data_failed, timeout=60_000):
        page.open_path(empty)
    assert page.banner.isVisible() and "empty.csv" in page.banner.text()
    assert page.banner.property("kind") == "error"


def test_data_page_field_mapping_override(qtbot, window, tmp_path):
    f = tmp_path / "med.jsonl"
    f.write_text("\n".join('{"Q": "What is %d+%d?", "A": "%d", "note": "x"}' % (i, i, 2 * i) for i in range(8)) + "\n")
    with qtbot.waitSignal(window.session.data_changed, timeout=60_000):
        window.data_page.open_path(f)
    page = window.data_page
    page.format_combo.setCurrentIndex(page.format_combo.findData("pair"))
    page.role_edits["prompt"].setText("note")
    page.role_edits["answer"].setText("A")
    with qtbot.waitSignal(window.session.data_changed, timeout=60_000):
        page.apply_mapping()
    assert window.session.cfg.data.format == "pair"
    assert window.session.cfg.data.mapping == {"prompt": "note", "answer": "A"}
    assert "user\nx" in window.session.data_report["examples"][0]["text"]


def test_drop_a_file_on_the_data_page(qtbot, window):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(SAMPLES / "support_desk.json"))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.session.data_changed, timeout=60_000):
        window.data_page.dropEvent(event)
    assert window.session.data_report["format"] == "pair"


def test_model_page_card_and_bad_source(qtbot, window, tmp_path):
    page = window.model_page
    labels = {k: v.text() for k, v in page.card_labels.items()}
    assert labels["architecture"] == "LlamaForCausalLM"
    assert labels["chat_template"] == "yes" and labels["reasoning_model"] == "no"
    assert labels["vocabulary"] == "49,152" and labels["parameters"].endswith(" M")
    page.folder_radio.setChecked(True)
    page.folder_edit.setText(str(tmp_path / "nowhere"))
    with qtbot.waitSignal(window.session.model_failed, timeout=30_000) as blocker:
        page.apply()
    assert "nowhere" in blocker.args[0]
    assert page.banner.property("kind") == "error" and "nowhere" in page.banner.text()
    assert page.load_button.isEnabled()


def test_plan_page_cpu_plan_then_a_simulated_8gb_card(qtbot, window):
    load_sample(qtbot, window)
    page = window.plan_page
    window.show_page("Plan")
    assert page.current_plan.device == "cpu"
    assert "CPU plan" in page.total_label.text() and not page.bar.isVisible()
    page.vram.setValue(8)  # plan for an RTX 4060
    p = page.current_plan
    assert p.device == "cuda" and p.fits and p.budget_bytes > 6 * 2**30
    assert page.bar.isVisible() and page.bar.budget == p.budget_bytes and sum(page.bar.parts.values()) == p.estimate_bytes
    assert page.reason["quantization"].text().startswith("<b>Auto: none</b>")
    assert page.banner.text() == "Fits this card."
    # An edit that cannot fit: re-estimated at once, warned about, and kept as the user's choice.
    page.quant.setCurrentIndex(page.quant.findData("none"))
    page.seq.setValue(32768)
    page.micro.setValue(64)
    assert window.session.cfg.train.micro_batch == 64 and window.session.cfg.data.max_seq_len == 32768
    assert not page.current_plan.fits
    assert page.banner.property("kind") == "error" and "will not fit" in page.banner.text()
    assert page.reason["micro_batch"].text().startswith("Set by you")
    page.micro.setValue(0)
    assert window.session.cfg.train.micro_batch is None
    # Packing is off unless asked for; the switch reaches the config the trainer gets.
    assert page.pack.currentData() is False and window.session.cfg.train.packing is False
    page.pack.setCurrentIndex(page.pack.findData(True))
    assert window.session.cfg.train.packing is True


def test_train_button_without_data_points_to_the_data_page(qtbot, window):
    window.session.cfg.data.path = ""
    window.show_page("Plan")
    window.train_button.click()
    assert window.stack.currentWidget() is window.data_page
    assert "Choose a dataset" in window.data_page.banner.text()
    assert not window.controller.running


def test_settings_are_remembered(qtbot, window, gui_settings):
    from gui import settings
    from gui.session import Session

    load_sample(qtbot, window, "support_desk.json")
    window.close()
    assert settings.get("last_dataset").endswith("support_desk.json")
    assert settings.get("model_source") == "demo"
    assert not settings.settings().value("geometry").isEmpty()
    assert Path(Session().cfg.data.path).name == "support_desk.json"


def test_closing_during_training_asks_stops_and_keeps_the_checkpoint(qtbot, window, monkeypatch):
    load_sample(qtbot, window)
    window.plan_page.max_steps.setValue(200)
    asked = []
    monkeypatch.setattr(window, "confirm_stop_on_close", lambda: asked.append(1) or True)
    with qtbot.waitSignal(window.controller.progress, timeout=300_000):
        window.train()
    window.close()
    assert asked == [1] and window.isVisible()  # still open: saving first
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=300_000)
    run = Path(window.train_page.run_dir)
    assert window.train_page.last_status == "stopped"
    assert list((run / "checkpoints").glob("step-*")) and (run / "adapter" / "adapter_model.safetensors").is_file()


def test_help_menu_diagnostics_and_about(qtbot, window):
    from gui import dialogs

    d = dialogs.diagnostics(window)
    qtbot.waitUntil(lambda: "Ready to train." in d.text.toPlainText() or "problem" in d.text.toPlainText(), timeout=60_000)
    assert "PyTorch" in d.text.toPlainText() and "Demo model" in d.text.toPlainText()
    a = dialogs.about(window)
    text = a.text.toPlainText()
    assert "torch " in text and "transformers" in text and "tunedesk" in text
    assert [x.text() for x in window.menuBar().actions()] == ["&Help"]


def test_first_run_is_ready_to_train_the_sample_on_the_demo(qtbot, window):
    """No settings yet: the pirate sample and the demo model are chosen, and a welcome says so."""
    w = window
    assert w.session.first_run and w.session.cfg.model.source == "demo"
    assert w.session.cfg.data.path.endswith("pirate_trivia.jsonl")
    qtbot.waitUntil(lambda: w.session.data_report is not None, timeout=60_000)
    assert w.data_page.banner.isVisible() and w.data_page.banner.text().startswith("Welcome to TuneDesk!")
    assert w.train_page.can_start() == ""  # the first click on Train can start


def test_app_icon_is_found():
    from gui.app import icon

    assert not icon().isNull()


def test_plan_page_gpus_field_spreads_the_plan_over_two_cards(qtbot, window):
    from engine.hardware import GpuInfo, HardwareInfo

    load_sample(qtbot, window)
    page = window.plan_page
    window.show_page("Plan")
    assert not page.gpus.isEnabled() and page.gpus.value() == 1  # this machine: no GPU, nothing to spread over
    card = [GpuInfo(i, "RTX 3060", 12 * 2**30, 11 * 2**30, 2**30, "560", (8, 6)) for i in (0, 1)]
    window.session.hardware = HardwareInfo(gpus=card, chosen=0, ram_total_bytes=32 * 2**30, ram_available_bytes=24 * 2**30)
    window.session.hardware_changed.emit()
    assert page.gpus.isEnabled() and page.gpus.maximum() == 2
    page.vram.setValue(12)
    page.gpus.setValue(2)
    p = page.current_plan
    assert window.session.cfg.train.gpus == 2 and p.processes == 2
    assert page.reason["processes"].text().startswith("Set by you") and "Data-parallel on 2 GPUs" in page.reason["processes"].text()
    assert "on each of 2 GPUs" in page.total_label.text()
