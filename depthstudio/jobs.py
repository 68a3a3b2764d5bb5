"""One progress/cancel protocol for every long job, whatever runs it.

A :class:`Job` counts steps, carries a message, and a cancelled flag. Long loops call
``job.check()`` between chunks (it raises :class:`Cancelled`) and ``job.advance()``; a sub-step gets
``job.sub(weight)``, a child job whose progress fills ``weight`` steps of its parent. Front ends
listen: the CLI draws a tqdm bar, the GUI posts to its event loop, the add-on moves Blender's
progress cursor, Ray workers report to the driver. ``cancel_on_signals()`` turns SIGINT and
SIGTERM into a cancel, so every writer stops at its next chunk and removes its temporary files.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from depthstudio.errors import DepthStudioError

T = TypeVar("T")
Listener = Callable[["Job"], None]


class Cancelled(DepthStudioError):
    """The job was cancelled (by the user, a signal, or a closing window)."""

    def __init__(self, message: str = "cancelled", signum: int | None = None):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)


class Job:
    """Progress and cancellation of one piece of work (thread-safe for one writer and many readers)."""

    def __init__(self, total: float | None = None, message: str = "", listener: Listener | None = None,
                 cancel_event: threading.Event | None = None):
        self.total = total
        self.done = 0.0
        self.message = message
        self._listeners: list[Listener] = [listener] if listener else []
        self._cancel = cancel_event or threading.Event()
        self.signum: int | None = None
        self._parent: Job | None = None
        self._weight = 0.0
        self._base = 0.0

    # -- reporting -------------------------------------------------------------------------------
    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def start(self, total: float | None, message: str | None = None) -> Job:
        self.total, self.done = total, 0.0
        if message is not None:
            self.message = message
        self._notify()
        return self

    def advance(self, n: float = 1.0, message: str | None = None) -> None:
        self.check()
        self.done += n
        if message is not None:
            self.message = message
        self._notify()

    def set_message(self, message: str) -> None:
        self.message = message
        self._notify()

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener(self)
        parent = self._parent
        if parent is not None:
            frac = self.fraction or 0.0
            parent.done = self._base + self._weight * frac
            if self.message:
                parent.message = self.message
            parent._notify()

    def sub(self, weight: float = 1.0, total: float | None = None, message: str = "") -> Job:
        """A child job filling ``weight`` of this job's steps; it shares the cancel flag."""
        child = Job(total, message, cancel_event=self._cancel)
        child._parent, child._weight, child._base = self, weight, self.done
        return child

    def iterate(self, items: Iterable[T], total: int | None = None, message: str | None = None) -> Iterator[T]:
        """Yield items, checking for cancel before each and advancing after it."""
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        self.start(total, message)
        for item in items:
            self.check()
            yield item
            self.advance()

    # -- cancelling ------------------------------------------------------------------------------
    def cancel(self, signum: int | None = None) -> None:
        if signum is not None and self.signum is None:
            self.signum = signum
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the job was cancelled."""
        if self._cancel.is_set():
            root = self
            while root._parent is not None:
                root = root._parent
            signum = root.signum or self.signum
            raise Cancelled("interrupted" if signum else "cancelled", signum)


def check(job: Job | None) -> None:
    """``job.check()`` for optional jobs."""
    if job is not None:
        job.check()


def advance(job: Job | None, n: float = 1.0, message: str | None = None) -> None:
    if job is not None:
        job.advance(n, message)


@contextlib.contextmanager
def cancel_on_signals(job: Job, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[Job]:
    """While the block runs, SIGINT/SIGTERM cancel ``job`` (a second one stops at once).

    Only in the main thread (Python delivers signals there); elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield job
        return
    previous = {}

    def handler(signum, frame):  # the signal module's signature
        if job.cancelled:  # the second signal: the user means it
            raise Cancelled("interrupted", signum)
        job.cancel(signum)

    for s in signals:
        previous[s] = signal.signal(s, handler)
    try:
        yield job
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def tqdm_listener(desc: str = "", unit: str = "it", enabled: bool = True) -> tuple[Listener, Callable[[], None]]:
    """A listener drawing one tqdm bar on stderr, and a function that closes it."""
    import sys

    from tqdm import tqdm

    bar = tqdm(total=None, desc=desc, unit=unit, disable=not enabled, file=sys.stderr, leave=False)

    def listen(job: Job) -> None:
        if job.total is not None and bar.total != job.total:
            bar.total = job.total
        bar.n = job.done
        if job.message:
            bar.set_postfix_str(job.message, refresh=False)
        bar.refresh()

    return listen, bar.close
