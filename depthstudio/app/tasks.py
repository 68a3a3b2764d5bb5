"""Work off the UI thread: tasks with progress and cancel, run on small thread pools.

A task is a plain function ``fn(ctx, *args)``; ``ctx.progress(fraction, message)`` reports and
``ctx.check()`` raises Cancelled once the user pressed Cancel (a threading.Event the core's
functions may also accept). Results come back to the UI thread through queued Qt signals.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from depthstudio.app.jobs import CancellableContext, Cancelled  # Qt-free, shared with child processes
from depthstudio.errors import DepthStudioError

#: How much nicer than the UI thread background work runs, per channel (Linux nice levels; 0 = same).
#: Inference stays at 0: ONNX Runtime releases the GIL, the scheduler already favours the mostly
#: idle UI thread, and a niced model runs several times slower on a busy machine.
NICENESS = {"depth": 0, "load": 0, "geometry": 0, "effects": 2, "download": 5, "export": 0}
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


class TaskContext(CancellableContext):
    """What a task function gets: progress reporting and the cancel flag."""

    def __init__(self, signals: TaskSignals, cancel_event: threading.Event) -> None:
        super().__init__(cancel_event)
        self._signals = signals

    def partial(self, value) -> None:
        """Hand an intermediate result to the UI thread (e.g. the depth view before the mesh)."""
        self.check()
        self._signals.partial.emit(value)

    def progress(self, fraction: float, message: str = "", force: bool = False) -> None:
        # at most ~20 reports a second: a flood of queued signals would itself stall the UI
        now = time.monotonic()
        if force or now - self._last >= 0.05 or fraction >= 1.0:
            self._last = now
            self._signals.progress.emit(float(fraction), message)
        self.check()


class TaskSignals(QObject):
    progress = Signal(float, str)
    partial = Signal(object)
    done = Signal(object)
    failed = Signal(str, str)  # message for the user, details (traceback for unexpected errors)
    cancelled = Signal()
    finished = Signal()  # after done / failed / cancelled


class Task(QRunnable):
    """One piece of background work."""

    def __init__(self, fn: Callable, *args, name: str = "", channel: str = "work") -> None:
        super().__init__()
        self.setAutoDelete(False)  # the runner keeps it until its signals have been delivered
        self.fn = fn
        self.args = args
        self.name = name or getattr(fn, "__name__", "task")
        self.channel = channel
        self.cancel_event = threading.Event()
        self.signals = TaskSignals()
        self.result = None
        self.error: str | None = None
        self.state = "pending"  # pending | running | done | failed | cancelled

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def is_cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def run(self) -> None:  # worker thread
        lower_priority(NICENESS.get(self.channel, 0))
        self.state = "running"
        ctx = TaskContext(self.signals, self.cancel_event)
        try:
            if self.cancel_event.is_set():
                raise Cancelled()
            result = self.fn(ctx, *self.args)
            if self.cancel_event.is_set():
                raise Cancelled()
        except Cancelled:
            self.state = "cancelled"
            self.signals.cancelled.emit()
        except DepthStudioError as exc:
            self.state = "failed"
            self.error = str(exc)
            self.signals.failed.emit(str(exc), "")
        except MemoryError:
            self.state = "failed"
            self.error = "out of memory"
            self.signals.failed.emit(f"{self.name}: out of memory; try a smaller input size or fewer faces", "")
        except Exception as exc:  # a bug: keep the window alive and show the details
            self.state = "failed"
            self.error = f"{type(exc).__name__}: {exc}"
            self.signals.failed.emit(f"{self.name} failed unexpectedly: {exc}", traceback.format_exc())
        else:
            self.state = "done"
            self.result = result
            self.signals.done.emit(result)
        self.signals.finished.emit()


class TaskRunner(QObject):
    """Runs tasks on per-channel pools; a new task on a 'latest wins' channel cancels the older one."""

    started = Signal(object)  # Task
    finished = Signal(object)  # Task
    busy_changed = Signal(bool)

    #: channel -> number of threads. Two cores are common: inference and export get one each.
    CHANNELS = {"load": 1, "depth": 1, "geometry": 1, "effects": 1, "export": 1, "download": 1}

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pools: dict[str, QThreadPool] = {}
        self.active: list[Task] = []

    def pool(self, channel: str) -> QThreadPool:
        if channel not in self._pools:
            pool = QThreadPool(self)
            pool.setMaxThreadCount(self.CHANNELS.get(channel, 1))
            pool.setExpiryTimeout(-1)
            self._pools[channel] = pool
        return self._pools[channel]

    def submit(self, task: Task, replace: bool = False) -> Task:
        if replace:
            for other in self.active:
                if other.channel == task.channel:
                    other.cancel()
        self.active.append(task)
        task.signals.finished.connect(lambda t=task: self._finish(t))
        was_busy = len(self.active) > 1
        self.started.emit(task)
        if not was_busy:
            self.busy_changed.emit(True)
        self.pool(task.channel).start(task)
        return task

    def run(self, fn: Callable, *args, channel: str = "work", name: str = "", replace: bool = False,
            on_done: Callable | None = None, on_failed: Callable | None = None,
            on_progress: Callable | None = None, on_cancelled: Callable | None = None,
            on_partial: Callable | None = None) -> Task:
        task = Task(fn, *args, name=name, channel=channel)
        if on_partial:
            task.signals.partial.connect(on_partial)
        if on_done:
            task.signals.done.connect(on_done)
        if on_failed:
            task.signals.failed.connect(on_failed)
        if on_progress:
            task.signals.progress.connect(on_progress)
        if on_cancelled:
            task.signals.cancelled.connect(on_cancelled)
        return self.submit(task, replace=replace)

    def _finish(self, task: Task) -> None:
        if task in self.active:
            self.active.remove(task)
        self.finished.emit(task)
        if not self.active:
            self.busy_changed.emit(False)

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
