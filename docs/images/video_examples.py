"""Makes docs/images/video_stabilize.gif and video_effects.gif from ../shared/scenes/room.

    python docs/images/video_examples.py [WORK_DIR]

A camera pan through the ground-truth room render becomes a clip; its true depth becomes a 16-bit
depth video (metric, with a JSON sidecar), and a "flickering" copy simulates what a relative model
run frame by frame delivers (random scale and shift per frame, noise, a few wild pixels).
Everything then goes through the real command line (`depthstudio video --depth ...`).
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from depthstudio.cli import main as cli  # noqa: E402
from depthstudio.video.synthetic import write_clip  # noqa: E402
from depthstudio.video.writer import VideoWriter, read_video, write_video  # noqa: E402

ROOM = REPO.parent / "shared" / "scenes" / "room"
OUT = Path(__file__).resolve().parent


def make_footage(work: Path, n: int = 40, size=(400, 300), near=3.0, far=15.0) -> None:
    rng = np.random.default_rng(3)
    rgb = np.asarray(Image.open(ROOM / "rgb.png").convert("RGB"))
    z = np.load(ROOM / "depth.npy")
    h, w = rgb.shape[:2]
    cw, ch = size
    with VideoWriter(work / "flicker.mkv", fps=20, size=size) as flicker, \
            VideoWriter(work / "truth.mkv", fps=20, size=size) as truth:
        def frames():
            for i in range(n):
                u = 0.5 - 0.5 * np.cos(np.pi * i / (n - 1))
                x, y = int((w - cw) * u), int((h - ch) * (0.3 + 0.4 * u))
                zc = z[y:y + ch, x:x + cw]
                v = (1 / zc - 1 / far) / (1 / near - 1 / far)
                truth.write(np.clip(np.round(v * 65535), 1, 65535).astype(np.uint16))
                s = rng.uniform(0.55, 1.0)
                b = rng.uniform(0.0, 1.0 - s)
                j = s * v + b + rng.normal(0, 0.006, v.shape)
                wild = rng.random(v.shape) < 0.0005
                j[wild] = rng.uniform(0.001, 1.0, wild.sum())
                flicker.write(np.round(np.clip(j, 0.001, 1) * 65535).astype(np.uint16))
                yield rgb[y:y + ch, x:x + cw]
        write_clip(work / "room_pan.mp4", frames(), fps=20)
    (work / "truth.json").write_text(json.dumps({"kind": "metric", "near": near, "far": far}))


def gif(path: Path, columns: list[list[np.ndarray]], size: tuple[int, int]) -> None:
    frames = [np.concatenate(row, axis=1) for row in zip(*columns)][::2]
    frames = [np.asarray(Image.fromarray(f).resize(size, Image.LANCZOS)) for f in frames]
    write_video(path, frames, fps=8, palette_frames=6)


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="video-docs-"))
    work.mkdir(parents=True, exist_ok=True)
    make_footage(work)
    clip = str(work / "room_pan.mp4")
    cli(["video", clip, "--depth", str(work / "flicker.mkv"), "-o", str(work / "raw.mp4"), "--no-stabilize", "--no-lossless"])
    cli(["video", clip, "--depth", str(work / "flicker.mkv"), "-o", str(work / "stable.mp4"), "--no-lossless"])
    cli(["video", clip, "--depth", str(work / "truth.mkv"), "-o", str(work / "dof.mp4"), "--effect", "dof",
         "--focus-pull", "0:3.8,1.9:12", "--f-number", "1.2", "--focal-mm", "85", "--no-stabilize"])
    cli(["video", clip, "--depth", str(work / "truth.mkv"), "-o", str(work / "zoom.mp4"), "--effect", "parallax",
         "--preset", "zoom-in", "--no-stabilize"])

    def read(name):
        return read_video(work / name)[0]

    gif(OUT / "video_stabilize.gif", [read("room_pan.mp4"), read("raw.mp4"), read("stable.mp4")], (480, 120))
    gif(OUT / "video_effects.gif", [read("dof.mp4"), read("zoom.mp4")], (400, 150))


if __name__ == "__main__":
    main()
