"""Depth from a depth video instead of a model (``depthstudio video --depth DEPTH_VIDEO``).

The 16-bit FFV1 stream ``depthstudio video`` writes (or any grayscale video: a Blender Z pass, a
phone's depth track) read frame by frame beside the clip, so effects can be re-rendered without
running the model again. It has the estimator's three-step interface (preprocess / forward /
postprocess) so the pipeline overlaps it the same way.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from depthstudio.depthmap import DepthKind, DepthMap, is_depth_kind
from depthstudio.errors import InputError, SettingsError

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame


class DepthVideoSource:
    """Reads one depth frame per clip frame, in order. Values are nearness (near = bright, 0 = no
    surface) unless ``kind`` is "metric"; a ``<stem>.json`` sidecar written by the pipeline
    supplies the kind and, for metric depth, the near/far that turn nearness back into metres."""

    def __init__(self, path: str | os.PathLike, kind: str | None = None):
        from depthstudio.video.decode import probe

        self.path = Path(path)
        self.info = probe(self.path)  # InputError for anything that is not a video
        self.meta: dict = {}
        sidecar = self.path.with_suffix(".json")
        if sidecar.is_file():
            try:
                self.meta = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.meta = {}
        chosen = kind or self.meta.get("kind", "disparity")
        if not is_depth_kind(chosen):
            raise SettingsError(f"depth kind must be disparity or metric, got {chosen!r}")
        self.kind: DepthKind = chosen
        self.model_id = f"depth-video:{self.path.name}"
        self.backend_name = "file"
        self._container: InputContainer | None = None
        self._frames: Iterator[VideoFrame] | None = None
        self._count = 0
        self._top = 65535.0

    def _next(self) -> np.ndarray:
        import av

        if self._frames is None:
            container = self._container = av.open(str(self.path), metadata_errors="ignore")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            self._frames = container.decode(stream)
        try:
            frame = next(self._frames)
        except StopIteration:
            raise InputError(f"{self.path}: the depth video has only {self._count} frames, fewer than the clip; "
                             f"give the depth video made from this clip") from None
        except av.error.FFmpegError as exc:
            raise InputError(f"{self.path}: cannot decode depth frame {self._count} ({exc})") from None
        self._count += 1
        name = frame.format.name
        if "16" in name or "12" in name or "10" in name:
            self._top = 65535.0
            return frame.to_ndarray(format="gray16le").astype(np.float32)
        self._top = 255.0
        return frame.to_ndarray(format="gray").astype(np.float32)

    # -- the estimator's interface ---------------------------------------------------------------
    def preprocess(self, rgb: np.ndarray):
        values = self._next()
        h, w = rgb.shape[:2]
        if values.shape != (h, w):
            from PIL import Image

            zero = values == 0
            values = np.asarray(Image.fromarray(values).resize((w, h), Image.Resampling.BILINEAR), np.float32)
            holes = np.asarray(Image.fromarray(zero.astype(np.uint8) * 255).resize((w, h), Image.Resampling.NEAREST)) > 0
            values[holes] = 0
        return (h, w), values[None]

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return batch

    def forward_prepared(self, prepared: list) -> list:
        return [x[0] for _, x in prepared]

    def postprocess(self, shape, prediction: np.ndarray) -> DepthMap:
        raw = np.asarray(prediction, np.float32)
        if self.kind != "metric":
            v = raw * np.float32(1.0 / self._top)
        elif "near" in self.meta and "far" in self.meta:  # nearness between 1/far and 1/near
            near, far = float(self.meta["near"]), float(self.meta["far"])
            v = np.zeros_like(raw)
            ok = raw > 0
            v[ok] = 1.0 / (1.0 / far + raw[ok] * np.float32(1.0 / self._top) * (1.0 / near - 1.0 / far))
        else:  # integer metric depth is millimetres, as in 16-bit depth PNGs
            v = raw * np.float32(0.001)
        return DepthMap(values=v, kind=self.kind, model_id=self.model_id)

    def close(self) -> None:
        if self._frames is not None:
            if self._container is not None:
                self._container.close()
            self._frames = None
