"""Short background jobs (read a dataset, load a model card, probe the GPU, download).

The UI thread never waits on disk, network or torch: it hands a function to Qt's thread
pool and gets the result (or a user-readable error) back as a queued signal.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from engine.errors import TuneDeskError


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(str, str)  # message for the user, details (traceback) for the curious


class Task(QRunnable):
    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the Python object outlives run(); _running keeps it alive
        self.fn, self.args = fn, args
        self.signals = _Signals()  # created on the UI thread: its signals are queued there

    def run(self) -> None:
        try:
            result = self.fn(*self.args)
        except TuneDeskError as e:
            self.signals.failed.emit(str(e), traceback.format_exc())
        except Exception as e:  # a bug: the user gets a plain line, the details keep the trace
            self.signals.failed.emit(f"Unexpected error: {type(e).__name__}: {e}", traceback.format_exc())
        else:
            self.signals.done.emit(result)


_running: set[Task] = set()


def run_task(fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], None] | None = None,
             on_failed: Callable[[str, str], None] | None = None) -> Task:
    task = Task(fn, *args)
    if on_done:
        task.signals.done.connect(on_done)
    if on_failed:
        task.signals.failed.connect(on_failed)
    _running.add(task)
    task.signals.done.connect(lambda _: _running.discard(task))
    task.signals.failed.connect(lambda *_: _running.discard(task))
    QThreadPool.globalInstance().start(task)
    return task


def wait_all(ms: int = 30000) -> bool:
    """For tests and shutdown: wait until the pool is idle."""
    return QThreadPool.globalInstance().waitForDone(ms)
