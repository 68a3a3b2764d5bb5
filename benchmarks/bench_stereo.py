"""Stereo 3D (issue 15): a stereo pair against one parallax frame, the stereo video effect against
the depth video, and memory against clip length.

1. Photo: ``StereoRenderer`` (prepare the layers once, render both eyes, compose side by side) vs
   ``ParallaxRenderer`` (prepare, render one frame) on the same 1080p photo and depth, both from
   scratch (GL scene upload included). Goal: <= 2.2x.
2. Video throughput: ``process_video(effect="stereo")`` (sbs) vs ``effect="depth"`` (16-bit FFV1 +
   preview) on the same small clip with the same tiny random-weight model. Goal: >= 0.6x.
3. Memory: peak RSS of ``--effect stereo`` (one fresh process each) on a 10 s and a 60 s clip.
   Goal: within 1.2x.

Clips are small in pixels (the stereo cost per pixel is measured by 1.; 2. and 3. measure the
pipeline), so the whole run takes a couple of minutes on a CPU.

    python benchmarks/bench_stereo.py [--size 1920x1080] [--clip 160x90] [--fps 6] [--short 10] [--long 60]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RUNNER = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[4])
from depthstudio.models.estimator import load_estimator
from depthstudio.render.stereo import StereoSettings
from depthstudio.video.pipeline import VideoSettings, process_video
est = load_estimator(sys.argv[2], "onnx", input_size=56)
t = time.perf_counter()
result = process_video(sys.argv[1], sys.argv[3], VideoSettings(effect="stereo", stereo=StereoSettings(layout="sbs")), est)
print(json.dumps({"frames": result.frames, "seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def photo(size: tuple[int, int], repeat: int) -> None:
    from depthstudio.render.gl import offscreen_context
    from depthstudio.render.parallax import ParallaxRenderer, ParallaxSettings
    from depthstudio.render.stereo import StereoRenderer, StereoSettings
    from depthstudio.video.synthetic import scene_frames

    rgb, disparity = next(scene_frames(*size, frames=1))
    z = (1.0 / np.maximum(disparity, 1e-3)).astype(np.float32)
    depth = (z, disparity > 0)
    ctx = offscreen_context()

    def parallax():
        with ParallaxRenderer(rgb, depth, ParallaxSettings(), ctx=ctx) as r:
            r.frame(0.25)

    def stereo():
        with StereoRenderer(rgb, depth, StereoSettings(layout="sbs"), ctx=ctx) as r:
            r.compose()

    parallax()  # warm up (shaders, caches)
    a, b = best(parallax, repeat), best(stereo, repeat)
    with ParallaxRenderer(rgb, depth, ParallaxSettings(), ctx=ctx) as r:
        one = best(lambda: r.frame(0.25), repeat)
    with StereoRenderer(rgb, depth, StereoSettings(layout="sbs"), ctx=ctx) as r:
        two = best(r.compose, repeat)
    print(f"[1] {size[0]}x{size[1]} photo: one parallax frame {a:.2f} s, a side-by-side stereo pair {b:.2f} s "
          f"(render only: {one * 1000:.0f} ms vs {two * 1000:.0f} ms)")
    print(f"    ratio stereo pair / parallax frame: {b / a:.2f}x  (goal <= 2.2x)")


def make_clip(path: Path, size: tuple[int, int], seconds: float, fps: float) -> Path:
    from depthstudio.video.synthetic import scene_frames, write_clip

    n = int(round(seconds * fps))
    return write_clip(path, (rgb for rgb, _ in scene_frames(*size, n, shots=max(1, int(seconds // 10)))), fps=fps)


def video(work: Path, size: tuple[int, int], fps: float, seconds: float, onnx_path: Path) -> None:
    from depthstudio.models.estimator import load_estimator
    from depthstudio.render.stereo import StereoSettings
    from depthstudio.video.pipeline import VideoSettings, process_video

    clip = make_clip(work / "clip.mp4", size, seconds, fps)
    est = load_estimator(str(onnx_path), "onnx", input_size=56)
    process_video(clip, work / "warm", VideoSettings(max_frames=4), est)
    t = time.perf_counter()
    depth = process_video(clip, work / "depth", VideoSettings(effect="depth"), est)
    t_depth = time.perf_counter() - t
    t = time.perf_counter()
    stereo = process_video(clip, work / "stereo", VideoSettings(effect="stereo", stereo=StereoSettings(layout="sbs")), est)
    t_stereo = time.perf_counter() - t
    t = time.perf_counter()
    parallax = process_video(clip, work / "parallax", VideoSettings(effect="parallax"), est)
    t_parallax = time.perf_counter() - t
    assert depth.frames == stereo.frames == parallax.frames
    print(f"[2] {depth.frames} frames of {size[0]}x{size[1]}: --effect depth {depth.frames / t_depth:.1f} frames/s, "
          f"--effect stereo (sbs) {stereo.frames / t_stereo:.1f} frames/s "
          f"(--effect parallax, one view per frame: {parallax.frames / t_parallax:.1f} frames/s)")
    print(f"    ratio stereo / depth frames/s: {t_depth / t_stereo:.2f}x  (goal >= 0.6x)")


def memory(work: Path, size: tuple[int, int], fps: float, short: float, long: float, onnx_path: Path) -> None:
    figures = {}
    for seconds in (short, long):
        clip = make_clip(work / f"clip{int(seconds)}s.mp4", size, seconds, fps)
        run = subprocess.run([sys.executable, "-c", RUNNER, str(clip), str(onnx_path), str(work / f"mem{int(seconds)}"),
                              str(REPO)], capture_output=True, text=True)
        if run.returncode:
            raise SystemExit(run.stderr[-2000:])
        figures[seconds] = f = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"    {seconds:>4.0f} s clip ({f['frames']} frames): peak RSS {f['peak_rss_mb']:.0f} MB, "
              f"{f['frames'] / f['seconds']:.1f} frames/s")
    a, b = figures[short]["peak_rss_mb"], figures[long]["peak_rss_mb"]
    print(f"[3] peak RSS --effect stereo, {long:.0f} s clip / {short:.0f} s clip: {b / a:.3f}x  (goal within 1.2x)")


def main() -> None:
    from depthstudio.settings import parse_size

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="1920x1080", help="photo size for [1]")
    p.add_argument("--clip", default="160x90", help="clip size for [2] and [3]")
    p.add_argument("--fps", type=float, default=6.0)
    p.add_argument("--seconds", type=float, default=10.0, help="clip length for [2]")
    p.add_argument("--short", type=float, default=10.0)
    p.add_argument("--long", type=float, default=60.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip", default="", help="comma-separated parts to skip: photo,video,memory")
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if "photo" not in skip:
        photo(parse_size(args.size), args.repeat)
    if {"video", "memory"} - skip:
        from depthstudio.models.onnx_export import export_onnx
        from depthstudio.models.random_init import make_random_model

        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            onnx_path = export_onnx(make_random_model(work / "tiny"), work / "tiny.onnx", check=False)
            clip = parse_size(args.clip)
            if "video" not in skip:
                video(work, clip, args.fps, args.seconds, onnx_path)
            if "memory" not in skip:
                memory(work, clip, args.fps, args.short, args.long, onnx_path)


if __name__ == "__main__":
    main()
