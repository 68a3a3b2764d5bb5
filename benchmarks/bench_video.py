"""Video pipeline: throughput against bare inference, and memory against clip length (issue 8).

1. Throughput: `process_video` (decode, preprocess, model, resize back, stabilise, 16-bit FFV1 +
   H.264 preview, audio copy) on a 720p clip vs bare forwards of the same preprocessed frames in
   the same batches, with a random-weight Depth Anything of the real ViT-S size (ONNX Runtime).
   Goal: >= 0.9x the bare model's frames/s.
2. Memory: peak RSS of the whole pipeline (one fresh process each) on a 10 s and a 60 s 720p clip.
   The model is the tiny random one here: memory flatness is the pipeline's property, and the
   60 s clip must finish in minutes on a CPU. Goal: equal within 20%.

    python benchmarks/bench_video.py [--frames N] [--short S] [--long S]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZE = (1280, 720)
FPS = 24

RUNNER = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[4])
from depthstudio.models.estimator import load_estimator
from depthstudio.video.pipeline import VideoSettings, process_video
est = load_estimator(sys.argv[2], "onnx", input_size=518)
t = time.perf_counter()
result = process_video(sys.argv[1], sys.argv[3], VideoSettings(), est)
print(json.dumps({"frames": result.frames, "seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_clip(path: Path, seconds: float) -> Path:
    from depthstudio.video.synthetic import scene_frames, write_clip

    n = int(round(seconds * FPS))
    return write_clip(path, (rgb for rgb, _ in scene_frames(*SIZE, n, shots=max(1, int(seconds // 10)))), fps=FPS)


def throughput(work: Path, frames: int, batch: int) -> None:
    from depthstudio.models.estimator import load_estimator
    from depthstudio.models.onnx_export import export_onnx
    from depthstudio.models.random_init import make_random_model
    from depthstudio.video.decode import iter_frames
    from depthstudio.video.pipeline import VideoSettings, process_video

    clip = make_clip(work / "clip720.mp4", frames / FPS)
    onnx_path = export_onnx(make_random_model(work / "vits", size="vits"), work / "vits.onnx", check=False)
    est = load_estimator(str(onnx_path), "onnx", input_size=518)
    xs = [est.preprocess(f.rgb)[1] for f in iter_frames(clip)]
    batches = [np.concatenate(xs[i:i + batch]) for i in range(0, len(xs), batch)]
    est.forward(batches[0][:1])  # warm up

    t = time.perf_counter()
    for b in batches:
        est.forward(b)
    bare = time.perf_counter() - t

    t = time.perf_counter()
    result = process_video(clip, work / "out", VideoSettings(batch_size=batch), est)
    full = time.perf_counter() - t
    assert result.frames == len(xs)
    print(f"[1] throughput, {len(xs)} frames of 720p, ViT-S random weights, "
          f"network input {xs[0].shape[3]}x{xs[0].shape[2]}, batch {batch}")
    print(f"    bare forwards: {len(xs) / bare:.2f} frames/s; "
          f"process_video (depth16 + preview + audio): {len(xs) / full:.2f} frames/s")
    print(f"    ratio pipeline / bare model frames/s: {bare / full:.3f}x  (goal >= 0.9x)")


def memory(work: Path, short: float, long: float) -> None:
    from depthstudio.models.onnx_export import export_onnx
    from depthstudio.models.random_init import make_random_model

    onnx_path = export_onnx(make_random_model(work / "tiny"), work / "tiny.onnx", check=False)
    figures = {}
    for seconds in (short, long):
        t = time.perf_counter()
        clip = make_clip(work / f"clip{int(seconds)}s.mp4", seconds)
        made = time.perf_counter() - t
        run = subprocess.run([sys.executable, "-c", RUNNER, str(clip), str(onnx_path), str(work / f"out{int(seconds)}"),
                              str(REPO)],
                             capture_output=True, text=True, check=True)
        figures[seconds] = json.loads(run.stdout.strip().splitlines()[-1])
        f = figures[seconds]
        print(f"    {seconds:>4.0f} s clip ({f['frames']} frames 720p, made in {made:.0f} s): "
              f"peak RSS {f['peak_rss_mb']:.0f} MB, "
              f"{f['frames'] / f['seconds']:.1f} frames/s")
        clip.unlink()
        shutil.rmtree(work / f"out{int(seconds)}", ignore_errors=True)  # a 60 s 16-bit stream is ~1.7 GB
    a, b = figures[short]["peak_rss_mb"], figures[long]["peak_rss_mb"]
    print(f"[2] peak RSS {long:.0f} s clip / {short:.0f} s clip: {b / a:.3f}x  (goal within 1.2x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=24, help="frames for the throughput run")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--short", type=float, default=10.0)
    parser.add_argument("--long", type=float, default=60.0)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-video-"))
    try:
        if not args.skip_throughput:
            throughput(work, args.frames, args.batch)
        if not args.skip_memory:
            print("[2] memory: tiny random model, input 518, depth16 + colour preview + audio")
            memory(work, args.short, args.long)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
