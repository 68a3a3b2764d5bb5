"""One render thread that owns the OpenGL context and the shared scene (depthstudio.render).

OpenGL contexts belong to one thread. The 3D view and the parallax preview send it requests
("draw this geometry from this camera at this size"); only the newest request per view is kept,
so a fast orbit never queues up stale frames, and the UI thread never waits on the rasteriser.
Frames come back as RGB arrays through a queued Qt signal.
"""
from __future__ import annotations

import threading
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal


class RenderService(QObject):
    frame_ready = Signal(str, object, object)  # key, frame (H, W, 3) uint8, request tag
    failed = Signal(str, str)  # key, message

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._requests: dict[str, tuple[Callable, object]] = {}
        self._order: list[str] = []
        self._stop = False
        self._thread: threading.Thread | None = None
        self.state: dict = {}  # lives on the render thread: context, scenes, uploaded meshes
        self.error: str | None = None

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop = False
            self._thread = threading.Thread(target=self._loop, name="depthstudio-render", daemon=True)
            self._thread.start()

    def submit(self, key: str, fn: Callable, tag=None) -> None:
        """Run ``fn(state) -> frame`` on the render thread; replaces a pending request with the same key."""
        with self._cond:
            self._requests[key] = (fn, tag)
            if key not in self._order:
                self._order.append(key)
            self._cond.notify()
        self._ensure_thread()

    def pending(self) -> bool:
        with self._cond:
            return bool(self._requests)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._requests and not self._stop:
                    self._cond.wait()
                if self._stop:
                    break
                key = self._order.pop(0)
                fn, tag = self._requests.pop(key)
            try:
                frame = fn(self.state)
            except Exception as exc:  # a driver error must not kill the thread or the window
                self.error = f"{exc}"
                self.failed.emit(key, f"{exc}\n{traceback.format_exc()}" if not hasattr(exc, "args") else str(exc))
                continue
            if frame is not None:
                self.frame_ready.emit(key, frame, tag)
        self._release()

    def _release(self) -> None:
        for value in list(self.state.values()):
            release = getattr(value, "release", None)
            if callable(release):
                try:
                    release()
                except Exception:
                    pass
        self.state.clear()

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._requests.clear()
            self._order.clear()
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
