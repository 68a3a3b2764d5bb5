"""Work in child processes that a cancel can stop at once (no Qt here).

Two things run in a separate process for a front end that must stay responsive:

- :func:`run_in_process` runs one function (an export, say) in a fresh process, relaying its
  :class:`~depthstudio.jobs.Job` progress and cancel. Some libraries hold Python's GIL for seconds
  inside one C call (formatting a multi-million-line OBJ); in a thread that freezes a window.
- :class:`InferenceWorker` keeps loaded models in one long-lived process and estimates depth
  there. A forward pass cannot be interrupted from inside (ONNX Runtime and PyTorch run it in
  one call), so cancelling kills the process: the cancel takes effect within one poll interval,
  however large the input size. The next request starts a fresh process (and loads the model
  again).
"""
from __future__ import annotations

import queue
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from depthstudio.errors import DepthStudioError, ModelError
from depthstudio.jobs import Cancelled, Job

#: How often the parent looks for a cancel while it waits for a child (seconds).
POLL_S = 0.02


def _spawn():
    import multiprocessing as mp

    return mp.get_context("spawn")  # never fork a process that holds Qt, OpenGL or thread pools


# -- one function in a fresh process ----------------------------------------------------------------
def _child(fn, args, messages, cancel_event, niceness: int) -> None:
    import os

    try:
        os.nice(niceness)  # the front end's process keeps the CPU it needs to stay responsive
    except (AttributeError, OSError):
        pass
    last = [0.0]

    def report(job: Job) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.05 or (job.total and job.done >= job.total):
            last[0] = now
            messages.put(("progress", job.total, job.done, job.message))

    job = Job(listener=report, cancel_event=cancel_event)
    try:
        result = fn(job, *args)
        job.check()
    except Cancelled:
        messages.put(("cancelled",))
    except DepthStudioError as exc:
        messages.put(("failed", str(exc), ""))
    except MemoryError:
        messages.put(("failed", "out of memory; try fewer faces or a larger grid stride", ""))
    except BaseException as exc:  # a bug: report it, the front end stays up
        messages.put(("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    else:
        messages.put(("done", result))


def run_in_process(job: Job | None, fn: Callable, *args, grace_s: float = 3.0, niceness: int = 5,
                   cleanup: Callable[[], None] | None = None, name: str = "depthstudio-work") -> Any:
    """``fn(child_job, *args)`` in a fresh process; its progress is relayed to ``job``.

    Returns fn's result; raises Cancelled when ``job`` was cancelled (a child that does not stop
    within ``grace_s`` is terminated) and DepthStudioError when it failed. ``cleanup()`` runs once
    the child is gone, whatever happened.
    """
    spawn = _spawn()
    messages = spawn.Queue()
    cancel_event = spawn.Event()
    child = spawn.Process(target=_child, args=(fn, args, messages, cancel_event, niceness), daemon=True, name=name)
    child.start()
    outcome: Any = None
    deadline = None
    try:
        while outcome is None:
            if job is not None and job.cancelled and deadline is None:
                cancel_event.set()
                deadline = time.monotonic() + grace_s
            try:
                message = messages.get(timeout=0.05)
            except queue.Empty:
                if deadline is not None and time.monotonic() > deadline:
                    child.terminate()  # stuck in a long C call: stop it
                    outcome = ("cancelled",)
                elif not child.is_alive():
                    try:
                        outcome = messages.get(timeout=0.5)
                    except queue.Empty:
                        outcome = ("failed", f"the worker process stopped unexpectedly (exit code {child.exitcode})", "")
                continue
            if message[0] == "progress":
                if job is not None and not job.cancelled:
                    job.total, job.done = message[1], message[2]
                    job.set_message(message[3])
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


# -- depth estimation in a killable process -------------------------------------------------------
def _serve(conn) -> None:
    """The worker's loop: ("predict", photo, model settings dict) -> ("done", DepthMap) | ("failed", ...)."""
    from depthstudio.source import DepthSource, ModelSettings

    sources: dict[tuple, DepthSource] = {}
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request[0] == "stop":
            return
        try:
            model = ModelSettings.from_dict(request[2])
            source = sources.get(model.key())
            if source is None:
                sources.clear()  # one model at a time: a 1.3 GB ViT-L need not stay beside the next
                source = sources[model.key()] = DepthSource(model)
            if request[0] == "load":
                source.estimator()
                conn.send(("done", None))
            else:
                photo = request[1]
                if not hasattr(photo, "rgb"):  # a path: read here, not in the caller's process
                    from depthstudio.io.images import load_image

                    photo = load_image(photo)
                conn.send(("done", _lean(source.depth_for(photo), request[3])))
        except DepthStudioError as exc:
            conn.send(("failed", str(exc), "", type(exc).__name__))
        except MemoryError:
            conn.send(("failed", "out of memory; try a smaller input size", "", "MemoryError"))
        except BaseException as exc:  # a bug: report it and keep serving
            conn.send(("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc(), type(exc).__name__))


#: Depth maps with more pixels than this come back through a temporary .npy file: unpickling a
#: 48 MB array from a pipe holds the caller's GIL (its UI thread stalls); numpy reads a file without it.
FILE_RESULT_PIXELS = 2_000_000


def _lean(depth, folder: str | None):
    """The DepthMap to send back: its values in a .npy file in ``folder`` when large."""
    if folder is None or depth.values.size <= FILE_RESULT_PIXELS:
        return depth
    import dataclasses
    import os

    import numpy as np

    fd, name = tempfile.mkstemp(suffix=".npy", dir=folder)
    with os.fdopen(fd, "wb") as f:
        np.save(f, depth.values)
    return dataclasses.replace(depth, values=np.zeros((1, 1), np.float32), mask=None,
                               meta={**depth.meta, "_values_file": name, "_has_mask": depth.mask is not None})


def _full(depth, photo_mask):
    """Undo :func:`_lean` on the caller's side (the file is removed once read)."""
    name = depth.meta.get("_values_file") if isinstance(depth.meta, dict) else None
    if name is None:
        return depth
    import dataclasses
    import os

    import numpy as np

    try:
        values = np.load(name)
    finally:
        os.unlink(name)
    meta = {k: v for k, v in depth.meta.items() if not k.startswith("_")}
    mask = photo_mask if depth.meta.get("_has_mask") else None
    return dataclasses.replace(depth, values=values, mask=mask, meta=meta)


class InferenceWorker:
    """Depth estimation in a child process that holds the loaded model; cancel kills the process.

        worker = InferenceWorker()
        depth = worker.predict(photo, ModelSettings(model="da2-small"), job)   # job.cancel() -> Cancelled

    One request at a time (callers queue on a lock). The process starts on first use (or with
    :meth:`start`, to have it ready) and again after a cancel.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Any = None

    def start(self) -> None:
        """Start the process now (it imports the model libraries while the caller does other things)."""
        with self._lock:
            self._ensure()

    def _ensure(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        spawn = _spawn()
        parent, child = spawn.Pipe()
        self._proc = spawn.Process(target=_serve, args=(child,), daemon=True, name="depthstudio-inference")
        self._proc.start()
        child.close()
        self._conn = parent

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def kill(self) -> None:
        """Stop the process now (a running forward pass dies with it)."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is not None:
            proc.kill()
            proc.join(2.0)
        if conn is not None:
            conn.close()

    def _call(self, request: tuple, job: Job | None):
        with self._lock:
            if job is not None:
                job.check()
            self._ensure()
            conn, proc = self._conn, self._proc
            try:
                conn.send(request)
                while not conn.poll(POLL_S):
                    if job is not None and job.cancelled:
                        self.kill()
                        job.check()
                    if not proc.is_alive():
                        self.kill()
                        raise ModelError(f"the depth estimation process stopped unexpectedly (exit code {proc.exitcode}); "
                                         "try a smaller input size")
                reply = conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                self.kill()
                if job is not None:
                    job.check()
                raise ModelError("the depth estimation process stopped unexpectedly; try a smaller input size") from None
        if reply[0] == "done":
            return reply[1]
        if reply[2]:
            raise RuntimeError(f"{reply[1]}\n{reply[2]}")
        raise ModelError(reply[1])

    def load(self, model, job: Job | None = None) -> None:
        """Load ``model`` (ModelSettings) in the worker, so that the first predict only runs the forward."""
        self._call(("load", None, model.to_dict(), None), job)

    def predict(self, photo, model, job: Job | None = None, reload: bool = False):
        """The DepthMap of ``photo`` (a Photo) by ``model`` (ModelSettings); Cancelled when ``job`` is cancelled.

        ``reload``: the worker reads the photo from ``photo.path`` itself (the same file load_image read),
        so that no pixels cross the pipe under the caller's GIL.
        """
        sent = str(photo.path) if reload and photo.path is not None else photo
        folder = tempfile.gettempdir()
        return _full(self._call(("predict", sent, model.to_dict(), folder), job), photo.alpha)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.send(("stop",))
                except (OSError, BrokenPipeError):
                    pass
            if self._proc is not None:
                self._proc.join(1.0)
            self.kill()


_shared: InferenceWorker | None = None


def shared_inference() -> InferenceWorker:
    """The process-wide inference worker (one model process, however many windows)."""
    global _shared
    if _shared is None:
        _shared = InferenceWorker()
    return _shared
