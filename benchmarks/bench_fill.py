"""Revealed-area fill as view synthesis, scored against ground-truth views (issue 14).

    python benchmarks/bench_fill.py                  # the room (../shared/scenes/room), with today's code
    python benchmarks/bench_fill.py --scene DIR      # any scene laid out the same way
    python benchmarks/bench_fill.py --reference none # skip the run of the reference commit

A scene folder holds rgb.png, depth.npy (metric, planar), camera.json (fx, fy, cx, cy, width,
height) and views/<name>.png + views/views.json ({"right": {"position": [x, y, z]}, ...}: the
camera moved in metres in the camera frame, same orientation and intrinsics). Every view is
rendered by the parallax renderer at exactly that pose and scored with PSNR against the true view:

- *disoccluded*: where a forward splat of the photo into the new view leaves holes, dilated by one
  pixel (the strip beyond the photo's border is scored by nobody, see render/evaluate.py);
- *visible*: the rest of the frame, away from the holes.

Peers: (a) the forward splat with its holes filled by OpenCV's Telea inpainting (radius 5),
(b) a rubber-sheet mesh (the full-resolution depth grid without edge cuts), drawn by the same
renderer. Preparation time: ``prepare_layers`` for one 1920x1080 frame of the scene, ours against
the reference commit's (``--reference``, default the commit this fill replaced), run alternately in
separate processes; the ratio is the result.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if not os.environ.get("BENCH_FILL_NO_REPO"):
    sys.path.insert(0, str(REPO))

#: The commit whose fill this one replaced (OpenCV Telea per depth group + mirroring).
REFERENCE = "5273a5e"


def load_scene(folder: Path):
    from PIL import Image

    from depthstudio.geometry.camera import Intrinsics

    rgb = np.asarray(Image.open(folder / "rgb.png").convert("RGB"))
    z = np.load(folder / "depth.npy").astype(np.float32)
    cam = json.loads((folder / "camera.json").read_text())
    k = Intrinsics(cam["fx"], cam["fy"], cam["cx"], cam["cy"], cam["width"], cam["height"])
    views_file = folder / "views" / "views.json"
    if not views_file.exists():
        views_file = folder / "views.json"
    views = {}
    for name, view in json.loads(views_file.read_text()).items():
        if any(abs(float(a)) > 1e-9 for a in view.get("rotation", (0, 0, 0))):
            continue  # only translations are scored
        truth = np.asarray(Image.open(views_file.parent / f"{name}.png").convert("RGB"))
        views[name] = (np.asarray(view["position"], np.float64), truth)
    return rgb, z, k, views


def render_ours(rgb, z, k, position, settings=None):
    """The parallax renderer asked for exactly this pose (band sized for the move)."""
    from depthstudio.render.camera_path import CameraPose
    from depthstudio.render.fill import reveal_width
    from depthstudio.render.parallax import ParallaxRenderer, ParallaxSettings

    valid = np.isfinite(z) & (z > 0)
    settings = settings or ParallaxSettings()
    settings.size = (k.width, k.height)
    if settings.fill.band_px is None:
        settings.fill.band_px = reveal_width(z, valid, k.fx, float(np.linalg.norm(position)))
    with ParallaxRenderer(rgb, (z, valid), settings, intrinsics=k) as renderer:
        return renderer.render_pose(CameraPose(position=np.asarray(position, np.float64)))


def render_rubber_sheet(rgb, z, k, position):
    from depthstudio.render.camera_path import CameraPose
    from depthstudio.render.gl import offscreen_context
    from depthstudio.render.layers import grid_layer
    from depthstudio.render.scene import OffscreenRenderer, Scene

    valid = np.isfinite(z) & (z > 0)
    layer = grid_layer(z, valid, k, rgb, stride=1, name="rubber")
    ctx = offscreen_context()
    with Scene(ctx, [layer]) as scene, OffscreenRenderer(ctx, (k.width, k.height), samples=4) as target:
        return target.render(scene, CameraPose(position=np.asarray(position, np.float64)), k)


def render_telea(rgb, z, k, position, radius: int = 5):
    import cv2

    from depthstudio.render.evaluate import forward_splat

    splat, covered = forward_splat(rgb, z, np.isfinite(z) & (z > 0), k, position)
    return cv2.inpaint(splat, (~covered).astype(np.uint8), radius, cv2.INPAINT_TELEA), splat, covered


def render_views(folder: Path, out: Path) -> None:
    """Our renders of every view, as <name>.npy in ``out`` (run in the reference's tree too)."""
    rgb, z, k, views = load_scene(folder)
    for name, (position, _) in views.items():
        np.save(out / f"{name}.npy", render_ours(rgb, z, k, position))


def score_scene(folder: Path, peers: bool = True, save: Path | None = None, renders: Path | None = None) -> dict:
    """PSNR rows per view; ``renders``: score the images found there as ours instead of rendering."""
    from depthstudio.render.evaluate import frame_coverage, psnr, view_masks

    rgb, z, k, views = load_scene(folder)
    valid = np.isfinite(z) & (z > 0)
    rows = {}
    for name, (position, truth) in views.items():
        ours = np.load(renders / f"{name}.npy") if renders else render_ours(rgb, z, k, position)
        telea, splat, covered = render_telea(rgb, z, k, position)
        masks = view_masks(covered, frame_coverage(z, valid, k, position))
        row = {"disoccluded_px": int(masks.disoccluded.sum()),
               "ours_disoccluded": psnr(ours, truth, masks.disoccluded),
               "ours_visible": psnr(ours, truth, masks.visible)}
        if peers:
            rubber = render_rubber_sheet(rgb, z, k, position)
            row.update(telea_disoccluded=psnr(telea, truth, masks.disoccluded),
                       rubber_disoccluded=psnr(rubber, truth, masks.disoccluded),
                       rubber_visible=psnr(rubber, truth, masks.visible),
                       splat_visible=psnr(splat, truth, masks.visible))
            if save is not None:
                from PIL import Image

                save.mkdir(parents=True, exist_ok=True)
                for label, image in (("ours", ours), ("telea", telea), ("rubber", rubber), ("truth", truth)):
                    Image.fromarray(image).save(save / f"{name}_{label}.png")
                Image.fromarray((masks.disoccluded * 255).astype(np.uint8)).save(save / f"{name}_mask.png")
        rows[name] = row
    return rows


def prep_seconds(folder: Path, repeats: int = 2) -> float:
    """Fastest of ``repeats`` runs of prepare_layers on one 1920x1080 frame of the scene."""
    import cv2

    from depthstudio.render.parallax import ParallaxSettings, prepare_layers

    rgb, z, k, _ = load_scene(folder)
    w, h = 1920, 1080
    rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_CUBIC)
    z = cv2.resize(z, (w, h), interpolation=cv2.INTER_NEAREST)
    k = k.scaled(w, h)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        prepare_layers(rgb, z, np.isfinite(z) & (z > 0), k, ParallaxSettings(size=(w, h)), (w, h))
        best = min(best, time.perf_counter() - t)
    return best


def static_shot(frames: int = 8, size=(480, 270), seed: int = 3, noise: float = 2.0, depth_noise: float = 0.005):
    """A still scene (two textured boxes before a striped, textured wall, see render.evaluate.
    box_scene) as a camera would record it: every frame the same picture plus sensor/codec noise,
    and its depth with a model's frame-to-frame noise. Yields (rgb, z, true z, intrinsics)."""
    from depthstudio.render.evaluate import box_scene

    scene = box_scene(*size, seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        noisy = np.clip(scene.rgb + rng.normal(0, noise, scene.rgb.shape), 0, 255).astype(np.uint8)
        z = scene.z * np.exp(rng.normal(0, depth_noise, scene.z.shape))
        yield noisy, z.astype(np.float32), scene.z, scene.intrinsics


def flicker(reuse: bool = True, frames: int = 8, **shot) -> float:
    """Mean absolute change (grey levels) between consecutive frames over the revealed pixels of a
    still shot rendered at one fixed sideways pose, each frame prepared afresh as video parallax does
    (``reuse``: with the previous frame's fill memory)."""
    from depthstudio.render.camera_path import CameraPose
    from depthstudio.render.evaluate import forward_splat, frame_coverage
    from depthstudio.render.gl import offscreen_context
    from depthstudio.render.parallax import ParallaxSettings, prepare_layers
    from depthstudio.render.scene import OffscreenRenderer, Scene

    ctx = offscreen_context()
    memory, previous, changes = None, None, []
    settings = None
    for rgb, z, z_true, k in static_shot(frames, **shot):
        h, w = z.shape
        pose = CameraPose(position=np.array([0.12, 0.0, 0.0]))
        if settings is None:
            settings = ParallaxSettings(size=(w, h))
            from depthstudio.render.fill import reveal_width

            settings.fill.band_px = reveal_width(z_true, z_true > 0, k.fx, 0.12)
            _, covered = forward_splat(rgb, z_true, z_true > 0, k, pose.position)
            import cv2

            holes = ~covered & frame_coverage(z_true, z_true > 0, k, pose.position)
            revealed = cv2.erode(holes.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        prepared = prepare_layers(rgb, z, z > 0, k, settings, (w, h), fill_memory=memory if reuse else None)
        memory = prepared.fill_memory
        with Scene(ctx, prepared.layers) as scene, OffscreenRenderer(ctx, (w, h)) as target:
            image = target.render(scene, pose, k).astype(np.float32)
        if previous is not None:
            changes.append(float(np.abs(image - previous)[revealed].mean()))
        previous = image
    return float(np.mean(changes))


def _reference_tree(ref: str) -> Path | None:
    """The reference commit's package, extracted into a temporary folder (None without git)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_fill_ref_"))
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "depthstudio"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"reference {ref} not available ({exc}); no comparison with it")
        return None
    return tmp


def _run_child(tree: Path | None, args: list[str]) -> dict:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
        env["BENCH_FILL_NO_REPO"] = "1"
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.1f} dB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scene", type=Path, default=REPO.parent / "shared" / "scenes" / "room")
    parser.add_argument("--reference", default=REFERENCE, help="git commit to compare with ('none' to skip)")
    parser.add_argument("--save", type=Path, help="write every view's renders here")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--child", choices=("render", "time"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "render":
        render_views(args.scene, args.out)
        print("{}")
        return
    if args.child == "time":
        print(json.dumps({"seconds": prep_seconds(args.scene, repeats=1)}))
        return
    if not (args.scene / "depth.npy").exists():
        sys.exit(f"{args.scene}: no scene there (rgb.png, depth.npy, camera.json, views/)")

    rows = score_scene(args.scene, save=args.save)
    tree = _reference_tree(args.reference) if args.reference != "none" else None
    try:
        _report(args, rows, tree)
    finally:
        if tree is not None:
            import shutil

            shutil.rmtree(tree, ignore_errors=True)


def _report(args, rows: dict, tree: Path | None) -> None:
    before = {}
    if tree:
        _run_child(tree, ["--scene", str(args.scene), "--child", "render", "--out", str(tree)])
        before = score_scene(args.scene, peers=False, renders=tree)
    print(f"scene: {args.scene}")
    print("| view | ours disoccluded | today disoccluded | Telea disoccluded | rubber sheet disoccluded "
          "| ours visible | today visible | splat visible | rubber visible |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        b = before.get(name, {})
        print(f"| {name} | {fmt(r['ours_disoccluded'])} | {fmt(b.get('ours_disoccluded'))} "
              f"| {fmt(r['telea_disoccluded'])} | {fmt(r['rubber_disoccluded'])} | {fmt(r['ours_visible'])} "
              f"| {fmt(b.get('ours_visible'))} | {fmt(r['splat_visible'])} | {fmt(r['rubber_visible'])} |")
    print()
    for name, r in rows.items():
        print(f"{name}: ours - Telea = {r['ours_disoccluded'] - r['telea_disoccluded']:+.2f} dB disoccluded "
              f"({r['disoccluded_px']} px); ours - splat = {r['ours_visible'] - r['splat_visible']:+.2f} dB visible")
    print(f"flicker on a still shot, revealed pixels: {flicker(True):.2f} grey levels with the previous frame's "
          f"fill reused, {flicker(False):.2f} without (input noise 2.0)")
    if args.no_timing:
        return
    ours, ref = [], []
    for _ in range(2):  # alternate, so load on the machine hits both alike
        ours.append(_run_child(None, ["--scene", str(args.scene), "--child", "time"])["seconds"])
        if tree:
            ref.append(_run_child(tree, ["--scene", str(args.scene), "--child", "time"])["seconds"])
    line = f"preparation of one 1920x1080 frame: ours {min(ours):.2f} s"
    if ref:
        line += f", reference {args.reference} {min(ref):.2f} s = {min(ours) / min(ref):.2f}x"
    print(line)


if __name__ == "__main__":
    main()
