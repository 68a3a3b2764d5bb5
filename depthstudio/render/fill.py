"""Revealed areas: what a moving camera uncovers behind foreground edges, filled instead of stretched.

The foreground mesh is cut at depth edges (render/layers.py), so moving the camera opens holes
behind every foreground silhouette. Behind each cut edge we add a background layer:

1. *Where*: the band of foreground pixels within ``band_px`` of a near-side edge pixel (the width
   the camera path can ever reveal, times two, see below), restricted to pixels that really are
   nearer than the surface across the edge.
2. *Depth*: extended from the far side. Every band pixel takes the depth of the nearest far-side
   edge pixel (a distance transform with labels), smoothed in log depth, then pushed back 0.2 % so
   the real far surface wins where the two overlap.
3. *Colour*: inpainted from the background only. The band and a thin ring of far-side pixels
   next to the edge (mixed foreground/background colours from the photo's anti-aliasing, which
   would leave a ghost outline) are masked, and OpenCV's Telea inpainting fills them from outside.
   Fast marching fills from every boundary inward, so the band is twice the widest reveal: the half
   nearest the edge, the only half the camera can uncover, is filled from the background side;
   foreground colours leaking in from the band's inner boundary stay hidden behind the foreground.

The fill layer is drawn with the same renderer, behind the foreground (depth test): where nothing is
revealed it is simply hidden.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from depthstudio.errors import SettingsError
from depthstudio.geometry.camera import Intrinsics
from depthstudio.render.layers import DEFAULT_EDGE_CUT, MeshLayer, grid_layer, stride_for

#: The fill layer sits this much (relative) behind the depth it extends.
PUSH_BACK = 1.002


@dataclass
class FillSettings:
    """How revealed areas are filled."""

    enabled: bool = True
    band_px: float | None = None  # widest reveal in photo pixels; None = from the camera path
    inpaint_radius: int = 4  # Telea neighbourhood, pixels
    max_vertices: int = 150_000  # grid resolution of the fill layer

    def validate(self) -> "FillSettings":
        if self.band_px is not None and not (math.isfinite(self.band_px) and self.band_px >= 0):
            raise SettingsError(f"fill band must be a non-negative number of pixels, got {self.band_px}")
        if not 1 <= int(self.inpaint_radius) <= 50:
            raise SettingsError(f"inpaint radius must be between 1 and 50 pixels, got {self.inpaint_radius}")
        return self


@dataclass
class Revealed:
    """Where and what the fill layer is, at the photo's resolution."""

    band: np.ndarray  # (H, W) bool: foreground pixels the fill layer lies behind
    ring: np.ndarray  # (H, W) bool: far-side pixels next to an edge whose colours are repainted
    depth: np.ndarray  # (H, W) float32: the extended background depth (valid inside band | ring)
    near_edge: np.ndarray  # (H, W) bool: near side of every cut edge (the silhouettes)


def cut_sides(z: np.ndarray, valid: np.ndarray, zone: np.ndarray, edge_cut: float = DEFAULT_EDGE_CUT) -> tuple[np.ndarray, np.ndarray]:
    """(near, far) HxW bool: the two pixels of every depth step inside the edge zone.

    Steps are looked for among the 8 neighbours at half the cut threshold, so every cell the
    (strided) foreground layer cuts has a near-side pixel here and the fill covers it.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        lz = np.where(valid, np.log(np.where(valid, z, 1.0)), np.nan).astype(np.float32)
    near = np.zeros(z.shape, bool)
    far = np.zeros(z.shape, bool)
    t = 0.5 * edge_cut
    h, w = z.shape
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = (slice(0, h - dr), slice(max(0, -dc), w - max(0, dc)))
        b = (slice(dr, h), slice(max(0, dc), w - max(0, -dc) if dc < 0 else w))
        if dc < 0:
            b = (slice(dr, h), slice(0, w + dc))
        with np.errstate(invalid="ignore"):
            step = lz[b] - lz[a]  # > 0: the second pixel is farther
        inside = zone[a] | zone[b]
        with np.errstate(invalid="ignore"):
            b_far = inside & (step > t)
            a_far = inside & (step < -t)
        near[a] |= b_far
        far[b] |= b_far
        near[b] |= a_far
        far[a] |= a_far
    return near, far


def revealed_regions(z: np.ndarray, valid: np.ndarray, zone: np.ndarray, band_px: float,
                     edge_cut: float = DEFAULT_EDGE_CUT, reach: float = 1.0) -> Revealed | None:
    """The band behind foreground edges and its extended depth; None when there is no edge."""
    import cv2

    h, w = z.shape
    near, far = cut_sides(z, valid, zone, edge_cut)
    if not near.any() or not far.any():
        return None
    # Nearest far-side edge pixel of every pixel, and its depth.
    _, labels = cv2.distanceTransformWithLabels((~far).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    seed_depth = np.concatenate([[0.0], z[far]]).astype(np.float32)  # labels count seeds in raster order from 1
    nearest_far = seed_depth[labels]
    dist_near = cv2.distanceTransform((~near).astype(np.uint8), cv2.DIST_L2, 5)
    ratio = math.exp(0.5 * edge_cut)
    band = valid & (dist_near <= band_px) & (z * ratio < nearest_far)
    # Anti-aliased photo edges: the first far-side pixels carry some foreground colour.
    # ``reach``: the foreground grid's cell size, so the fill reaches under every cut cell.
    ring_px = max(1.5, min(h, w) / 600.0, reach + 0.5)
    ring = valid & ~band & (dist_near <= ring_px + 1.0)
    # Smooth the piecewise-constant (Voronoi) extension in log depth, over the seeds' field.
    sigma = max(1.0, band_px / 8.0)
    scale = min(1.0, 512.0 / max(h, w))
    lf = np.log(np.maximum(nearest_far, 1e-6)).astype(np.float32)
    if scale < 1.0:
        small = cv2.resize(lf, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), max(0.5, sigma * scale))
        lf = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        lf = cv2.GaussianBlur(lf, (0, 0), sigma)
    depth = np.exp(lf).astype(np.float32)
    # Never in front of the foreground it hides behind.
    inside = band | ring
    depth[inside] = np.maximum(depth[inside], z[inside] * ratio)
    return Revealed(band=band, ring=ring, depth=depth, near_edge=near)


def inpaint(rgb: np.ndarray, mask: np.ndarray, radius: int = 4, max_pixels: int = 4_000_000) -> np.ndarray:
    """Fill ``mask`` in an RGB uint8 image from its surroundings (OpenCV Telea).

    Very large images are inpainted at a lower resolution and the result pasted into the holes.
    """
    import cv2

    h, w = mask.shape
    m = mask.astype(np.uint8)
    if not m.any():
        return rgb.copy()
    if h * w <= max_pixels:
        return cv2.inpaint(np.ascontiguousarray(rgb), m, radius, cv2.INPAINT_TELEA)
    scale = math.sqrt(max_pixels / float(h * w))
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    # Any hole pixel under a small pixel makes it a hole (so no foreground colour survives).
    small_mask = cv2.resize(cv2.dilate(m, np.ones((3, 3), np.uint8)), size, interpolation=cv2.INTER_AREA) > 0
    filled = cv2.inpaint(small, small_mask.astype(np.uint8), radius, cv2.INPAINT_TELEA)
    up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    out = rgb.copy()
    out[mask] = up[mask]
    return out


def fill_layer(z: np.ndarray, valid: np.ndarray, zone: np.ndarray, rgb: np.ndarray, intrinsics: Intrinsics,
               band_px: float, edge_cut: float = DEFAULT_EDGE_CUT, settings: FillSettings | None = None,
               revealed: Revealed | None = None, reach: float = 1.0) -> tuple[MeshLayer | None, Revealed | None]:
    """The background layer behind every foreground edge (see the module docstring).

    ``z`` is the (edge-sharpened) depth the foreground layer is built from, ``zone`` its edge zone.
    Returns (layer or None when nothing can be revealed, the regions it covers).
    """
    import cv2

    s = (settings or FillSettings()).validate()
    if not s.enabled or band_px <= 0:
        return None, None
    if revealed is None:
        revealed = revealed_regions(z, valid, zone, band_px, edge_cut, reach)
    if revealed is None:
        return None, None
    covered = revealed.band | revealed.ring
    texture = inpaint(rgb, covered, int(s.inpaint_radius))
    h, w = z.shape
    stride = stride_for(w, h, s.max_vertices)
    # Cells touching the band (grown by a cell so the layer reaches under the cut edge itself).
    grow = cv2.dilate(covered.astype(np.uint8), np.ones((2 * stride + 1, 2 * stride + 1), np.uint8)).astype(bool)
    from depthstudio.render.layers import _box_any, sample_axis

    rows, cols = sample_axis(h, stride), sample_axis(w, stride)
    cells = _box_any(covered, rows, cols)
    depth = np.where(grow, revealed.depth * PUSH_BACK, 0).astype(np.float32)
    layer = grid_layer(depth, grow & valid, intrinsics, texture, stride=stride, cells=cells, name="fill")
    if layer.face_count == 0:
        return None, revealed
    return layer, revealed


def reveal_width(z: np.ndarray, valid: np.ndarray, focal_px: float, travel: float) -> float:
    """Widest gap (photo pixels) a camera travelling ``travel`` scene units can open between the
    near and far ends of the scene: f * T * (1/z_near - 1/z_far), with robust ends."""
    values = z[valid]
    if values.size == 0 or travel <= 0:
        return 0.0
    if values.size > 200_000:
        values = values[:: values.size // 200_000]
    z_near, z_far = np.percentile(values, [0.5, 99.5])
    return float(focal_px * travel * (1.0 / max(z_near, 1e-9) - 1.0 / max(z_far, 1e-9)))
