"""Long jobs in a separate process (no Qt here).

Some libraries hold Python's GIL for seconds inside one C call (formatting a multi-million-line
OBJ, say); in a thread that freezes the window however the work is scheduled. Exports therefore
run in a child process: the window's worker thread only relays progress and the cancel flag, and
a child that does not stop in time is terminated. Files are staged per photo (core.export_jobs),
so a cancelled or killed export leaves whole photos or nothing.
"""
from __future__ import annotations

import queue
import shutil
import time
import traceback
from pathlib import Path


class Cancelled(Exception):
    """Raised inside a job when the user cancelled it."""


class CancellableContext:
    """What every task context has: the cancel flag, and check() to stop at a safe point."""

    def __init__(self, cancel_event) -> None:
        self.cancel_event = cancel_event
        self._last = 0.0

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()


class ProcessContext(CancellableContext):
    """The child's side of TaskContext: progress goes through a queue, cancel is an Event."""

    def __init__(self, messages, cancel_event) -> None:
        super().__init__(cancel_event)
        self.messages = messages
        self.sub = None

    def progress(self, fraction: float, message: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= 0.05 or fraction >= 1.0:
            self._last = now
            self.messages.put(("progress", float(fraction), message))
        self.check()


def _child(fn, args, messages, cancel_event, niceness: int = 5) -> None:
    import os

    from depthstudio.errors import DepthStudioError

    try:
        os.nice(niceness)  # the window's process keeps the CPU it needs to stay responsive
    except (AttributeError, OSError):
        pass

    ctx = ProcessContext(messages, cancel_event)
    try:
        result = fn(ctx, *args)
        ctx.check()
    except Cancelled:
        messages.put(("cancelled",))
    except DepthStudioError as exc:
        messages.put(("failed", str(exc), ""))
    except MemoryError:
        messages.put(("failed", "out of memory; try fewer faces or a larger grid stride", ""))
    except BaseException as exc:  # a bug: report it, the window stays up
        messages.put(("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    else:
        messages.put(("done", result))


def run_in_process(ctx, fn, *args, grace_s: float = 3.0, cleanup=None):
    """Run ``fn(ctx, *args)`` in a fresh process; relay progress to ``ctx`` (a TaskContext).

    Returns fn's result; raises Cancelled when cancelled, DepthStudioError when it failed.
    ``cleanup()`` runs after the child is gone, whatever happened.
    """
    import multiprocessing as mp

    from depthstudio.errors import DepthStudioError

    spawn = mp.get_context("spawn")  # never fork a process that holds Qt and OpenGL state
    messages = spawn.Queue()
    cancel_event = spawn.Event()
    child = spawn.Process(target=_child, args=(fn, args, messages, cancel_event), daemon=True,
                          name="depthstudio-export")
    child.start()
    outcome = None
    cancel_deadline = None
    try:
        while outcome is None:
            if ctx is not None and ctx.cancelled and cancel_deadline is None:
                cancel_event.set()
                cancel_deadline = time.monotonic() + grace_s
            try:
                message = messages.get(timeout=0.05)
            except queue.Empty:
                if cancel_deadline is not None and time.monotonic() > cancel_deadline:
                    child.terminate()  # stuck in a long C call: stop it; staging is removed below
                    outcome = ("cancelled",)
                elif not child.is_alive():
                    try:
                        outcome = messages.get(timeout=0.5)
                    except queue.Empty:
                        outcome = ("failed", f"the export process stopped unexpectedly (exit code {child.exitcode})", "")
                continue
            if message[0] == "progress":
                if ctx is not None and not ctx.cancelled:
                    try:
                        ctx.progress(message[1], message[2])
                    except Cancelled:
                        pass
            else:
                outcome = message
    finally:
        child.join(grace_s)
        if child.is_alive():
            child.terminate()
            child.join(grace_s)
        messages.close()
        if cleanup is not None:
            cleanup()
    kind = outcome[0]
    if kind == "done":
        return outcome[1]
    if kind == "cancelled":
        raise Cancelled()
    if outcome[2]:
        raise RuntimeError(f"{outcome[1]}\n{outcome[2]}")
    raise DepthStudioError(outcome[1])


def remove_staging(folder: Path) -> None:
    """Remove export staging folders left in ``folder`` by a stopped export."""
    from depthstudio.app.core import STAGING_PREFIX

    folder = Path(folder)
    if folder.is_dir():
        for staging in folder.glob(STAGING_PREFIX + "*"):
            shutil.rmtree(staging, ignore_errors=True)


def export_in_process(ctx, jobs, sections, folder):
    """core.export_jobs in a child process; the cached depths it made come back with the result."""
    from depthstudio.app import core

    result = run_in_process(ctx, core.export_jobs_with_depths, jobs, sections, folder,
                            cleanup=lambda: remove_staging(folder))
    return result
