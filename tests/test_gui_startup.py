"""The window shows before the heavy libraries load (they load behind it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO

SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gui import theme
from gui.main_window import MainWindow
theme.apply(app)
w = MainWindow()
w.show()
app.processEvents()
print(json.dumps({"shown_s": time.perf_counter() - t0, "torch": "torch" in sys.modules,
                  "transformers": "transformers" in sys.modules, "title": w.windowTitle(),
                  "page": w.stack.currentIndex()}))
"""


def test_window_shows_without_importing_torch(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TUNEDESK_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["title"] == "TuneDesk" and r["page"] == 0
    assert not r["torch"] and not r["transformers"], "heavy imports must wait until the window is up"
    print(f"window shown {r['shown_s']:.2f} s after the interpreter started")
