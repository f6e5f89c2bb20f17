"""`--self-test` through the frozen app's entry script, unfrozen: every check passes and
says so on its own line. (scripts/build_installer.sh runs the same on the built app.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow  # trains the demo model 2 steps (about 25 s on 2 CPU cores)

CHECKS = ["window", "engine", "hardware", "train", "chat"]


def test_self_test_passes_every_check(demo_folder):
    # demo_folder: the shared test cache (TUNEDESK_HOME from conftest) holds the converted
    # demo model, so the self-test does not convert it again.
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "scripts/tunedesk_launcher.py", "--self-test"], capture_output=True,
                       text=True, env=env, cwd=REPO, timeout=600, check=False)
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert [line.split()[1] for line in lines[:-1]] == CHECKS, lines
    assert all(line.startswith("OK ") and line.endswith(" s)") for line in lines[:-1]), lines
    assert lines[-1] == "self-test passed"
    assert " -> " in lines[-2]  # the chat line shows the answer


def test_a_failing_check_is_one_line_and_exit_1(monkeypatch):
    from gui import self_test

    def broken(state):
        raise RuntimeError("no GPU driver")

    monkeypatch.setattr(self_test, "CHECKS", [("hardware", broken), ("chat", self_test._chat)])
    lines: list[str] = []
    assert self_test.run_self_test(out=lines.append) == 1
    assert lines[0].startswith("FAIL hardware RuntimeError: no GPU driver (")
    assert lines[1].startswith("FAIL chat     RuntimeError: no tuned run")
    assert lines[2] == "self-test FAILED (2 of 2 checks)"
