"""Render the bundled sample scene: a small room with spheres and a box, by vectorised ray casting.

Writes resources/sample/{image.png, depth.npy, camera.json}: the photo, its exact planar depth in
metres (z along the optical axis, through pixel centres) and the pinhole intrinsics. Deterministic;
run it again to regenerate:  python scripts/make_sample_scene.py
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 512, 384
HFOV_DEG = 60.0
LIGHT = np.array([0.6, 1.7, -2.2])

# planes: (normal pointing into the room, offset d with n.x = d, colour function)
ROOM = {"floor": ((0, 1, 0), -1.2), "ceiling": ((0, -1, 0), -2.2), "back": ((0, 0, 1), -7.5),
        "left": ((1, 0, 0), -2.6), "right": ((-1, 0, 0), -2.6)}
SPHERES = {"big_sphere": ((-0.9, -0.45, -3.9), 0.75, (0.85, 0.25, 0.2)),
           "small_sphere": ((0.55, -0.92, -2.6), 0.28, (0.2, 0.45, 0.9))}
BOX = ("box", (0.7, -1.2, -5.4), (1.9, 0.05, -4.2), (0.95, 0.75, 0.25))


def rays(width: int, height: int, fx: float, sub: tuple[float, float] = (0.5, 0.5)) -> np.ndarray:
    cols, rows = np.meshgrid(np.arange(width) + sub[0], np.arange(height) + sub[1])
    d = np.stack([(cols - width / 2) / fx, (height / 2 - rows) / fx, -np.ones_like(cols, dtype=float)], -1)
    return d.reshape(-1, 3)  # not normalised: t is then the planar depth


def hit_plane(o, d, n, off):
    n = np.asarray(n, float)
    denom = d @ n
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (off - o @ n) / denom
    return np.where((t > 1e-6) & np.isfinite(t), t, np.inf)


def hit_sphere(o, d, c, r):
    oc = o - np.asarray(c, float)
    a = np.einsum("ij,ij->i", d, d)
    b = 2 * np.einsum("ij,ij->i", d, oc) if oc.ndim == 2 else 2 * d @ oc
    cc = (np.einsum("ij,ij->i", oc, oc) if oc.ndim == 2 else oc @ oc) - r * r
    disc = b * b - 4 * a * cc
    sq = np.sqrt(np.maximum(disc, 0))
    t0, t1 = (-b - sq) / (2 * a), (-b + sq) / (2 * a)
    t = np.where(t0 > 1e-6, t0, np.where(t1 > 1e-6, t1, np.inf))
    return np.where(disc >= 0, t, np.inf)


def hit_box(o, d, lo, hi):
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (np.asarray(lo) - o) / d
        t2 = (np.asarray(hi) - o) / d
    tmin = np.nanmax(np.minimum(t1, t2), axis=-1)
    tmax = np.nanmin(np.maximum(t1, t2), axis=-1)
    t = np.where(tmin > 1e-6, tmin, tmax)
    return np.where((tmax >= np.maximum(tmin, 1e-6)), t, np.inf)


def trace(o, d):
    """Nearest hit: (t, object index, normals)."""
    names, ts = [], []
    for name, (n, off) in ROOM.items():
        names.append(name)
        ts.append(hit_plane(o, d, n, off))
    for name, (c, r, _) in SPHERES.items():
        names.append(name)
        ts.append(hit_sphere(o, d, c, r))
    names.append(BOX[0])
    ts.append(hit_box(o, d, BOX[1], BOX[2]))
    ts = np.stack(ts, 1)
    idx = np.argmin(ts, 1)
    t = ts[np.arange(len(d)), idx]
    p = o + d * t[:, None]
    normals = np.zeros_like(p)
    for i, name in enumerate(names):
        sel = idx == i
        if name in ROOM:
            normals[sel] = ROOM[name][0]
        elif name in SPHERES:
            normals[sel] = (p[sel] - SPHERES[name][0]) / SPHERES[name][1]
        else:
            lo, hi = np.asarray(BOX[1]), np.asarray(BOX[2])
            q = p[sel]
            dist = np.stack([np.abs(q - lo), np.abs(q - hi)], 1)  # (n, 2, 3)
            flat = dist.reshape(len(q), 6).argmin(1)
            n = np.zeros((len(q), 3))
            n[np.arange(len(q)), flat % 3] = np.where(flat < 3, -1.0, 1.0)
            normals[sel] = n
    return t, idx, names, p, normals


def albedo(names, idx, p):
    col = np.zeros_like(p)
    for i, name in enumerate(names):
        sel = idx == i
        q = p[sel]
        if name == "floor":
            checker = (np.floor(q[:, 0] * 2) + np.floor(q[:, 2] * 2)) % 2
            col[sel] = np.where(checker[:, None] > 0, [0.75, 0.72, 0.65], [0.35, 0.3, 0.28])
        elif name == "back":
            stripe = (np.floor(q[:, 0] * 3) % 2)[:, None]
            col[sel] = np.where(stripe > 0, [0.55, 0.7, 0.6], [0.45, 0.6, 0.52])
        elif name in ("left", "right"):
            col[sel] = [0.7, 0.62, 0.5] if name == "left" else [0.5, 0.58, 0.72]
        elif name == "ceiling":
            col[sel] = [0.9, 0.9, 0.88]
        elif name in SPHERES:
            col[sel] = SPHERES[name][2]
        else:
            col[sel] = BOX[3]
    return col


def shade(o, d):
    t, idx, names, p, n = trace(o, d)
    to_light = LIGHT - p
    dist = np.linalg.norm(to_light, axis=1)
    ldir = to_light / dist[:, None]
    ts, *_ = trace(p + n * 1e-4, ldir)
    lit = ts > dist
    lambert = np.clip(np.einsum("ij,ij->i", n, ldir), 0, 1) * lit / (1 + 0.04 * dist**2)
    col = albedo(names, idx, p) * (0.25 + 1.1 * lambert[:, None])
    return t, np.clip(col, 0, 1) ** (1 / 2.2)


def render(width=WIDTH, height=HEIGHT, hfov=HFOV_DEG):
    fx = 0.5 * width / math.tan(math.radians(hfov) / 2)
    o = np.zeros(3)
    depth, _ = shade(o, rays(width, height, fx))
    colour = np.zeros((height * width, 3))
    offsets = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
    for sub in offsets:  # 4 samples per pixel for smooth edges in the photo; depth stays exact
        colour += shade(o, rays(width, height, fx, sub))[1] / len(offsets)
    image = (colour.reshape(height, width, 3) * 255 + 0.5).astype(np.uint8)
    camera = {"width": width, "height": height, "fx": fx, "fy": fx, "cx": width / 2, "cy": height / 2,
              "hfov_deg": hfov, "depth_units": "metres, planar (z along the optical axis)",
              "frame": "camera frame, glTF convention: x right, y up, camera looks down -z",
              "depth_min": float(depth.min()), "depth_max": float(depth.max()),
              "made_by": "scripts/make_sample_scene.py"}
    return image, depth.reshape(height, width).astype(np.float32), camera


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).resolve().parents[1] / "resources" / "sample")
    args = parser.parse_args()
    image, depth, camera = render()
    args.output.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(args.output / "image.png", optimize=True)
    np.save(args.output / "depth.npy", depth)
    (args.output / "camera.json").write_text(json.dumps(camera, indent=2) + "\n")
    print(f"wrote {args.output}: image.png, depth.npy ({depth.min():.2f}-{depth.max():.2f} m), camera.json")


if __name__ == "__main__":
    main()
