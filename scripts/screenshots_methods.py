"""Render the pages issue 20 changed, at 1280x800, after a real (short) DPO training of the
demo model: the Data page's preview of a preference file (chosen and rejected side by
side), the Plan page's Method choice (DPO, and GRPO's settings), the Train page with DPO's
plots, the Runs page with the Method column.

    python3 scripts/screenshots_methods.py [--out docs/screenshots] [--steps 6] [--model demo]

Offscreen, a fresh settings folder; the data are tests/preference_set.py's tickets.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--model", default="demo")
    ap.add_argument("--no-train", action="store_true", help="only the Data and Plan pages (quick)")
    a = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TUNEDESK_HOME", tempfile.mkdtemp(prefix="tunedesk-shots-"))
    from preference_set import write_preference_set
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from gui import theme
    from gui.main_window import MainWindow

    theme.apply(app)
    w = MainWindow()
    w.resize(1280, 800)
    w.show()
    w.session.cfg.out_dir = tempfile.mkdtemp(prefix="tunedesk-shots-runs-")
    w.session.load_engine()

    def wait(cond, what: str, timeout: float = 1800) -> None:
        end = time.monotonic() + timeout
        while not cond():
            app.processEvents()
            time.sleep(0.02)
            if time.monotonic() > end:
                raise SystemExit(f"timed out waiting for {what}")

    def shot(page: str, name: str) -> None:
        w.show_page(page)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)
        a.out.mkdir(parents=True, exist_ok=True)
        w.grab().save(str(a.out / f"{name}.png"))
        print("wrote", a.out / f"{name}.png")

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
