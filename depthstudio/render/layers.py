"""What the renderer draws: textured triangle layers built from a depth map.

A layer is plain arrays (vertices in the camera frame, UVs, faces, a texture), so a geometry
DepthMesh, the parallax foreground and its revealed-area fill all draw the same way.

Depth models blur a depth step into a ramp a few pixels wide. A fixed per-edge threshold either
misses such ramps (they become stretched "rubber sheet" triangles when the camera moves) or cuts
steep but continuous surfaces (a floor near the horizon). ``edge_zone`` instead finds where the
depth changes much faster than its surroundings; ``sharpen_edges`` snaps those ramp pixels to the
near or the far side so the step is one pixel wide, and only cells in the zone are cut.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from depthstudio.geometry.camera import Intrinsics
from depthstudio.geometry.mesh import DEFAULT_EDGE_CUT
from depthstudio.models.catalogue import DEFAULT_INPUT_SIZE

#: Where between the far (0) and near (1) disparity of an edge ramp a pixel is snapped to the near side.
NEAR_BIAS = 0.3
#: Relative depth (|ln z1/z2|) within which an edge-zone pixel belongs to the surface beside it.
SAME_SURFACE = 0.01


@dataclass
class MeshLayer:
    """A textured triangle mesh in the camera frame (glTF: x right, y up, looking down -z)."""

    vertices: np.ndarray  # (N, 3) float32
    uvs: np.ndarray  # (N, 2) float32, u = x / W, v = 1 - y / H
    faces: np.ndarray  # (M, 3) int32
    texture: np.ndarray  # (H, W, 3) uint8
    name: str = "layer"
    cut_pixels: np.ndarray | None = None  # (H, W) bool: pixels of grid cells dropped at depth edges

    @property
    def face_count(self) -> int:
        return int(len(self.faces))

    @classmethod
    def from_mesh(cls, mesh, name: str = "mesh") -> MeshLayer:
        """From a geometry DepthMesh (or anything with vertices, uvs, faces, texture)."""
        texture = mesh.texture
        if texture is None:
            texture = np.full((2, 2, 3), 200, np.uint8)
        return cls(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.uvs, np.float32),
                   np.asarray(mesh.faces, np.int32), np.asarray(texture, np.uint8), name)

    def depth_range(self) -> tuple[float, float]:
        """(nearest, farthest) distance along -z of the layer's used vertices."""
        if not len(self.faces):
            return (math.inf, 0.0)
        d = -self.vertices[np.unique(self.faces)][:, 2]
        d = d[d > 0]
        return (float(d.min()), float(d.max())) if d.size else (math.inf, 0.0)


def auto_window(width: int, height: int) -> int:
    """Odd window (pixels) that spans a depth model's edge ramp at this resolution."""
    # Models see ~DEFAULT_INPUT_SIZE px on the short side; their ramps are 2-4 px there and scale with upsampling.
    # A window of w pixels recognises ramps up to (w - 1) / 2 pixels wide.
    w = int(round(13 * max(1.0, min(width, height) / float(DEFAULT_INPUT_SIZE))))
    return min(max(w | 1, 13), 41)


def edge_zone(z: np.ndarray, valid: np.ndarray, edge_cut: float = DEFAULT_EDGE_CUT, window: int | None = None) -> np.ndarray:
    """HxW bool: pixels on a depth discontinuity, including the ramps models blur steps into.

    In disparity (1/z), a plane is linear, so across a window its range is about gradient x window.
    Where the local gradient is several times steeper than the window's range implies, the range
    comes from a step (or a ramp much narrower than the window): that is an edge, if the step is
    larger than ``edge_cut`` (relative).
    """
    import cv2

    h, w = z.shape
    window = window or auto_window(w, h)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(valid, 1.0 / np.where(valid, z, 1.0), 0.0).astype(np.float32)
    kernel = np.ones((window, window), np.uint8)
    dmax = cv2.dilate(d, kernel)
    dmin = cv2.erode(d, kernel)
    grad = np.zeros_like(d)
    gx = np.abs(d[:, 2:] - d[:, :-2]) * 0.5
    gy = np.abs(d[2:, :] - d[:-2, :]) * 0.5
    grad[:, 1:-1] = gx
    np.maximum(grad[1:-1, :], gy, out=grad[1:-1, :])
    span = dmax - dmin
    with np.errstate(divide="ignore", invalid="ignore"):
        steep = grad * (window - 1) > 2.0 * span
        big = span > (math.exp(edge_cut) - 1.0) * dmin  # dmax / dmin > e^cut
    zone = steep & big & (span > 0)
    # The plateau pixels right beside a one-pixel step have half the step as gradient: include them.
    zone = cv2.dilate(zone.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & big
    zone &= valid
    return zone


def sharpen_edges(z: np.ndarray, valid: np.ndarray, zone: np.ndarray, window: int | None = None) -> np.ndarray:
    """Turn ramps into one-pixel steps: each zone pixel takes the depth of the nearest pixel outside
    the zone on its own side of the edge (near or far, decided in disparity, see NEAR_BIAS).

    Taking an actual neighbour's depth (rather than the window's extreme) never overshoots on
    sloped surfaces such as the limb of a sphere. Elsewhere z is unchanged.
    """
    import cv2

    h, w = z.shape
    window = window or auto_window(w, h)
    if not zone.any():
        return z
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(valid, 1.0 / np.where(valid, z, 1.0), np.nan).astype(np.float32)
    kernel = np.ones((window, window), np.uint8)
    # Only valid pixels take part: invalid ones are -inf for the max and +inf for the min.
    dmax = cv2.dilate(np.where(valid, d, -np.inf).astype(np.float32), kernel)
    dmin = cv2.erode(np.where(valid, d, np.inf).astype(np.float32), kernel)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        level = (d - dmin) / (dmax - dmin)
    near = level > NEAR_BIAS
    outside = valid & ~zone
    out = z.copy()
    for side, seeds in ((near, outside & (level > 0.5)), (~near, outside & ~(level > 0.5))):
        targets = zone & valid & side
        if not targets.any() or not seeds.any():
            continue
        _, labels = cv2.distanceTransformWithLabels((~seeds).astype(np.uint8), cv2.DIST_L2, 5,
                                                    labelType=cv2.DIST_LABEL_PIXEL)
        values = np.concatenate([[0.0], z[seeds]]).astype(np.float32)
        out[targets] = values[labels[targets]]
    # A zone pixel at the depth of the surface right beside it is that surface, whatever the
    # window says: where three depths meet (a near box's top against a farther box's side against
    # the wall) the level rule would hand the middle surface's pixels to the nearest one.
    targets = zone & valid
    if outside.any() and targets.any():
        _, labels = cv2.distanceTransformWithLabels((~outside).astype(np.uint8), cv2.DIST_L2, 5,
                                                    labelType=cv2.DIST_LABEL_PIXEL)
        beside = np.concatenate([[1.0], z[outside]]).astype(np.float32)[labels]
        with np.errstate(divide="ignore", invalid="ignore"):
            same = targets & (np.abs(np.log(np.where(targets, z, 1.0)) - np.log(np.maximum(beside, 1e-9))) < SAME_SURFACE)
        out[same] = beside[same]
    return out


def sample_axis(n: int, stride: int) -> np.ndarray:
    """Pixel indices 0, s, 2s, ... and always the last one."""
    idx = np.arange(0, n, max(1, int(stride)))
    if idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    return idx


def _vertex_coords(idx: np.ndarray, n: int) -> np.ndarray:
    """Pixel-centre coordinates of sampled pixels, the outer ones moved onto the image border so
    the layer covers the whole frame (no half-pixel seam at the edges)."""
    x = idx.astype(np.float64) + 0.5
    x[0] = 0.0
    x[-1] = float(n)
    return x


def _box_any(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For the cells between consecutive sampled rows/cols: does ``mask`` hold a True inside?"""
    s = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int32)
    np.cumsum(np.cumsum(mask, axis=0, dtype=np.int32), axis=1, dtype=np.int32, out=s[1:, 1:])
    r0, r1 = rows[:-1, None], rows[1:, None] + 1
    c0, c1 = cols[None, :-1], cols[None, 1:] + 1
    return (s[r1, c1] - s[r0, c1] - s[r1, c0] + s[r0, c0]) > 0


def grid_layer(z: np.ndarray, valid: np.ndarray, intrinsics: Intrinsics, texture: np.ndarray, stride: int = 1,
               cut: np.ndarray | None = None, edge_cut: float = DEFAULT_EDGE_CUT, cells: np.ndarray | None = None,
               name: str = "photo", sample_size: tuple[int, int] | None = None) -> MeshLayer:
    """A layer over a depth grid sampled every ``stride`` pixels.

    A cell is dropped when a corner is invalid, or when it touches ``cut`` (HxW bool, e.g. the edge
    zone) and its corners differ in depth by more than ``edge_cut``. ``cells`` ((rows-1, cols-1) bool)
    can restrict the layer further (the fill layer keeps only cells behind foreground edges).
    ``intrinsics`` and ``texture`` belong to the full-size image; ``z`` may be smaller
    (``sample_size`` then gives the full image's (W, H) and z is treated as a resampled grid).
    """
    from depthstudio.geometry.mesh import grid_faces, grid_triangles

    h, w = z.shape
    full_w, full_h = sample_size or (intrinsics.width, intrinsics.height)
    rows, cols = sample_axis(h, stride), sample_axis(w, stride)
    zs = z[np.ix_(rows, cols)].astype(np.float32)
    vs = valid[np.ix_(rows, cols)] & np.isfinite(zs) & (zs > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lz = np.where(vs, np.log(np.where(vs, zs, 1.0)), np.nan).astype(np.float32)
    cell_ok = np.ones((len(rows) - 1, len(cols) - 1), bool)
    cut_pixels = None
    dropped = None
    if cut is not None and edge_cut is not None and edge_cut > 0:
        corners = np.stack([lz[:-1, :-1], lz[:-1, 1:], lz[1:, :-1], lz[1:, 1:]])
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells: invalid corners
            spread = np.nanmax(corners, axis=0) - np.nanmin(corners, axis=0) if np.isfinite(corners).any() else None
        if spread is not None:
            dropped = _box_any(cut, rows, cols) & (spread > edge_cut)
            dropped &= ~np.isnan(spread)
            cell_ok &= ~dropped
            cut_pixels = _cells_to_pixels(dropped, rows, cols, h, w)
    if cells is not None:
        cell_ok &= cells
    used, alt, keep1, keep2 = grid_triangles(lz, math.inf, cell_ok)
    vid = np.cumsum(used.ravel(), dtype=np.int64).reshape(used.shape).astype(np.int32) - 1
    faces = grid_faces(vid, alt, keep1, keep2)
    gr, gc = np.nonzero(used)
    # Vertex positions in the full image's pixels.
    xs = _vertex_coords(cols, w) * (full_w / w)
    ys = _vertex_coords(rows, h) * (full_h / h)
    x, y, zu = xs[gc], ys[gr], zs[gr, gc].astype(np.float64)
    u_px, v_px = x.copy(), y.copy()
    if dropped is not None and dropped.any():
        # A cut cell is a gap between two surfaces; each side's pixel at the edge is a whole pixel
        # (its anti-aliased colour belongs to it, as a splat would draw it), so the vertices on the
        # cut move into the gap over the pixels of their own surface (at stride 1: none) plus half
        # a pixel, the texture following all but that half: the two sides meet where their pixels
        # meet, and the edge pixels are not diluted by the fill behind.
        x, y, u_px, v_px = _into_cuts(dropped, cell_ok, rows, cols, gr, gc, x, y, full_w / w, full_h / h,
                                      lz_full=_log_depth(z, valid), edge_cut=edge_cut)
    k = intrinsics
    vertices = np.empty((len(zu), 3), np.float32)
    vertices[:, 0] = (x - k.cx) / k.fx * zu
    vertices[:, 1] = (k.cy - y) / k.fy * zu
    vertices[:, 2] = -zu
    uvs = np.empty((len(zu), 2), np.float32)
    uvs[:, 0] = u_px / full_w
    uvs[:, 1] = 1.0 - v_px / full_h
    return MeshLayer(vertices, uvs, faces, np.ascontiguousarray(texture), name, cut_pixels)


def _log_depth(z: np.ndarray, valid: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(valid & (z > 0), np.log(np.where(valid & (z > 0), z, 1.0)), np.nan).astype(np.float32)


def _into_cuts(dropped: np.ndarray, kept: np.ndarray, rows: np.ndarray, cols: np.ndarray, gr: np.ndarray,
               gc: np.ndarray, x: np.ndarray, y: np.ndarray, sx: float, sy: float, lz_full: np.ndarray,
               edge_cut: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, u, v) pixel positions and texture positions of the vertices, moved towards the dropped
    (cut) cells around them, per axis, where the cut cells lie on one side only and the vertex's
    kept cells on the other: over the pixels of the cell that lie on the vertex's own surface
    (within half the edge cut of its depth; texture too), then half a pixel (position only)."""
    pad_d = np.pad(dropped, 1).astype(np.int8)
    pad_k = np.pad(kept, 1).astype(np.int8)
    # Cells around vertex (r, c): (r-1, c-1) (r-1, c) (r, c-1) (r, c); +1 for the padding.
    ul, ur = pad_d[gr, gc], pad_d[gr, gc + 1]
    dl, dr = pad_d[gr + 1, gc], pad_d[gr + 1, gc + 1]
    kul, kur = pad_k[gr, gc], pad_k[gr, gc + 1]
    kdl, kdr = pad_k[gr + 1, gc], pad_k[gr + 1, gc + 1]
    right = np.sign((ur + dr) - (ul + dl))  # > 0: the cut lies to the right
    down = np.sign((dl + dr) - (ul + ur))
    kept_right = np.sign((kur + kdr) - (kul + kdl))  # the vertex's own surface lies the other way
    kept_down = np.sign((kdl + kdr) - (kul + kur))
    move_x = (right != 0) & (kept_right == -right)
    move_y = (down != 0) & (kept_down == -down)
    h, w = lz_full.shape
    pr, pc = rows[gr], cols[gc]
    own = lz_full[pr, pc]

    def run(move, sign, along_rows):
        """Pixels of the vertex's own surface from it towards the cut, up to the cell's far side."""
        count = np.zeros(len(pr), np.int32)
        going = move.copy()
        idx = np.nonzero(going)[0]
        step = 1
        while idx.size:
            r = pr[idx] + (sign[idx] * step if along_rows else 0)
            c = pc[idx] + (0 if along_rows else sign[idx] * step)
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            # Stop at the cell's far sample (the other side's vertex) and at the other surface.
            ends = rows if along_rows else cols
            pos = r if along_rows else c
            origin = pr[idx] if along_rows else pc[idx]
            cell = np.searchsorted(ends, np.minimum(origin, pos), side="right") - 1
            cell = np.clip(cell, 0, len(ends) - 2)
            within = np.abs(pos - origin) < (ends[cell + 1] - ends[cell])
            rr, cc = np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)
            with np.errstate(invalid="ignore"):
                same = inside & within & (np.abs(lz_full[rr, cc] - own[idx]) < 0.5 * edge_cut)
            count[idx[same]] += 1
            idx = idx[same]
            step += 1
        return count

    nx = run(move_x, right, False)
    ny = run(move_y, down, True)
    u = x + np.where(move_x, right * nx * sx, 0.0)
    v = y + np.where(move_y, down * ny * sy, 0.0)
    return (u + np.where(move_x, right * 0.5 * sx, 0.0), v + np.where(move_y, down * 0.5 * sy, 0.0), u, v)


def _cells_to_pixels(cells: np.ndarray, rows: np.ndarray, cols: np.ndarray, h: int, w: int) -> np.ndarray:
    """(H, W) bool: the pixels a (rows-1, cols-1) cell mask spans, corners included."""
    ri = np.clip(np.searchsorted(rows, np.arange(h), side="right") - 1, 0, len(rows) - 2)
    ci = np.clip(np.searchsorted(cols, np.arange(w), side="right") - 1, 0, len(cols) - 2)
    out = cells[ri[:, None], ci[None, :]]
    # The last row / column of a cell is the first of the next: include it.
    out[1:, :] |= np.isin(np.arange(1, h), rows)[:, None] & out[:-1, :]
    out[:, 1:] |= np.isin(np.arange(1, w), cols)[None, :] & out[:, :-1]
    return out


def stride_for(width: int, height: int, max_vertices: int = 400_000) -> int:
    """Grid stride that keeps a layer under ``max_vertices`` (the default mesh resolution)."""
    return max(1, int(math.ceil(math.sqrt(width * height / float(max_vertices)))))
