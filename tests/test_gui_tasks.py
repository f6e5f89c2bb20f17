"""The window's one helper for background work (gui/tasks.py): results on the UI thread,
newest request wins per key, plain error messages, busy state, stop and cancel."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QThread


@pytest.fixture
def tasks(qtbot):
    from gui.tasks import Tasks, wait_all

    t = Tasks()
    yield t
    assert wait_all(10_000)


def _record(tasks):
    seen: list[tuple[str, bool]] = []
    tasks.busy_changed.connect(lambda key, busy: seen.append((key, busy)))
    return seen


def test_result_and_progress_arrive_on_the_ui_thread_and_busy_toggles(qtbot, tasks):
    busy = _record(tasks)
    got: list = []
    ui = QThread.currentThread()

    def work(job):
        assert QThread.currentThread() != ui
        for i in range(3):
            job.report(i)
        return "answer"

    tasks.run("k", work, on_progress=lambda v: got.append(("progress", v, QThread.currentThread() == ui)),
              on_done=lambda r: got.append(("done", r, QThread.currentThread() == ui)))
    assert tasks.busy("k") and not tasks.busy("other")
    qtbot.waitUntil(lambda: not tasks.busy("k"), timeout=10_000)
    assert got == [("progress", 0, True), ("progress", 1, True), ("progress", 2, True), ("done", "answer", True)]
    assert busy == [("k", True), ("k", False)]


def test_newest_request_wins_and_the_superseded_result_is_dropped(qtbot, tasks):
    busy = _record(tasks)
    release = threading.Event()
    done: list[str] = []
    progress: list[str] = []

    def slow(job):
        release.wait(10)
        job.report("old progress")
        return "old"

    first = tasks.run("model", slow, on_done=done.append, on_failed=lambda m, d: done.append(m), on_progress=progress.append)
    second = tasks.run("model", lambda job: "new", on_done=done.append, on_progress=progress.append)
    assert first.stopped() and not second.stopped()  # the older job is asked to stop
    qtbot.waitUntil(lambda: done == ["new"], timeout=10_000)
    release.set()
    assert first.wait(10_000)
    qtbot.wait(100)  # anything the old job still sends would be delivered by now
    assert done == ["new"] and progress == []
    assert busy == [("model", True), ("model", False)] and not tasks.busy("model")


def test_a_result_already_queued_is_dropped_when_a_newer_request_comes(qtbot, tasks):
    done: list[str] = []
    first = tasks.run("data", lambda job: "old", on_done=done.append)
    assert first.wait(10_000)  # finished, its result waiting in the UI thread's queue
    tasks.run("data", lambda job: "new", on_done=done.append)
    qtbot.waitUntil(lambda: not tasks.busy("data"), timeout=10_000)
    assert done == ["new"]


def test_errors_become_a_plain_message_with_the_trace_in_the_details(qtbot, tasks):
    from engine.errors import TuneDeskError

    failed: list[tuple[str, str]] = []

    def user_error(job):
        raise TuneDeskError("data.jsonl, row 4: not JSON")

    def bug(job):
        raise RuntimeError("disk on fire")

    tasks.run("a", user_error, on_failed=lambda m, d: failed.append((m, d)))
    tasks.run("b", bug, on_failed=lambda m, d: failed.append((m, d)), unexpected="Export stopped on an unexpected error")
    qtbot.waitUntil(lambda: len(failed) == 2, timeout=10_000)
    messages = dict(failed)
    assert set(messages) == {"data.jsonl, row 4: not JSON", "Export stopped on an unexpected error: RuntimeError: disk on fire"}
    assert all("Traceback" in details for details in messages.values())
    qtbot.waitUntil(lambda: not tasks.busy("a") and not tasks.busy("b"), timeout=10_000)


def test_default_message_of_a_bug(qtbot, tasks):
    failed: list[str] = []
    tasks.run("k", lambda job: 1 / 0, on_failed=lambda m, d: failed.append(m))
    qtbot.waitUntil(lambda: bool(failed), timeout=10_000)
    assert failed == ["Unexpected error: ZeroDivisionError: division by zero"]


def test_stop_ends_the_work_early_and_its_result_still_arrives(qtbot, tasks):
    started = threading.Event()
    done: list[str] = []

    def until_stopped(job):
        started.set()
        while not job.stopped():
            job.report("token")
            QThread.msleep(5)
        return "partial"

    tasks.run("chat", until_stopped, on_done=done.append)
    assert started.wait(10)
    tasks.stop("chat")
    assert tasks.busy("chat")  # busy until the work has returned and its result arrived
    qtbot.waitUntil(lambda: not tasks.busy("chat"), timeout=10_000)
    assert done == ["partial"]


def test_cancel_drops_the_job_and_frees_the_key_at_once(qtbot, tasks):
    busy = _record(tasks)
    release = threading.Event()
    done: list[str] = []

    def slow(job):
        release.wait(10)
        return "late"

    job = tasks.run("data", slow, on_done=done.append, on_failed=lambda m, d: done.append(m))
    tasks.cancel("data")
    assert not tasks.busy("data") and job.stopped()
    assert busy == [("data", True), ("data", False)]
    release.set()
    assert job.wait(10_000)
    qtbot.wait(100)
    assert done == []
    tasks.cancel("data")  # nothing running: nothing happens
    assert busy == [("data", True), ("data", False)]


def test_a_long_job_keeps_the_shared_pool_free(qtbot, tasks):
    from PySide6.QtCore import QThreadPool

    release = threading.Event()
    long_done: list[str] = []
    tasks.run("train", lambda job: release.wait(10) and "trained", on_done=long_done.append, long=True)
    # Every thread of the shared pool is still there for short jobs while the long one runs:
    # as many short jobs as the pool has threads all run at once.
    n = QThreadPool.globalInstance().maxThreadCount()
    together = threading.Barrier(n, timeout=5)
    short: list[int] = []

    def meet(job):
        together.wait()
        return 1

    for i in range(n):
        tasks.run(f"short{i}", meet, on_done=short.append)
    qtbot.waitUntil(lambda: len(short) == n, timeout=10_000)
    assert tasks.busy("train") and not long_done
    release.set()
    qtbot.waitUntil(lambda: not tasks.busy("train"), timeout=10_000)
    assert long_done == ["trained"]
