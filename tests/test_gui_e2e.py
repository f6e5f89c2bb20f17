"""End to end through the real window: a bundled sample, the demo model, Train, a few
real steps; and the event loop stays responsive while it trains."""

from __future__ import annotations

import time
from pathlib import Path

from gui_helpers import load_sample
from PySide6.QtCore import QTimer

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

    progress_times: list[float] = []
    w.controller.progress.connect(lambda _: progress_times.append(time.perf_counter()))
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
    assert w.train_page.mem_plot.getViewBox().viewRange()[1][0] == 0  # memory is drawn from zero

    # The trained model goes to the Compare page as it is in memory: no reload.
    qtbot.waitUntil(lambda: w.compare_page.chat is not None, timeout=30_000)
    chat = w.compare_page.chat
    assert chat.from_memory and chat.run.path == run and "still in memory" in w.compare_page.banner.text()
    w.compare_page.max_new.setValue(12)
    w.compare_page.prompt.setPlainText("What is the capital of France?")
    w.compare_page.ask()
    qtbot.waitUntil(lambda: not w.compare_page.busy, timeout=120_000)
    assert all(w.compare_page.answers().values())

    # Measured over the training steps (first to last progress event): the one-off work
    # before them (first forward, lazy library imports) and after them (the final adapter
    # write) holds the GIL in library code and is reported, not asserted. The UI thread's
    # own handlers take a few ms; on 2 cores the worst gaps measured 79-113 ms with the
    # machine otherwise idle, and up to 189 ms when another process took a core for a
    # moment. A frozen window shows as many long gaps or one of seconds: at most 3 ticks
    # may come more than 100 ms late, none more than 300 ms.
    steps = sorted(g for t, g in gaps if progress_times[0] <= t <= progress_times[-1])
    everything = sorted(g for _, g in gaps)
    assert len(steps) > 50
    p99 = steps[int(0.99 * (len(steps) - 1))]
    print(f"event-loop gaps while stepping: {len(steps)} ticks, p99 {p99 * 1000:.0f} ms, worst {steps[-1] * 1000:.0f} ms; "
          f"whole run worst {everything[-1] * 1000:.0f} ms")
    assert p99 < 0.030, f"1% of the 10 ms ticks came more than {p99 * 1000:.0f} ms apart"
    late = [g for g in steps if g > 0.100]
    assert len(late) <= 3, f"{len(late)} ticks came more than 100 ms late while training: {late}"
    assert steps[-1] < 0.300, f"the UI thread was blocked for {steps[-1] * 1000:.0f} ms while training"
