"""End to end through the real window: a bundled sample, the demo model, Train, a few
real steps; and the event loop stays responsive while it trains."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QTimer

from gui_helpers import load_sample

STEPS = 6


def test_train_the_demo_from_the_window_and_stay_responsive(qtbot, window):
    w = window
    load_sample(qtbot, w)
    w.plan_page.max_steps.setValue(STEPS)
    w.plan_page.eval_every.setValue(3)

    # Event-loop latency: a 10 ms timer on the UI thread; any gap far above 10 ms is time
    # the UI thread spent busy (or starved) while the training thread ran.
    gaps: list[tuple[float, float]] = []  # (when, gap)
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now, now - last[0]))
        last[0] = now


    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)

    finished = []
    w.train_page.training_finished.connect(finished.append)
    with qtbot.waitSignal(w.controller.started, timeout=300_000):
        w.train_button.click()
    last[0] = time.perf_counter()
    timer.start()
    qtbot.waitUntil(lambda: bool(finished), timeout=600_000)
    timer.stop()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=60_000)

    assert finished[0]["status"] == "finished" and finished[0]["summary"]["steps"] == STEPS
    points = w.train_page.plot_points()
    assert points["loss"] == STEPS and points["eval"] >= 2  # step 0, 3 and 6
    assert w.train_page.series["eval"][-1] < w.train_page.series["eval"][0]
    run = Path(finished[0]["run_dir"])
    assert (run / "adapter" / "adapter_model.safetensors").is_file()
    assert w.train_page.progress.value() == STEPS and "step 6 / 6" in w.train_page.progress.format()
    assert "Training finished" in w.train_page.banner.text()

    # The UI thread's own work per event is a few ms; what remains are waits for the GIL
    # while the training thread is inside a library call that holds it. Measured on 2
    # cores: worst 79-113 ms, 99% of ticks on time. ~100 ms is the goal, 150 ms the limit.
    everything = sorted(g for _, g in gaps)
    assert len(everything) > 50
    p99 = everything[int(0.99 * (len(everything) - 1))]
    print(f"event-loop gaps: {len(everything)} ticks, p99 {p99 * 1000:.0f} ms, worst {everything[-1] * 1000:.0f} ms")
    assert p99 < 0.030, f"1% of the 10 ms ticks came more than {p99 * 1000:.0f} ms apart"
    assert everything[-1] < 0.150, f"the UI thread was blocked for {everything[-1] * 1000:.0f} ms"
