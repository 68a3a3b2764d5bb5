"""Stereo 3D (issue 15): a stereo pair against one parallax frame, the stereo video effect against
the depth video, and memory against clip length.

1. Photo: ``StereoRenderer`` (prepare the layers once, render both eyes, compose side by side) vs
   ``ParallaxRenderer`` (prepare, render one frame) on the same 1080p photo and depth, both from
   scratch (GL scene upload included). Goal: <= 2.2x.
2. Video throughput: ``process_video(effect="stereo")`` (sbs) vs ``effect="depth"`` (16-bit FFV1 +
   preview) on the same clip, in one run, as a ratio of frames/s. Goal: >= 0.6x.
   a. what a user runs: a random-weight Depth Anything V2 *Small* (the real ViT-S architecture,
      24.8M parameters, the default 518 input), exported to ONNX once and cached in the temp
      folder, on a 640x360 clip (``--clip``);
   b. the GL-bound worst case: a tiny random-weight model (almost free), on the same clip, so
      the ratio measures the stereo rendering alone.
3. Memory: peak RSS of ``--effect stereo`` (one fresh process each, tiny model) on a 10 s and a
   60 s clip (at ``--mem-fps``, so the long clip stays quick). Goal: within 1.2x.

The video and memory parts take about five minutes on a loaded 2-core CPU machine (the 1080p
photo part one or two more).

    python benchmarks/bench_stereo.py [--size 1920x1080] [--clip 640x360] [--fps 4] [--seconds 2]
                                      [--parallax] [--skip photo,video,tiny,memory]
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


def video(work: Path, clip: Path, size: tuple[int, int], onnx_path: Path, input_size: int, key: str, label: str,
          parallax: bool = True) -> None:
    from depthstudio.models.estimator import load_estimator
    from depthstudio.render.stereo import StereoSettings
    from depthstudio.video.pipeline import VideoSettings, process_video

    est = load_estimator(str(onnx_path), "onnx", input_size=input_size)
    # A whole batch: the first batch of a new shape is slow in ONNX Runtime (planning, arena growth).
    process_video(clip, work / "warm", VideoSettings(max_frames=VideoSettings().batch_size), est)
    runs = {}
    effects = {"depth": VideoSettings(effect="depth"),
               "stereo": VideoSettings(effect="stereo", stereo=StereoSettings(layout="sbs"))}
    if parallax:
        effects["parallax"] = VideoSettings(effect="parallax")
    for name, settings in effects.items():
        t = time.perf_counter()
        result = process_video(clip, work / f"{key}-{name}", settings, est)
        runs[name] = result.frames / (time.perf_counter() - t)
    extra = f" (--effect parallax, one view per frame: {runs['parallax']:.2f} frames/s)" if parallax else ""
    print(f"    {label}: {result.frames} frames of {size[0]}x{size[1]}: --effect depth {runs['depth']:.2f} frames/s, "
          f"--effect stereo (sbs) {runs['stereo']:.2f} frames/s{extra}")
    print(f"    {label}: ratio stereo / depth frames/s: {runs['stereo'] / runs['depth']:.2f}x  (goal >= 0.6x)")


def cached_onnx(size: str) -> Path:
    """The random-weight model of ``size`` as ONNX, exported once per machine (temp folder)."""
    from depthstudio.models.onnx_export import export_onnx
    from depthstudio.models.random_init import make_random_model

    cache = Path(tempfile.gettempdir()) / "depthstudio-bench"
    target = cache / f"random-da2-{size}.onnx"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            export_onnx(make_random_model(Path(tmp) / size, size=size), Path(tmp) / "model.onnx", check=False)
            Path(tmp, "model.onnx").replace(target)  # whole file or none
    return target


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
    from depthstudio.models.estimator import DEFAULT_INPUT_SIZE
    from depthstudio.settings import parse_size

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="1920x1080", help="photo size for [1]")
    p.add_argument("--clip", default="640x360", help="clip size for [2]")
    p.add_argument("--fps", type=float, default=4.0)
    p.add_argument("--seconds", type=float, default=2.0, help="clip length for [2]")
    p.add_argument("--mem-clip", default="160x90", help="clip size for [3]")
    p.add_argument("--mem-fps", type=float, default=1.0, help="frame rate of the clips for [3]")
    p.add_argument("--short", type=float, default=10.0)
    p.add_argument("--long", type=float, default=60.0)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--parallax", action="store_true", help="[2a] also times --effect parallax")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: photo,video,tiny,memory")
    args = p.parse_args()
    started = time.perf_counter()
    skip = set(filter(None, args.skip.split(",")))
    if "photo" not in skip:
        photo(parse_size(args.size), args.repeat)
    if {"video", "tiny", "memory"} - skip:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            tiny = cached_onnx("tiny")
            clip_size = parse_size(args.clip)
            clip = make_clip(work / "clip.mp4", clip_size, args.seconds, args.fps)
            if {"video", "tiny"} - skip:
                print(f"[2] video throughput, {args.seconds:g} s clip at {args.fps:g} fps")
            if "video" not in skip:
                video(work, clip, clip_size, cached_onnx("vits"), DEFAULT_INPUT_SIZE, "vits",
                      f"a. Depth Anything V2 Small size (random weights, input {DEFAULT_INPUT_SIZE})", args.parallax)
            if "tiny" not in skip:
                video(work, clip, clip_size, tiny, 56, "tiny", "b. tiny model (GL-bound worst case)", parallax=False)
            if "memory" not in skip:
                memory(work, parse_size(args.mem_clip), args.mem_fps, args.short, args.long, tiny)
    print(f"(benchmark: {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
