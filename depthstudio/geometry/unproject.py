"""Pixels to camera-frame points and back (glTF frame: x right, y up, camera looking down -z)."""
from __future__ import annotations

import numpy as np

from depthstudio.geometry.camera import Intrinsics


def pixel_rays(intrinsics: Intrinsics, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per-column x and per-row y of the ray through each pixel centre at unit depth (y up)."""
    k = intrinsics
    cols = np.arange(0, k.width, stride, dtype=np.float64)
    rows = np.arange(0, k.height, stride, dtype=np.float64)
    rx = ((cols + 0.5 - k.cx) / k.fx).astype(np.float32)
    ry = ((k.cy - (rows + 0.5)) / k.fy).astype(np.float32)
    return rx, ry


def unproject(z: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """(H, W, 3) float32 points for a planar depth map ``z`` (distance along the optical axis)."""
    z = np.asarray(z, dtype=np.float32)
    if z.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f"depth is {z.shape[1]}x{z.shape[0]} but the intrinsics are for "
                         f"{intrinsics.width}x{intrinsics.height}")
    rx, ry = pixel_rays(intrinsics)
    out = np.empty(z.shape + (3,), np.float32)
    np.multiply(z, rx[None, :], out=out[..., 0])
    np.multiply(z, ry[:, None], out=out[..., 1])
    np.negative(z, out=out[..., 2])
    return out


def unproject_pixels(rows: np.ndarray, cols: np.ndarray, z: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """(N, 3) float32 points for pixel centres (rows, cols) at depths ``z``."""
    rx, ry = pixel_rays(intrinsics)
    out = np.empty((len(z), 3), np.float32)
    np.multiply(rx[cols], z, out=out[:, 0])
    np.multiply(ry[rows], z, out=out[:, 1])
    np.negative(z, out=out[:, 2])
    return out


def project(points: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """(N, 2) pixel coordinates (x right, y down) of camera-frame points; pixel centres at +0.5."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    depth = -p[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = intrinsics.cx + intrinsics.fx * p[:, 0] / depth
        y = intrinsics.cy - intrinsics.fy * p[:, 1] / depth
    return np.stack([x, y], axis=1)


def uv_from_pixels(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Texture coordinates u = x / W, v = 1 - y / H (float32)."""
    uv = np.empty((len(xy), 2), np.float32)
    uv[:, 0] = xy[:, 0] / width
    uv[:, 1] = 1.0 - xy[:, 1] / height
    return uv


def project_uv(points: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """UVs that map the photo exactly onto points seen through ``intrinsics``."""
    return uv_from_pixels(project(points, intrinsics), intrinsics.width, intrinsics.height)
