"""A tiny observer: the document emits, views subscribe (napari style; no Qt here)."""
from __future__ import annotations

from collections.abc import Callable


class Event:
    """A list of callbacks called in order with the emitted arguments."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._callbacks: list[Callable] = []

    def connect(self, callback: Callable) -> Callable:
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args, **kwargs) -> None:
        for callback in list(self._callbacks):
            callback(*args, **kwargs)

    def __len__(self) -> int:
        return len(self._callbacks)
