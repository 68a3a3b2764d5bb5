"""Synthetic clips with known depth: for tests, benchmarks and demos (no footage or model needed).

``scene_frames`` yields (rgb, disparity) for a camera panning past textured boxes in front of a
wall and floor: near things move faster across the picture than far ones (true motion parallax),
and ``shots`` switches to a different scene (a hard cut) at even intervals.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np


def _texture(rng: np.random.Generator, h: int, w: int, base: np.ndarray, contrast: float = 60.0) -> np.ndarray:
    """Smooth blobs plus fine grain around a base colour (trackable, compressible)."""
    coarse = rng.normal(0, 1, (h // 16 + 2, w // 16 + 2, 3)).astype(np.float32)
    up = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:h, :w]
    # a cheap blur of the blocks: average with shifted copies
    up = (up + np.roll(up, 8, 0) + np.roll(up, 8, 1) + np.roll(np.roll(up, 8, 0), 8, 1)) * 0.25
    grain = rng.normal(0, 0.35, (h, w, 1)).astype(np.float32)
    return np.clip(base[None, None, :] + contrast * (up + grain), 0, 255).astype(np.float32)


class _Shot:
    def __init__(self, width: int, height: int, seed: int, pan: float):
        rng = np.random.default_rng(seed)
        self.w, self.h, self.pan = width, height, pan
        margin = int(abs(pan) + 8)
        self.margin = margin
        cw = width + 2 * margin
        hue = rng.uniform(0, 255, 3)
        self.wall = _texture(rng, height, cw, hue * 0.6 + 40)
        self.floor = _texture(rng, height, cw, np.roll(hue, 1) * 0.5 + 60)
        horizon = int(height * rng.uniform(0.45, 0.6))
        rows = np.arange(height, dtype=np.float32)
        self.horizon = horizon
        # wall at disparity 0.1; the floor comes nearer (0.1 -> 0.6) towards the bottom
        self.bg_disp = np.where(rows < horizon, 0.1, 0.1 + 0.5 * (rows - horizon) / max(1, height - horizon))
        self.boxes = []
        for _ in range(3):
            disp = float(rng.uniform(0.3, 1.0))
            bw, bh = int(width * rng.uniform(0.12, 0.25)), int(height * rng.uniform(0.2, 0.4))
            x = int(rng.uniform(0.05, 0.8) * width)
            y = int(min(height - bh - 1, horizon + rng.uniform(-0.3, 0.2) * height))
            tex = _texture(rng, bh, bw + 2 * margin, rng.uniform(0, 255, 3), 45.0)
            self.boxes.append((disp, x, max(0, y), bw, bh, tex))
        self.boxes.sort(key=lambda b: b[0])  # far first, near drawn last

    def frame(self, u: float) -> tuple[np.ndarray, np.ndarray]:
        """The picture and its disparity at pan progress u in [0, 1]."""
        h, w, m = self.h, self.w, self.margin
        rgb = np.empty((h, w, 3), np.float32)
        disp = np.empty((h, w), np.float32)
        shift = (u - 0.5) * self.pan

        def crop(tex, d):
            off = int(round(m + shift * d / 0.6))
            return tex[:, off:off + w]

        rgb[: self.horizon] = crop(self.wall, 0.1)[: self.horizon]
        rgb[self.horizon:] = crop(self.floor, 0.35)[self.horizon:]
        disp[:] = self.bg_disp[:, None]
        for d, x, y, bw, bh, tex in self.boxes:
            x0 = int(round(x - shift * d / 0.6))
            a, b = max(0, x0), min(w, x0 + bw)
            if b <= a:
                continue
            rgb[y:y + bh, a:b] = tex[:, m:m + bw][:, a - x0:b - x0]
            disp[y:y + bh, a:b] = d
        return rgb.astype(np.uint8), disp


def scene_frames(width: int = 320, height: int = 180, frames: int = 48, shots: int = 1, seed: int = 0,
                 pan: float | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(rgb uint8 (H, W, 3), disparity float32 (H, W) in [0.1, 1]) for each frame, streamed."""
    pan = width * 0.25 if pan is None else pan
    per_shot = max(1, -(-frames // max(1, shots)))
    shot: _Shot | None = None
    for i in range(frames):
        k, j = divmod(i, per_shot)
        if j == 0:
            shot = _Shot(width, height, seed * 1000 + k, pan)
        assert shot is not None  # made on the first frame (j == 0)
        yield shot.frame(j / max(1, per_shot - 1))


def write_clip(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 24, audio: bool = True,
               codec: str = "libx264", sample_rate: int = 44100, audio_codec: str = "aac") -> Path:
    """Encode RGB frames (and a tone of the same length) with PyAV: a stand-in for camera footage."""
    import av

    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        video = None
        count = 0
        for rgb in frames:
            if video is None:
                video = container.add_stream(codec, rate=rate)
                video.height, video.width = rgb.shape[:2]
                video.pix_fmt = "yuv420p" if codec in ("libx264", "mpeg4", "libvpx-vp9") else video.pix_fmt
                if codec == "libx264":
                    video.codec_context.options = {"preset": "ultrafast", "crf": "20"}
                sound = container.add_stream(audio_codec, rate=sample_rate) if audio else None
                if sound is not None:
                    sound.layout = "stereo"
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = count
            frame.time_base = 1 / rate
            for packet in video.encode(frame):
                container.mux(packet)
            count += 1
        if video is None:
            raise ValueError("no frames to write")
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            total = int(round(sample_rate * count / float(rate)))
            step = sound.codec_context.frame_size or 1024
            fmt = sound.codec_context.format.name
            for start in range(0, total, step):
                n = min(step, total - start)
                t = (start + np.arange(n)) / sample_rate
                tone = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
                data = np.stack([tone, tone])
                if fmt.startswith("s16"):
                    data = (data * 32767).astype(np.int16)
                if not fmt.endswith("p"):
                    data = data.T.reshape(1, -1)
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout="stereo")
                chunk.sample_rate = sample_rate
                chunk.pts = start
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
    return path


def jittered(disparity: np.ndarray, rng: np.random.Generator, scale=(0.5, 2.0), shift=0.5, noise=0.01) -> np.ndarray:
    """What a relative depth model does to a steady scene: a random scale and shift per frame, plus noise."""
    s = rng.uniform(*scale)
    b = rng.uniform(-shift, shift)
    return (s * disparity + b + s * rng.normal(0, noise, disparity.shape)).astype(np.float32)
