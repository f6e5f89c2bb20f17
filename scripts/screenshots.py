"""Render every page of the window at 1280x800, one after a real (short) demo training.

    python3 scripts/screenshots.py [--out docs/screenshots] [--steps 12]

Runs offscreen (no display needed). Uses a fresh settings folder, the built-in demo model
and the bundled pirate sample, so the pictures show what a first-time user sees.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from shots_window import open_window


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    ap.add_argument("--steps", type=int, default=12)
    a = ap.parse_args()
    _app, w, wait, shot = open_window(a.out)

    wait(lambda: w.session.model is not None, "the demo model")
    w.data_page.sample_buttons["pirate_trivia.jsonl"].click()
    wait(lambda: w.session.data_report is not None, "the dataset")
    shot("Data", "1-data")
    shot("Model", "2-model")
    w.plan_page.max_steps.setValue(a.steps)
    w.plan_page.eval_every.setValue(max(1, a.steps // 4))
    shot("Plan", "3-plan")
    w.plan_page.vram.setValue(8)  # the same plan for an RTX 4060: the memory bar appears
    shot("Plan", "3-plan-8gb")
    w.plan_page.vram.setValue(0)
    w.train()
    wait(lambda: w.train_page.last_status is not None and not w.controller.running, "the training", 1800)
    shot("Train", "4-train-finished")
    c = w.compare_page
    w.show_page("Compare")
    c.open_run(w.train_page.run_dir)
    wait(lambda: c.chat is not None, "the run to load")
    c.max_new.setValue(48)
    c.prompt.setPlainText("What is the capital of France?")
    c.ask()
    wait(lambda: not c.busy, "both answers")
    c.val_n.setValue(3)
    c.compare_validation()
    wait(lambda: not c.busy, "the validation compare")
    shot("Compare", "5-compare")
    shot("Runs", "6-runs")
    w.runs_page.table.selectRow(0)
    shot("Runs", "6-runs")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
