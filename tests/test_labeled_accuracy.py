"""Labeled data, for real and short: the demo model trains on an IMDB-shaped sentiment
Parquet (ClassLabel `label`) through the CLI, and Compare's accuracy (exact label match on
the validation split) is higher after training than before, in the CLI and on the page.
The long version, with figures, is scripts/labeled_demo.py."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLES, tunedesk
from sentiment import write_parquet


@pytest.fixture(scope="module")
def sentiment_run(tmp_path_factory, demo_folder):
    out = tmp_path_factory.mktemp("sentiment")
    data = write_parquet(out / "reviews.parquet", n=120)
    r = tunedesk("train", str(data), "--max-steps", "12", "--lr", "1e-3", "--val-share", "0.2", "--eval-every", "12",
                 "--out", str(out), "--name", "sentiment", "--device", "cpu")
    assert r.returncode == 0, r.stderr[-3000:]
    return out / "sentiment"


def test_accuracy_after_training_beats_before(sentiment_run):
    cfg = json.loads((sentiment_run / "config.json").read_text())
    assert cfg["data"]["path"].endswith("reviews.parquet")
    r = tunedesk("compare", str(sentiment_run), "--accuracy", "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)
    assert result["labels"] == ["neg", "pos"] and result["rows"] == 24
    assert result["tuned_accuracy"] > result["base_accuracy"], result["examples"][:3]
    assert result["tuned_accuracy"] >= 0.6
    assert json.loads((sentiment_run / "compare" / "accuracy.json").read_text())["rows"] == 24


def test_the_compare_page_shows_accuracy_before_and_after(qtbot, window, sentiment_run):
    page = window.compare_page
    window.session.cfg.out_dir = str(sentiment_run.parent)
    page.open_run(str(sentiment_run))
    qtbot.waitUntil(lambda: page.chat is not None, timeout=120_000)
    page.val_n.setValue(6)  # the first 6 validation rows: the CLI test above measures them all
    page.acc_button.click()
    qtbot.waitUntil(lambda: not page.busy, timeout=300_000)
    text = page.val_label.text()
    assert "Validation accuracy (6 rows, exact label match):" in text and "before →" in text and "after" in text
    assert (sentiment_run / "compare" / "accuracy.json").is_file()


def test_accuracy_of_a_run_without_labels_says_so(tmp_path, tiny_model_folder):
    from engine.chat import ChatSession
    from engine.chat.accuracy import label_accuracy
    from engine.config import RunConfig
    from engine.errors import TuneDeskError
    from engine.training.train import Trainer

    cfg = RunConfig()
    cfg.model.source, cfg.data.path = str(tiny_model_folder), str(SAMPLES / "support_desk.json")
    cfg.out_dir, cfg.name, cfg.train.max_steps = str(tmp_path), "qa", 1
    t = Trainer(cfg)
    t.setup()
    t.fit()
    with pytest.raises(TuneDeskError, match="accuracy needs labeled data.*the pair format"):
        label_accuracy(ChatSession(tmp_path / "qa", device="cpu"))
