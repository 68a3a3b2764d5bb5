"""Make the depth-of-field pictures of docs/dof.md (needs ../shared for the room scene and samples).

    python docs/images/dof_examples.py

Depth: the room scene's exact depth; for the bridge photo (demo06) a hand-built corridor prior
(deck, truss roof and sides as planes through the vanishing point), because no depth-model
weights can be downloaded on the machine these were made on. With weights, use
``depthstudio dof photo.jpg -o out.png --focus-point X,Y`` instead.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from depthstudio.geometry.camera import Intrinsics  # noqa: E402
from depthstudio.render.dof import DofSettings, render_dof  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from bench_dof import halo_scene, naive_slices  # noqa: E402


def label(img: np.ndarray, text: str) -> Image.Image:
    im = Image.fromarray(img)
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, 8 + 7 * len(text), 18), fill=(0, 0, 0))
    draw.text((4, 3), text, fill=(255, 255, 255))
    return im


def row(images: list[Image.Image], gap: int = 4) -> Image.Image:
    w = sum(i.width for i in images) + gap * (len(images) - 1)
    out = Image.new("RGB", (w, max(i.height for i in images)), (255, 255, 255))
    x = 0
    for i in images:
        out.paste(i, (x, 0))
        x += i.width + gap
    return out


def room():
    rgb = np.asarray(Image.open(SHARED / "scenes/room/rgb.png").convert("RGB"))
    z = np.load(SHARED / "scenes/room/depth.npy")
    cam = json.loads((SHARED / "scenes/room/camera.json").read_text())
    k = Intrinsics(cam["fx"], cam["fy"], cam["cx"], cam["cy"], cam["width"], cam["height"], "flags")
    return rgb, z, k


def room_examples() -> None:
    rgb, z, k = room()
    post = render_dof(rgb, z, z > 0, k, DofSettings(f_number=0.8, focus_point=(385, 200)))
    wall = render_dof(rgb, z, z > 0, k, DofSettings(f_number=0.8, focus_distance=12.5))
    row([label(rgb, "photo (room scene, exact depth)"), label(post, "focus on the post, 35 mm f/0.8"),
         label(wall, "focus on the wall, 35 mm f/0.8")]).save(HERE / "dof_room.jpg", quality=92)


def bokeh_examples() -> None:
    rgb, z, k = room()
    night = (rgb.astype(np.float32) * 0.25).astype(np.uint8)  # the room at night ...
    rng = np.random.default_rng(3)
    for _ in range(60):  # ... with string lights on the back wall: small clipped highlights
        x, y = int(rng.integers(10, 630)), int(rng.integers(10, 220))
        if z[y, x] > 10:
            night[y - 2: y + 3, x - 2: x + 3] = (255, 235, 190)
    s = dict(f_number=2.0, focal_mm=135.0, focus_point=(385, 200))  # the photo taken as 135 mm
    disc = render_dof(night, z, z > 0, k, DofSettings(**s))
    hexa = render_dof(night, z, z > 0, k, DofSettings(**s, blades=6, blade_rotation_deg=15))
    flat = render_dof(night, z, z > 0, k, DofSettings(**s, highlight_boost=0.0))
    crop = np.s_[0:240, 150:510]
    row([label(np.ascontiguousarray(flat[crop]), "no highlight boost"),
         label(np.ascontiguousarray(disc[crop]), "round aperture, highlights bloom"),
         label(np.ascontiguousarray(hexa[crop]), "6 blades")]).save(HERE / "dof_bokeh.jpg", quality=92)


def halo_examples() -> None:
    rgb, z, k, s, sq = halo_scene()
    ours = render_dof(rgb, z, None, k, s)
    peer = naive_slices(rgb, z, k, s)
    crop = np.s_[sq[0].start - 90: sq[0].start + 150, sq[1].start - 120: sq[1].start + 120]
    row([label(np.ascontiguousarray(peer[crop]), "blur per depth slice (no layers)"),
         label(np.ascontiguousarray(ours[crop]), "DepthStudio (layered)")]).save(HERE / "dof_halo.png")


def corridor_depth(width: int, height: int, fx: float, vp: tuple[float, float]) -> np.ndarray:
    """Planar depth of a box corridor seen from inside: deck 1.6 m below, roof 7 m above, sides 3.5 m away."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    dx, dy = (xx - vp[0]) / fx, (yy - vp[1]) / fx
    with np.errstate(divide="ignore"):
        deck = np.where(dy > 0, 1.6 / dy, np.inf)
        roof = np.where(dy < 0, 7.0 / -dy, np.inf)
        sides = np.where(dx != 0, 3.5 / np.abs(dx), np.inf)
    return np.minimum(np.minimum(deck, roof), np.minimum(sides, 150.0)).astype(np.float32)


def bridge_examples() -> None:
    photo = Image.open(SHARED / "samples/photos/demo06.jpg").convert("RGB")
    photo = photo.resize((1024, round(1024 * photo.height / photo.width)), Image.LANCZOS)
    rgb = np.asarray(photo)
    h, w = rgb.shape[:2]
    k = Intrinsics.from_fov(w, h, 70.0)
    z = corridor_depth(w, h, k.fx, (0.522 * w, 0.822 * h))
    frames = []
    for d in (4.0, 8.0, 16.0, 40.0):
        out = render_dof(rgb, z, None, k, DofSettings(f_number=1.4, focal_mm=50.0, focus_distance=d))
        frames.append(label(out[::2, ::2].copy(), f"focus {d:g} m, 50 mm f/1.4"))
    top, bottom = row(frames[:2]), row(frames[2:])
    sheet = Image.new("RGB", (top.width, top.height * 2 + 4), (255, 255, 255))
    sheet.paste(top, (0, 0))
    sheet.paste(bottom, (0, top.height + 4))
    sheet.save(HERE / "dof_bridge_pull.jpg", quality=90)
    # the focus pull as a short video (3 m -> 60 m and back)
    from depthstudio.render.dof import focus_pull_distances
    from depthstudio.video.writer import VideoWriter

    small = np.asarray(photo.resize((640, round(640 * h / w)), Image.LANCZOS))
    ks = k.scaled(small.shape[1], small.shape[0])
    zs = corridor_depth(small.shape[1], small.shape[0], ks.fx, (0.522 * small.shape[1], 0.822 * small.shape[0]))
    distances = focus_pull_distances(3.0, 60.0, 48)
    with VideoWriter(HERE / "dof_bridge_pull.mp4", fps=24, size=(small.shape[1], small.shape[0]), quality=60) as video:
        for d in np.concatenate([distances, distances[::-1]]):
            video.write(render_dof(small, zs, None, ks, DofSettings(f_number=1.4, focal_mm=50.0), preview=True,
                                   focus_distance=float(d)))


if __name__ == "__main__":
    if not (SHARED / "scenes/room/depth.npy").exists():
        sys.exit(f"needs {SHARED}")
    room_examples()
    bokeh_examples()
    halo_examples()
    bridge_examples()
    print("written:", *sorted(p.name for p in HERE.glob("dof_*") if p.suffix != ".py"))
