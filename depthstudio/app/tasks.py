"""Work off the UI thread: a thin Qt adapter over the core Job protocol.

A task is ``fn(job, *args)`` with a :class:`depthstudio.app.jobs.TaskJob`; results, progress and
intermediate values come back to the UI thread through queued Qt signals. The controller
(depthstudio.app.controller) only sees ``run(...)`` and ``debounce(...)``.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from depthstudio.app.jobs import Cancelled, Job, TaskJob
from depthstudio.errors import DepthStudioError

#: How much nicer than the UI thread background work runs, per channel (Linux nice levels; 0 = same).
NICENESS = {"depth": 0, "load": 0, "geometry": 0, "effects": 2, "download": 5, "export": 0, "video": 2}
#: Channels of live previews: quick, and they would make the progress bar flicker.
PREVIEW_CHANNELS = ("geometry", "effects")
_niced = threading.local()


def lower_priority(niceness: int) -> None:
    """Lower this pool thread's CPU priority once (threads it starts inherit it)."""
    if getattr(_niced, "done", False) or niceness <= 0:
        return
    _niced.done = True
    try:
        import os

        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except (AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        pass


class TaskSignals(QObject):
    progress = Signal(float, str)  # fraction (-1: unknown), message
    partial = Signal(object)
    done = Signal(object)
    failed = Signal(str, str)  # message for the user, details (traceback for unexpected errors)
    cancelled = Signal()
    finished = Signal()  # after done / failed / cancelled


class Task(QRunnable):
    """One piece of background work and its job."""

    def __init__(self, fn: Callable, *args, name: str = "", channel: str = "work") -> None:
        super().__init__()
        self.setAutoDelete(False)  # the runner keeps it until its signals have been delivered
        self.fn = fn
        self.args = args
        self.name = name or getattr(fn, "__name__", "task")
        self.channel = channel
        self.signals = TaskSignals()
        self._last = 0.0
        self.job = TaskJob(listener=self._report, on_partial=self.signals.partial.emit)
        self.result = None
        self.error: str | None = None
        self.state = "pending"  # pending | running | done | failed | cancelled

    def _report(self, job: Job) -> None:
        # at most ~20 reports a second: a flood of queued signals would itself stall the UI
        now = time.monotonic()
        fraction = job.fraction
        if now - self._last >= 0.05 or (fraction is not None and fraction >= 1.0):
            self._last = now
            self.signals.progress.emit(-1.0 if fraction is None else float(fraction), job.message or "")

    def cancel(self) -> None:
        self.job.cancel()

    @property
    def is_cancelled(self) -> bool:
        return self.job.cancelled

    def run(self) -> None:  # worker thread
        lower_priority(NICENESS.get(self.channel, 0))
        self.state = "running"
        try:
            self.job.check()
            result = self.fn(self.job, *self.args)
            self.job.check()
        except Cancelled:
            self.state = "cancelled"
            self.signals.cancelled.emit()
        except DepthStudioError as exc:
            self.state, self.error = "failed", str(exc)
            self.signals.failed.emit(str(exc), "")
        except MemoryError:
            self.state, self.error = "failed", "out of memory"
            self.signals.failed.emit(f"{self.name}: out of memory; try a smaller input size or fewer faces", "")
        except Exception as exc:  # a bug: keep the window alive and show the details
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            self.signals.failed.emit(f"{self.name} failed unexpectedly: {exc}", traceback.format_exc())
        else:
            self.state, self.result = "done", result
            self.signals.done.emit(result)
        self.signals.finished.emit()


class TaskRunner(QObject):
    """Runs tasks on per-channel pools; a new task on a 'replace' channel cancels the older one."""

    started = Signal(object)  # Task
    finished = Signal(object)  # Task

    #: channel -> number of threads. Two cores are common: inference and export get one each.
    CHANNELS = {"load": 1, "depth": 1, "geometry": 1, "effects": 1, "export": 1, "download": 1, "video": 1}

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pools: dict[str, QThreadPool] = {}
        self._timers: dict[str, QTimer] = {}
        self._pending: dict[str, Callable[[], None]] = {}
        self.active: list[Task] = []

    def pool(self, channel: str) -> QThreadPool:
        if channel not in self._pools:
            pool = QThreadPool(self)
            pool.setMaxThreadCount(self.CHANNELS.get(channel, 1))
            pool.setExpiryTimeout(-1)
            self._pools[channel] = pool
        return self._pools[channel]

    def run(self, fn: Callable, *args, channel: str = "work", name: str = "", replace: bool = False,
            on_done: Callable | None = None, on_failed: Callable | None = None,
            on_progress: Callable | None = None, on_cancelled: Callable | None = None,
            on_partial: Callable | None = None) -> Task:
        task = Task(fn, *args, name=name, channel=channel)
        for signal, slot in ((task.signals.partial, on_partial), (task.signals.done, on_done),
                             (task.signals.failed, on_failed), (task.signals.progress, on_progress),
                             (task.signals.cancelled, on_cancelled)):
            if slot is not None:
                signal.connect(slot)
        if replace:
            for other in self.active:
                if other.channel == channel:
                    other.cancel()
        self.active.append(task)
        task.signals.finished.connect(lambda t=task: self._finish(t))
        self.started.emit(task)
        self.pool(channel).start(task)
        return task

    def debounce(self, key: str, ms: int, fn: Callable[[], None]) -> None:
        """Call ``fn`` once, ``ms`` after the last call with this key (a dragged spin box rebuilds once)."""
        self._pending[key] = fn
        timer = self._timers.get(key)
        if timer is None:
            timer = self._timers[key] = QTimer(self, singleShot=True)
            timer.timeout.connect(lambda k=key: self._pending.pop(k, lambda: None)())
        timer.start(ms)

    def _finish(self, task: Task) -> None:
        if task in self.active:
            self.active.remove(task)
        self.finished.emit(task)

    def busy(self, channel: str | None = None) -> bool:
        return any(channel is None or t.channel == channel for t in self.active)

    def cancel_all(self, channel: str | None = None) -> None:
        for task in list(self.active):
            if channel is None or task.channel == channel:
                task.cancel()

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Block until every pool is idle (used when the window closes)."""
        ok = True
        for pool in self._pools.values():
            ok &= pool.waitForDone(timeout_ms)
        return ok
