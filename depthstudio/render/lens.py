"""Thin-lens optics: how much a point at depth z is blurred when the lens is focused at s.

Everything is in the terms photographers use: a focal length in millimetres, an f-number, and
distances in metres (or the scene units of a relative depth map's near/far mapping).

For a thin lens of focal length f and aperture diameter A = f / N focused at distance s, a point
at distance z images to a blur disc (the circle of confusion) of diameter, on the sensor,

    c = A * f / (s - f) * |z - s| / z

The sensor's pixel pitch is f / fx (fx: the focal length in pixels, from the photo's intrinsics),
so in pixels the disc is ``fx * f / (N * (s - f)) * |1 - s / z|``: only the focal length in pixels
of the image and the physical focal length and f-number of the lens enter. The focal length and
f-number are 35 mm-equivalent by default (the photo's diagonal spanning the 43.3 mm diagonal of a
full-frame sensor, as cameras write it in EXIF): that is the blur a full-frame camera with the same
field of view would show, which is what people mean by "f/1.8 at 50 mm".

Sign convention: positive behind the focus plane, negative in front of it. The signed value grows
monotonically with z, so sorting by signed blur is sorting by depth.
"""
from __future__ import annotations

import math

import numpy as np

from depthstudio.errors import SettingsError

#: Diagonal of a full-frame ("35 mm", 36 x 24 mm) sensor: the reference of 35 mm-equivalent focal lengths.
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
#: The classic acceptable circle of confusion of full frame, for depth-of-field limits.
FULL_FRAME_COC_MM = 0.03


def check_lens(f_number: float, focal_mm: float, focus_distance: float | None = None) -> None:
    """Raise SettingsError for a lens no camera could have."""
    if not np.isfinite(f_number) or f_number <= 0:
        raise SettingsError(f"f-number must be a positive number (e.g. 1.4, 2.8, 8), got {f_number}")
    if not np.isfinite(focal_mm) or focal_mm <= 0:
        raise SettingsError(f"focal length must be a positive number of millimetres (e.g. 50), got {focal_mm}")
    if focus_distance is not None:
        if not np.isfinite(focus_distance) or focus_distance <= 0:
            raise SettingsError(f"focus distance must be a positive distance in metres, got {focus_distance}")
        if focus_distance <= focal_mm / 1000.0:
            raise SettingsError(
                f"focus distance {focus_distance:g} m is inside the focal length ({focal_mm:g} mm): "
                "a lens cannot focus that close; choose a farther focus"
            )


def blur_scale_px(f_number: float, focal_mm: float, focus_distance: float, fx_px: float) -> float:
    """The blur diameter (pixels) of a point at infinity: ``coc_px(z) = scale * (1 - s / z)``."""
    check_lens(f_number, focal_mm, focus_distance)
    if not np.isfinite(fx_px) or fx_px <= 0:
        raise SettingsError(f"focal length in pixels must be positive, got {fx_px}")
    f = focal_mm / 1000.0
    return float(fx_px * f / (f_number * (focus_distance - f)))


def circle_of_confusion(z: np.ndarray, focus_distance: float, f_number: float, focal_mm: float,
                        fx_px: float, max_blur_px: float | None = None) -> np.ndarray:
    """Signed blur-disc diameter in pixels for depths ``z`` (positive behind focus, negative in front).

    ``fx_px`` is the image's focal length in pixels. ``z`` <= 0, NaN or inf count as "at infinity"
    (e.g. sky, or pixels without depth). ``max_blur_px`` caps the diameter (both signs).
    """
    scale = blur_scale_px(f_number, focal_mm, focus_distance, fx_px)
    z = np.asarray(z, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(np.isfinite(z) & (z > 0), np.float32(1.0) / z, np.float32(0.0))
    coc = np.float32(scale) * (np.float32(1.0) - np.float32(focus_distance) * inv)
    if max_blur_px is not None:
        if not np.isfinite(max_blur_px) or max_blur_px < 0:
            raise SettingsError(f"max blur must be a non-negative number of pixels, got {max_blur_px}")
        np.clip(coc, -max_blur_px, max_blur_px, out=coc)
    return coc.astype(np.float32, copy=False)


def depth_of_field(focus_distance: float, f_number: float, focal_mm: float,
                   coc_mm: float = FULL_FRAME_COC_MM) -> tuple[float, float]:
    """Near and far limits of acceptable sharpness (far is inf beyond the hyperfocal distance)."""
    check_lens(f_number, focal_mm, focus_distance)
    f = focal_mm / 1000.0
    h = hyperfocal_distance(f_number, focal_mm, coc_mm)
    s = focus_distance
    near = s * (h - f) / (h + s - 2 * f)
    far = s * (h - f) / (h - s) if s < h else float("inf")
    return float(near), float(far)


def hyperfocal_distance(f_number: float, focal_mm: float, coc_mm: float = FULL_FRAME_COC_MM) -> float:
    """Focus here and everything from half this distance to infinity is acceptably sharp."""
    check_lens(f_number, focal_mm)
    f = focal_mm / 1000.0
    return float(f * f / (f_number * coc_mm / 1000.0) + f)


def focal_35mm_from_fx(fx_px: float, width: float, height: float) -> float:
    """The 35 mm-equivalent focal length (diagonal definition) of a pinhole with fx pixels."""
    return float(fx_px) * FULL_FRAME_DIAGONAL_MM / math.hypot(width, height)


def fx_from_focal_35mm(focal_mm: float, width: int, height: int) -> float:
    """The focal length in pixels of a ``width`` x ``height`` photo taken at ``focal_mm`` (35 mm-equivalent)."""
    return float(focal_mm) * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM


def focus_depth_at(z: np.ndarray, valid: np.ndarray | None, point: tuple[float, float],
                   radius: int | None = None) -> float:
    """The distance to focus on so that the image point ``(x, y)`` (pixels) is sharp.

    Robust to a click that lands on an edge: takes the depth that most of a small window around the
    point agrees on (the median of the nearer half when the window straddles a depth edge is biased
    to the nearer surface, which is what a click on an object's outline means).
    """
    z = np.asarray(z)
    h, w = z.shape[:2]
    x, y = float(point[0]), float(point[1])
    if not (np.isfinite(x) and np.isfinite(y)) or not (0 <= x < w and 0 <= y < h):
        raise SettingsError(f"focus point ({x:g}, {y:g}) is outside the image ({w}x{h} pixels)")
    if radius is None:
        radius = max(1, round(max(h, w) / 400))
    col, row = int(x), int(y)
    r0, r1 = max(0, row - radius), min(h, row + radius + 1)
    c0, c1 = max(0, col - radius), min(w, col + radius + 1)
    window = z[r0:r1, c0:c1].astype(np.float64)
    ok = np.isfinite(window) & (window > 0)
    if valid is not None:
        ok &= np.asarray(valid)[r0:r1, c0:c1]
    if not ok.any():
        raise SettingsError(f"focus point ({x:g}, {y:g}) has no depth (no surface there); click on an object")
    values = np.sort(window[ok])
    centre = z[row, col]
    centre_ok = np.isfinite(centre) and centre > 0 and (valid is None or bool(np.asarray(valid)[row, col]))
    if centre_ok:
        # the surface under the click, unless it is a lone outlier in its window
        near = values[np.abs(values - centre) <= 0.05 * centre]
        if near.size * 2 >= values.size or near.size >= 3:
            return float(np.median(near))
    return float(np.median(values[: max(1, (values.size + 1) // 2)]))
