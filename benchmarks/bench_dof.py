"""Depth-of-field speed and halos, against a naive baseline on the same inputs.

Peer: "OpenCV blur per depth slice without layering" -- the usual first implementation: cut the
blur radii into the same slices as ours, blur the whole (linear-light) photo once per slice with
the slice's disc kernel (cv2.filter2D), and give every pixel the blurred photo of its own slice.

1. Speed, 12 MP export (quality path): the room scene (true depth) scaled to 4000 x 3000, focused on
   the post at f/1.4 with the scene's 35 mm lens (blur up to ~11 px), and taken as 85 mm f/1.4
   (blur up to ~70 px). Goal <= 3 s.
2. Speed, 1080p preview path. Goal <= 250 ms.
3. Halos: a sharp red square (in focus, 2 m) over a gray textured background (20 m, ~45 px blur) at
   1920 x 1080. Metric: the mean redness, R - (G + B) / 2 in 8-bit units, of the background in a
   ring 1-8 px outside the square (0 = no tint), and the ring's brightness relative to the
   background further out (1 = no dark or bright fringe).

Times are the best of ``--repeat`` runs, wall clock and process CPU time (the machine may be shared:
CPU time is the steadier figure). Ratios are peer / ours.

    python benchmarks/bench_dof.py [--repeat 3] [--room ../shared/scenes/room]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from depthstudio.geometry.camera import Intrinsics  # noqa: E402
from depthstudio.render import dof, lens  # noqa: E402
from depthstudio.render.dof import DofSettings, render_dof  # noqa: E402


def naive_slices(rgb: np.ndarray, z: np.ndarray, intrinsics, settings: DofSettings) -> np.ndarray:
    """The peer: one full-image disc blur per slice of blur radius, each pixel from its own slice."""
    import cv2

    h, w = z.shape
    focus = dof.resolve_focus(z, None, settings)
    coc = lens.circle_of_confusion(z, focus, settings.f_number, dof.lens_focal_mm(intrinsics, settings, w, h),
                                   dof.lens_fx(intrinsics, settings, w, h), dof.max_blur_diameter(settings, w, h))
    radius = coc * 0.5
    ladder = np.asarray(dof._path(False, float(np.abs(radius).max())).ladder)
    rungs = np.concatenate([-ladder[:0:-1], ladder])
    nearest = np.abs(radius[..., None] - rungs[None, None, :]).argmin(axis=2)
    lin = dof.to_linear(rgb, settings)
    out = np.empty_like(lin)
    for k in np.unique(nearest):
        kernel = dof.lens_kernel(round(abs(float(rungs[k])) * 4) / 4)
        blurred = cv2.filter2D(lin, -1, kernel, borderType=cv2.BORDER_REFLECT) if kernel.size > 1 else lin
        mask = nearest == k
        out[mask] = blurred[mask]
    return dof.from_linear(out, settings)


def timed(fn, repeat: int) -> tuple[float, float, object]:
    best_wall = best_cpu = float("inf")
    result = None
    for _ in range(repeat):
        c, t = time.process_time(), time.perf_counter()
        result = fn()
        best_wall = min(best_wall, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best_wall, best_cpu, result


def room(room_dir: Path, width: int, height: int, focal_mm: float | None = None):
    import cv2
    from PIL import Image

    rgb = np.asarray(Image.open(room_dir / "rgb.png").convert("RGB"))
    z = np.load(room_dir / "depth.npy")
    cam = json.loads((room_dir / "camera.json").read_text())
    k = Intrinsics(cam["fx"], cam["fy"], cam["cx"], cam["cy"], cam["width"], cam["height"], "flags")
    rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC)
    z = cv2.resize(z, (width, height), interpolation=cv2.INTER_NEAREST)
    settings = DofSettings(f_number=1.4, focal_mm=focal_mm, focus_point=(385 * width / 640, 200 * height / 480))
    return rgb, z, k.scaled(width, height), settings


def halo_scene(width: int = 1920, height: int = 1080):
    rng = np.random.default_rng(0)
    gray = rng.integers(50, 200, size=(height // 4, width // 4), dtype=np.uint8)
    gray = np.kron(gray, np.ones((4, 4), np.uint8))  # 4 px texture
    rgb = np.repeat(gray[..., None], 3, axis=2)
    z = np.full((height, width), 20.0, np.float32)
    sq = np.s_[height // 2 - 200: height // 2 + 200, width // 2 - 200: width // 2 + 200]
    rgb[sq] = (210, 30, 30)
    z[sq] = 2.0
    settings = DofSettings(f_number=2.0, focus_distance=2.0, focal_mm=85.0, max_blur_px=120.0)
    return rgb, z, Intrinsics.from_fov(width, height), settings, sq


def halo_metric(out: np.ndarray, sq) -> tuple[float, float]:
    h, w = out.shape[:2]
    (r0, r1), (c0, c1) = (sq[0].start, sq[0].stop), (sq[1].start, sq[1].stop)

    def ring(inner, outer):
        m = np.zeros((h, w), bool)
        m[r0 - outer: r1 + outer, c0 - outer: c1 + outer] = True
        m[r0 - inner: r1 + inner, c0 - inner: c1 + inner] = False
        return m

    f = out.astype(np.float64)
    red = f[..., 0] - (f[..., 1] + f[..., 2]) / 2
    lin = np.where(f / 255 <= 0.04045, f / 255 / 12.92, ((f / 255 + 0.055) / 1.055) ** 2.4)[..., 1]
    near, far = ring(1, 8), ring(60, 80)
    return float(red[near].mean()), float(lin[near].mean() / lin[far].mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--room", type=Path, default=REPO.parent / "shared" / "scenes" / "room")
    args = parser.parse_args()
    if not (args.room / "depth.npy").exists():
        print(f"the room scene is needed: {args.room}", file=sys.stderr)
        return 2
    results = {}

    for name, focal in (("12mp_quality_35mm", None), ("12mp_quality_85mm", 85.0)):
        rgb, z, k, s = room(args.room, 4000, 3000, focal)
        coc = dof.blur_map(z, None, k, s)
        ours_wall, ours_cpu, _ = timed(lambda rgb=rgb, z=z, k=k, s=s: render_dof(rgb, z, None, k, s), args.repeat)
        peer_wall, peer_cpu, _ = timed(lambda rgb=rgb, z=z, k=k, s=s: naive_slices(rgb, z, k, s), max(1, args.repeat - 2))
        results[name] = {
            "size": "4000x3000", "max_blur_diameter_px": round(float(np.abs(coc).max()), 1),
            "ours_wall_s": round(ours_wall, 3), "ours_cpu_s": round(ours_cpu, 3),
            "peer_wall_s": round(peer_wall, 3), "peer_cpu_s": round(peer_cpu, 3),
            "speed_ratio_wall": round(peer_wall / ours_wall, 2), "speed_ratio_cpu": round(peer_cpu / ours_cpu, 2),
            "goal_s": 3.0,
        }
        print(name, json.dumps(results[name]), file=sys.stderr)

    rgb, z, k, s = room(args.room, 1920, 1080)
    prev_wall, prev_cpu, _ = timed(lambda: render_dof(rgb, z, None, k, s, preview=True), args.repeat + 2)
    full_wall, full_cpu, _ = timed(lambda: render_dof(rgb, z, None, k, s), args.repeat)
    peer_wall, peer_cpu, _ = timed(lambda: naive_slices(rgb, z, k, s), args.repeat)
    results["1080p"] = {
        "preview_wall_ms": round(prev_wall * 1000, 1), "preview_cpu_ms": round(prev_cpu * 1000, 1),
        "quality_wall_ms": round(full_wall * 1000, 1), "quality_cpu_ms": round(full_cpu * 1000, 1),
        "peer_wall_ms": round(peer_wall * 1000, 1), "peer_cpu_ms": round(peer_cpu * 1000, 1),
        "preview_speed_ratio_wall": round(peer_wall / prev_wall, 2), "goal_preview_ms": 250,
    }

    rgb, z, k, s, sq = halo_scene()
    ours_wall, ours_cpu, ours = timed(lambda: render_dof(rgb, z, None, k, s), args.repeat)
    peer_wall, peer_cpu, peer = timed(lambda: naive_slices(rgb, z, k, s), max(1, args.repeat - 1))
    ours_red, ours_fringe = halo_metric(ours, sq)
    peer_red, peer_fringe = halo_metric(peer, sq)
    results["halo_1080p"] = {
        "background_blur_diameter_px": round(float(np.abs(dof.blur_map(z, None, k, s)).max()), 1),
        "ours_ring_redness": round(ours_red, 2), "peer_ring_redness": round(peer_red, 2),
        "ours_ring_brightness": round(ours_fringe, 3), "peer_ring_brightness": round(peer_fringe, 3),
        "square_unchanged_ours": bool(np.array_equal(ours[sq], rgb[sq])),
        "ours_wall_s": round(ours_wall, 3), "peer_wall_s": round(peer_wall, 3),
        "speed_ratio_wall": round(peer_wall / ours_wall, 2),
    }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
