"""Scoring view synthesis against ground-truth views: a forward splat, its holes, masked PSNR.

A photo with metric depth is splatted into a camera moved by ``position`` (camera frame, glTF axes).
Where the splat leaves holes the new view sees something the photo never saw: those pixels
(dilated by one pixel) are the *disoccluded* ones; the rest that lies inside the photo's frame is
*visible*. Pixels that only a view past the photo's border could show (the strip a sideways move
brings into the frame) are neither: they are found by splatting the depth extended past the border.

Used by benchmarks/bench_fill.py and the fill tests; nothing here is needed to render.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depthstudio.geometry.camera import Intrinsics


def _project(z: np.ndarray, k: Intrinsics, position, supersample: int, offset: tuple[int, int] = (0, 0)):
    """Target pixel index (flat, -1 outside) and depth of every sub-sample of the depth grid."""
    h, w = z.shape
    s = int(supersample)
    sub = (np.arange(s) + 0.5) / s
    v = (np.arange(h)[:, None] + sub[None, :]).reshape(-1) - offset[0]  # (h*s,)
    u = (np.arange(w)[:, None] + sub[None, :]).reshape(-1) - offset[1]
    zz = np.repeat(np.repeat(z, s, 0), s, 1).astype(np.float64)
    px = np.asarray(position, np.float64)
    x = (u[None, :] - k.cx) / k.fx * zz - px[0]
    y = (k.cy - v[:, None]) / k.fy * zz - px[1]
    d = zz + px[2]  # distance along the view axis in the moved camera (it looks down -z)
    with np.errstate(divide="ignore", invalid="ignore"):
        tu = k.cx + k.fx * x / d
        tv = k.cy - k.fy * y / d
    ok = np.isfinite(tu) & np.isfinite(tv) & (d > 1e-6) & (zz > 0)
    col = np.floor(np.where(ok, tu, -1)).astype(np.int64)
    row = np.floor(np.where(ok, tv, -1)).astype(np.int64)
    ok &= (col >= 0) & (col < k.width) & (row >= 0) & (row < k.height)
    return np.where(ok, row * k.width + col, -1).ravel(), d.ravel()


def forward_splat(rgb: np.ndarray, z: np.ndarray, valid: np.ndarray, k: Intrinsics, position,
                  supersample: int = 2, tolerance: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """(image, covered): every pixel split into supersample^2 points, projected into the moved
    camera (same orientation and intrinsics); the nearest point wins, and the points within
    ``tolerance`` (relative depth) of it are averaged. ``covered`` is False at the holes."""
    h, w = z.shape
    z = np.where(valid, z, 0).astype(np.float64)
    idx, d = _project(z, k, position, supersample)
    s = int(supersample)
    colour = np.repeat(np.repeat(rgb.astype(np.float64), s, 0), s, 1).reshape(-1, 3)
    keep = idx >= 0
    idx, d, colour = idx[keep], d[keep], colour[keep]
    n = k.width * k.height
    zbuf = np.full(n, np.inf)
    np.minimum.at(zbuf, idx, d)
    win = d <= zbuf[idx] * (1.0 + tolerance)
    idx, colour = idx[win], colour[win]
    count = np.bincount(idx, minlength=n).astype(np.float64)
    out = np.zeros((n, 3))
    for c in range(3):
        out[:, c] = np.bincount(idx, weights=colour[:, c], minlength=n)
    covered = count > 0
    out[covered] /= count[covered, None]
    image = np.clip(np.round(out), 0, 255).astype(np.uint8).reshape(k.height, k.width, 3)
    return image, covered.reshape(k.height, k.width)


def frame_coverage(z: np.ndarray, valid: np.ndarray, k: Intrinsics, position, margin: int = 160,
                   supersample: int = 2) -> np.ndarray:
    """(H, W) bool: pixels of the moved view that show the photo's frame, not what lies past its
    border. The depth is extended past the border by repeating it (``margin`` pixels) and splatted;
    where the nearest point comes from the extension, the view looks past the photo's border."""
    import cv2

    h, w = z.shape
    zf = np.where(valid, z, 0).astype(np.float32)
    padded = cv2.copyMakeBorder(zf, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
    idx, d = _project(padded, k, position, supersample, offset=(margin, margin))
    s = int(supersample)
    outer = np.ones(padded.shape, bool)
    outer[margin:margin + h, margin:margin + w] = False
    outer = np.repeat(np.repeat(outer, s, 0), s, 1).ravel()
    keep = idx >= 0
    idx, d, outer = idx[keep], d[keep], outer[keep]
    n = k.width * k.height
    zbuf = np.full(n, np.inf)
    np.minimum.at(zbuf, idx, d)
    win = d <= zbuf[idx] * (1.0 + 1e-6)
    beyond = np.zeros(n, bool)
    beyond[idx[win & outer]] = True
    inner = np.zeros(n, bool)
    inner[idx[win & ~outer]] = True
    return (inner | ~beyond).reshape(k.height, k.width)


@dataclass
class ViewMasks:
    holes: np.ndarray  # the splat's holes inside the frame
    disoccluded: np.ndarray  # holes dilated by one pixel, inside the frame
    visible: np.ndarray  # inside the frame, away from every hole
    beyond: np.ndarray  # what lies past the photo's border


def view_masks(covered: np.ndarray, inside: np.ndarray) -> ViewMasks:
    import cv2

    holes = ~covered & inside
    grow = np.ones((3, 3), np.uint8)
    disoccluded = cv2.dilate(holes.astype(np.uint8), grow).astype(bool) & inside
    beyond_grown = cv2.dilate((~inside).astype(np.uint8), grow).astype(bool)
    visible = ~cv2.dilate((~covered).astype(np.uint8), grow).astype(bool) & ~beyond_grown
    return ViewMasks(holes, disoccluded, visible, ~inside)


def psnr(image: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio (dB, 8-bit) over ``mask`` (all pixels when None)."""
    diff = image.astype(np.float64) - truth.astype(np.float64)
    if mask is not None:
        if not mask.any():
            return float("nan")
        diff = diff[mask]
    mse = float(np.mean(diff ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


@dataclass
class BoxScene:
    """A synthetic scene whose hidden background is known (see ``box_scene``)."""

    rgb: np.ndarray  # (H, W, 3) uint8: the photo
    z: np.ndarray  # (H, W) float32: its planar depth
    intrinsics: Intrinsics
    background: np.ndarray  # (H, W, 3) uint8: the wall alone, as if nothing stood in front
    wall_z: float
    boxes: list  # (row slice, col slice, depth, colour (3,)) nearest last


def box_scene(width: int = 480, height: int = 270, seed: int = 0, wall_z: float = 6.0) -> BoxScene:
    """Two flat-coloured, lightly textured boxes (one partly in front of the other) before a wall of
    horizontal stripes and fine texture, with anti-aliased silhouettes as a camera sees them."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = height, width
    rows = np.arange(h, dtype=np.float32)[:, None]
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * rows / max(8.0, h / 12.0))
    base = np.array([70.0, 110.0, 170.0]) + np.array([90.0, 70.0, 40.0]) * stripes[..., None]
    grain = cv2.GaussianBlur(rng.normal(0, 14, (h, w, 3)).astype(np.float32), (0, 0), 1.2)
    wall = np.clip(base + grain, 0, 255)
    z = np.full((h, w), wall_z, np.float32)
    # Rendered at 4x and reduced, so silhouettes are anti-aliased like a photo's.
    s = 4
    big = cv2.resize(wall.astype(np.float32), (w * s, h * s), interpolation=cv2.INTER_NEAREST)
    boxes = []
    for (r0, r1, c0, c1), depth, colour in (((0.25, 0.8, 0.18, 0.42), 3.5, (220, 60, 40)),
                                             ((0.35, 0.95, 0.35, 0.5), 2.2, (40, 190, 60))):
        rs = slice(int(r0 * h * s), int(r1 * h * s))
        cs = slice(int(c0 * w * s), int(c1 * w * s))
        patch = np.array(colour, np.float32) + rng.normal(0, 6, (rs.stop - rs.start, cs.stop - cs.start, 3))
        big[rs, cs] = patch
        small = (slice(rs.start // s, rs.stop // s), slice(cs.start // s, cs.stop // s))
        z[small] = depth
        boxes.append((small, (cs.start / s, cs.stop / s), depth, np.array(colour, np.float32)))
    rgb = np.clip(cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA), 0, 255).astype(np.uint8)
    k = Intrinsics.from_fov(w, h, 60.0)
    return BoxScene(rgb, z, k, wall.astype(np.uint8), wall_z, boxes)


def box_scene_view(scene: BoxScene, position) -> np.ndarray:
    """The true view of a box scene from a camera moved by ``position`` (x, y only), drawn at 4x and
    reduced: the wall (known everywhere) with the boxes over it, farthest first."""
    import cv2

    h, w = scene.z.shape
    k = scene.intrinsics
    s = 4
    px, py = float(position[0]), float(position[1])

    def shift(depth):  # pixel shift of a plane at ``depth`` for this move
        return -k.fx * px / depth, k.fy * py / depth

    dx, dy = shift(scene.wall_z)
    m = np.array([[1, 0, dx * s], [0, 1, dy * s]], np.float32)
    big = cv2.resize(scene.background.astype(np.float32), (w * s, h * s), interpolation=cv2.INTER_NEAREST)
    big = cv2.warpAffine(big, m, (w * s, h * s), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
    for (rows, _), (c0, c1), depth, colour in sorted(scene.boxes, key=lambda b: -b[2]):
        bx, by = shift(depth)
        r0, r1 = int(round((rows.start + by) * s)), int(round((rows.stop + by) * s))
        a, b = int(round((c0 + bx) * s)), int(round((c1 + bx) * s))
        big[max(0, r0):max(0, r1), max(0, a):max(0, b)] = colour
    return np.clip(cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA), 0, 255).astype(np.uint8)
