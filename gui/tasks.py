"""Background work for the whole window: the one way a page runs something slow.

The UI thread never waits on disk, network or torch. A page hands `Tasks.run` a key and
a function; the function runs on a pool thread, and what it reports on the way (streamed
tokens, download bytes, training events), its result and its error (a plain message for
the user, the traceback kept as details) come back as queued signals on the UI thread.

Per key, the newest request wins: a later `run` on the same key asks the running job to
stop and drops whatever it still delivers, so a slow answer never overwrites a newer
choice. `busy(key)` and `busy_changed` say whether a key's work is running, so pages keep
no flags of their own. A long job (a training) runs in a pool of its own: it never holds
one of the few threads the short jobs share (two on a 2-core machine).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal, Slot

from engine import logs
from engine.errors import TuneDeskError

log = logs.get("gui")
_LONG_POOL = QThreadPool()


class Job(QObject):
    """One request. The work function gets it: `report(value)` sends a value to the page,
    `stopped()` says the page asked it to end early (both safe from any thread)."""

    _value = Signal(object)
    _end = Signal(object, object)  # result, None | (message, details)

    def __init__(self, key: str, work: Callable[[Job], Any], unexpected: str, *, on_done: Callable[[Any], None] | None,
                 on_failed: Callable[[str, str], None] | None, on_progress: Callable[[Any], None] | None,
                 on_end: Callable[[Job], None]) -> None:
        super().__init__()  # no parent: a page going away must not delete a job still running
        self.key, self.work, self.unexpected = key, work, unexpected
        self.on_done, self.on_failed, self.on_progress, self.on_end = on_done, on_failed, on_progress, on_end
        self.dropped = False  # superseded or cancelled: nothing more reaches the page (UI thread only)
        self._stop, self._returned = threading.Event(), threading.Event()
        # Queued explicitly: the slots run on the UI thread, where this object lives.
        self._value.connect(self._deliver_value, Qt.ConnectionType.QueuedConnection)
        self._end.connect(self._deliver_end, Qt.ConnectionType.QueuedConnection)

    def report(self, value: Any) -> None:
        self._value.emit(value)

    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    def wait(self, ms: int) -> bool:
        """Block until the work function has returned (its signals may still be queued)."""
        return self._returned.wait(ms / 1000)

    def execute(self) -> None:
        """The pool thread: run the work; every outcome becomes one queued signal."""
        try:
            result, error = self.work(self), None
        except TuneDeskError as e:  # a message written for the user
            log.warning("%s failed: %s", self.key, e)
            result, error = None, (str(e), traceback.format_exc())
        except Exception as e:  # a bug or a library error: a plain line first, the trace in the details
            log.exception("%s crashed", self.key)
            result, error = None, (f"{self.unexpected}: {type(e).__name__}: {e}", traceback.format_exc())
        self._returned.set()
        self._end.emit(result, error)

    @Slot(object)
    def _deliver_value(self, value: Any) -> None:
        if not self.dropped and self.on_progress is not None:
            self.on_progress(value)

    @Slot(object, object)
    def _deliver_end(self, result: Any, error: tuple[str, str] | None) -> None:
        try:
            if self.dropped:
                return
            if error is None:
                if self.on_done is not None:
                    self.on_done(result)
            elif self.on_failed is not None:
                self.on_failed(*error)
        finally:
            self.on_end(self)  # the key is free even when a page's handler raised


class Tasks(QObject):
    """The background jobs of one owner (a page, the session), by key."""

    busy_changed = Signal(str, bool)  # key, busy

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._current: dict[str, Job] = {}  # the newest job of each busy key
        self._alive: set[Job] = set()  # every job whose end is not delivered yet, dropped ones too

    def run(self, key: str, work: Callable[[Job], Any], *, on_done: Callable[[Any], None] | None = None,
            on_failed: Callable[[str, str], None] | None = None, on_progress: Callable[[Any], None] | None = None,
            long: bool = False, unexpected: str = "Unexpected error") -> Job:
        """Run `work(job)` off the UI thread; it supersedes the job running on `key`.

        On the UI thread: `on_progress(value)` for each `job.report(value)`, then
        `on_done(result)` or `on_failed(message, details)`, then `busy_changed(key, False)`
        (unless a newer job on `key` is running). A bug's message starts with `unexpected`."""
        old = self._current.get(key)
        if old is not None:
            self._drop(old)
        job = Job(key, work, unexpected, on_done=on_done, on_failed=on_failed, on_progress=on_progress,
                  on_end=self._ended)
        self._current[key] = job
        self._alive.add(job)
        (_LONG_POOL if long else QThreadPool.globalInstance()).start(job.execute)
        if old is None:
            self.busy_changed.emit(key, True)
        return job

    def busy(self, key: str) -> bool:
        return key in self._current

    def stop(self, key: str) -> None:
        """Ask the job on `key` to end early; what it returns still arrives."""
        if (job := self._current.get(key)) is not None:
            job.stop()

    def cancel(self, key: str) -> None:
        """Drop the job on `key`: asked to stop, nothing more from it arrives, the key is free."""
        if (job := self._current.pop(key, None)) is not None:
            self._drop(job)
            self.busy_changed.emit(key, False)

    def wait(self, key: str, ms: int) -> bool:
        """Block until the job on `key` (if any) has returned; for shutdown and tests."""
        job = self._current.get(key)
        return job.wait(ms) if job is not None else True

    def _ended(self, job: Job) -> None:
        self._alive.discard(job)
        if self._current.get(job.key) is job:  # still the newest: the key is free now
            del self._current[job.key]
            self.busy_changed.emit(job.key, False)

    @staticmethod
    def _drop(job: Job) -> None:
        job.dropped = True
        job.stop()


def wait_all(ms: int = 30000) -> bool:
    """For tests and shutdown: wait until no background work runs."""
    return QThreadPool.globalInstance().waitForDone(ms) and _LONG_POOL.waitForDone(ms)
