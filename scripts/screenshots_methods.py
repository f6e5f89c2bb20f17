"""Render the pages issue 20 changed, at 1280x800, after a real (short) DPO training of the
demo model: the Data page's preview of a preference file (chosen and rejected side by
side), the Plan page's Method choice (DPO, and GRPO's settings), the Train page with DPO's
plots, the Runs page with the Method column.

    python3 scripts/screenshots_methods.py [--out docs/screenshots] [--steps 6] [--model demo]

Offscreen, a fresh settings folder; the data are tests/preference_set.py's tickets.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))
from preference_set import write_preference_set
from shots_window import open_window


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--model", default="demo")
    ap.add_argument("--no-train", action="store_true", help="only the Data and Plan pages (quick)")
    a = ap.parse_args()
    _app, w, wait, shot = open_window(a.out, tempfile.mkdtemp(prefix="tunedesk-shots-runs-"))

    wait(lambda: w.session.model is not None, "the demo model")
    if a.model != "demo":
        w.session.load_model(a.model)
        wait(lambda: w.session.model is not None and w.session.cfg.model.source == a.model, "the model")
    data = write_preference_set(Path(tempfile.mkdtemp()) / "tickets.jsonl", 80)
    w.data_page.open_path(data)
    wait(lambda: w.session.data is not None, "the dataset")
    shot("Data", "7-data-preference")
    box = w.plan_page.method_box
    box.method.setCurrentIndex(box.method.findData("grpo"))
    shot("Plan", "8-method-grpo")
    box.method.setCurrentIndex(box.method.findData("dpo"))
    box.beta.setValue(0.5)
    w.plan_page.max_steps.setValue(a.steps)
    w.plan_page.eval_every.setValue(max(1, a.steps // 3))
    shot("Plan", "8-method-dpo")
    if a.no_train:
        w.close()
        return 0
    w.train()
    wait(lambda: w.train_page.last_status is not None and not w.controller.running, "the training")
    shot("Train", "9-train-dpo")
    w.runs_page.refresh()
    wait(lambda: w.runs_page.table.rowCount() > 0, "the runs list", 60)
    w.runs_page.table.selectRow(0)
    shot("Runs", "10-runs-method")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
