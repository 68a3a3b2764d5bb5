"""The app's side of the core progress/cancel protocol (depthstudio.jobs); no Qt here.

Background work in the window is a plain function ``fn(job, *args)`` taking a core
:class:`~depthstudio.jobs.Job`: ``job.check()`` stops it at a safe point after Cancel,
``job.start/advance/set_message`` report. :class:`TaskJob` adds one thing a window needs:
``job.partial(value)`` hands an intermediate result to the UI (the depth view before the mesh).
Child processes (exports, inference) use depthstudio.workers, which relays the same protocol.
"""
from __future__ import annotations

from collections.abc import Callable

from depthstudio.jobs import Cancelled, Job
from depthstudio.workers import run_in_process

__all__ = ["Cancelled", "Job", "TaskJob", "run_in_process"]


class TaskJob(Job):
    """A Job whose intermediate results reach the UI thread through ``on_partial``."""

    def __init__(self, listener: Callable[[Job], None] | None = None,
                 on_partial: Callable[[object], None] | None = None) -> None:
        super().__init__(listener=listener)
        self._on_partial = on_partial

    def partial(self, value) -> None:
        self.check()
        if self._on_partial is not None:
            self._on_partial(value)
