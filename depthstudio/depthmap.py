"""The depth map: values, their kind, a validity mask, and where they came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeGuard

import numpy as np

DepthKind = Literal["disparity", "metric"]
KINDS = ("disparity", "metric")


def is_depth_kind(value: object) -> TypeGuard[DepthKind]:
    """True when ``value`` is one of :data:`KINDS`."""
    return value in KINDS


@dataclass
class DepthMap:
    """A per-pixel depth estimate at the image's resolution.

    ``kind`` is ``"disparity"`` (relative inverse depth, larger = nearer, unknown scale and shift)
    or ``"metric"`` (metres along the optical axis). Pixels that are 0, NaN or inf, or False in
    ``mask``, are "no surface" and are never unprojected.

    What a model may know besides depth, all at this map's resolution: ``focal_px``, its estimate
    of the focal length in pixels of this map's width (the camera source "model", after flags and
    EXIF); ``normals``, (H, W, 3) unit surface normals in the camera frame of the meshes (x right,
    y up, facing the camera: z > 0); ``points``, (H, W, 3) points in that frame (metres).
    """

    values: np.ndarray  # (H, W) float32
    kind: DepthKind = "disparity"
    model_id: str = "unknown"
    mask: np.ndarray | None = None  # (H, W) bool, optional extra mask (e.g. the photo's alpha)
    meta: dict = field(default_factory=dict)
    focal_px: float | None = None
    normals: np.ndarray | None = None
    points: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float32)
        if self.values.ndim != 2:
            raise ValueError(f"depth must be a 2-D array, got shape {self.values.shape}")
        if self.kind not in KINDS:
            raise ValueError(f"depth kind must be one of {KINDS}, got {self.kind!r}")
        if self.mask is not None and self.mask.shape != self.values.shape:
            raise ValueError(f"mask shape {self.mask.shape} differs from depth shape {self.values.shape}")
        if self.focal_px is not None:
            self.focal_px = float(self.focal_px)
            if not (np.isfinite(self.focal_px) and self.focal_px > 0):
                raise ValueError(f"focal_px must be a positive number, got {self.focal_px}")
        for name in ("normals", "points"):
            array = getattr(self, name)
            if array is not None:
                array = np.asarray(array, np.float32)
                if array.shape != (*self.values.shape, 3):
                    raise ValueError(f"{name} shape {array.shape} differs from (H, W, 3) = {(*self.values.shape, 3)}")
                setattr(self, name, array)

    def focal_for(self, width: int) -> float | None:
        """The model's focal length estimate in pixels for an image ``width`` pixels wide (same aspect)."""
        return None if self.focal_px is None else self.focal_px * width / self.width

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    @property
    def width(self) -> int:
        return int(self.values.shape[1])

    @property
    def height(self) -> int:
        return int(self.values.shape[0])

    @property
    def valid(self) -> np.ndarray:
        """True where the pixel holds a surface."""
        ok = np.isfinite(self.values) & (self.values != 0)
        if self.kind == "metric":
            ok &= self.values > 0
        if self.mask is not None:
            ok &= self.mask
        return ok

    def normalized(self) -> np.ndarray:
        """Values mapped to [0, 1] with near = 1 (invalid pixels = 0), robust to outliers."""
        ok = self.valid
        out = np.zeros(self.values.shape, np.float32)
        if not ok.any():
            return out
        v = self.values[ok].astype(np.float64)
        if self.kind == "metric":
            v = 1.0 / v  # nearness
        lo, hi = float(v.min()), float(v.max())
        scale = 1.0 / (hi - lo) if hi > lo else 0.0
        out[ok] = ((v - lo) * scale).astype(np.float32) if scale else 1.0
        return out

    def to_png16(self) -> np.ndarray:
        """16-bit grayscale, normalised, near = bright: valid pixels span 1..65535, 0 is "no surface"."""
        png = np.round(1.0 + self.normalized() * 65534.0).astype(np.uint16)
        png[~self.valid] = 0
        return png

    def save_npy(self, path: str | Path) -> Path:
        from depthstudio.io.atomic import atomic_write

        with atomic_write(path, "wb") as handle:
            np.save(handle, self.values.astype(np.float32, copy=False))
        return Path(path)
