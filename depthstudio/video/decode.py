"""Reading video: probe a clip, stream its frames as RGB arrays, stream its audio packets.

PyAV (FFmpeg) does the work, so any container and codec FFmpeg reads is accepted. Every
failure a user can cause (not a video, no video stream, no frames) becomes an InputError
that names the file.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from depthstudio.errors import InputError
from depthstudio.io.images import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".ts", ".mpg", ".mpeg",
    ".wmv", ".flv", ".ogv", ".3gp", ".gif", ".mxf", ".y4m",
}


@dataclass
class VideoInfo:
    """What the pipeline needs to know about a clip before decoding it."""

    path: Path
    width: int  # as displayed (rotation applied)
    height: int
    fps: Fraction  # average frame rate
    time_base: Fraction  # of the video stream
    frames: int | None  # frame count when the container knows or it can be estimated
    duration: float | None  # seconds
    codec: str
    rotation: int = 0  # degrees the player rotates the picture counter-clockwise
    has_audio: bool = False
    audio_codec: str | None = None
    start_time: float = 0.0
    meta: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


@dataclass
class VideoFrame:
    """One decoded frame: RGB pixels and when it is shown."""

    index: int
    rgb: np.ndarray  # (H, W, 3) uint8
    pts: int | None  # in VideoInfo.time_base
    time: float  # seconds from the stream's start


def _open(path: Path):
    import av

    from depthstudio.io.files import check_input

    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a video")
    check_input(path, "file")
    if path.suffix.lower() in IMAGE_SUFFIXES - {".gif"}:
        raise InputError(f"{path}: is a still image; use `depthstudio depth`, `parallax` or `dof` for photos")
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.EOFError:
        raise InputError(f"{path}: contains no video frames (the file ends after its header; "
                         f"it may be truncated)") from None
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: not a video file FFmpeg can read, or a truncated one ({_reason(exc)})") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot open video ({exc})") from None


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _video_stream(container, path: Path):
    streams = [s for s in container.streams.video if s.codec_context is not None]
    if not streams:
        kinds = sorted({s.type for s in container.streams})
        if not kinds:
            raise InputError(f"{path}: contains no video frames (the file holds no streams at all)")
        raise InputError(f"{path}: has no video stream (streams: {', '.join(kinds)}); give a video file")
    # Cover art in audio files is a one-picture "video" stream: not a clip.
    real = [s for s in streams if not s.disposition & 0x400]  # AV_DISPOSITION_ATTACHED_PIC
    if not real:
        raise InputError(f"{path}: has no video stream, only attached cover art; give a video file")
    return real[0]


def _rotation(frame) -> int:
    """Display rotation (degrees counter-clockwise) from the frame's display matrix; phones
    record portrait clips as landscape pictures with such a matrix."""
    try:
        angle = int(round(float(frame.rotation or 0)))
    except (AttributeError, TypeError, ValueError):
        return 0
    angle %= 360
    return angle if angle in (90, 180, 270) else 0


def _first_frame(container, stream, path: Path):
    import av

    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: cannot decode video ({_reason(exc)}); the file may be corrupt") from None
    raise InputError(f"{path}: contains no video frames")


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read the clip's header: size, frame rate, time base, frame count, duration, audio."""
    path = Path(path)
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        ctx = stream.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width < 2 or height < 2:
            raise InputError(f"{path}: video stream has no usable picture size ({width}x{height})")
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = Fraction(fps) if fps else Fraction(25)
        if fps <= 0 or fps > 1000:
            fps = Fraction(25)
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, int(round(float(fps) * 1000)))
        duration = None
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        frames = int(stream.frames) if stream.frames else None
        if frames is None and duration:
            frames = max(1, int(round(duration * float(fps))))
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0
        rotation = _rotation(_first_frame(container, stream, path))
        if rotation in (90, 270):
            width, height = height, width
        audio = next(iter(container.streams.audio), None)
        return VideoInfo(
            path=path, width=width, height=height, fps=fps, time_base=time_base, frames=frames,
            duration=duration, codec=ctx.name, rotation=rotation, has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None and audio.codec_context else None,
            start_time=start,
        )
    finally:
        container.close()


def _to_rgb(frame, size: tuple[int, int] | None, rotation: int) -> np.ndarray:
    if size is not None and rotation in (90, 270):
        size = (size[1], size[0])
    if size is not None and (frame.width, frame.height) != tuple(size):
        frame = frame.reformat(width=size[0], height=size[1], format="rgb24", interpolation="AREA"
                               if size[0] < frame.width else "BICUBIC")
        rgb = frame.to_ndarray()
    else:
        rgb = frame.to_ndarray(format="rgb24")
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
    return rgb


def iter_frames(
    path: str | os.PathLike,
    size: tuple[int, int] | None = None,
    stop: threading.Event | None = None,
    max_frames: int | None = None,
) -> Iterator[VideoFrame]:
    """Decode the clip's frames in order as RGB arrays, one at a time (memory stays flat).

    ``size`` (width, height) resizes with FFmpeg's scaler. A corrupt tail (a truncated
    download) ends the clip with a warning; a clip with no decodable frame is an InputError.
    """
    import av

    path = Path(path)
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        tb = stream.time_base or Fraction(1, 1000)
        start = stream.start_time or 0
        count = 0
        try:
            for frame in container.decode(stream):
                if stop is not None and stop.is_set():
                    return
                pts = frame.pts
                time = float((pts - start) * tb) if pts is not None else count / float(stream.average_rate or 25)
                yield VideoFrame(index=count, rgb=_to_rgb(frame, size, _rotation(frame)), pts=pts, time=time)
                count += 1
                if max_frames is not None and count >= max_frames:
                    return
        except av.error.FFmpegError as exc:
            if count == 0:
                raise InputError(f"{path}: cannot decode video ({_reason(exc)}); the file may be corrupt") from None
            log.warning("%s: decoding stopped after %d frames (%s); the file may be truncated", path, count, _reason(exc))
        if count == 0:
            raise InputError(f"{path}: contains no video frames")
    finally:
        container.close()


def frame_at(path: str | os.PathLike, seconds: float, size: tuple[int, int] | None = None) -> VideoFrame:
    """The frame shown at ``seconds`` (from the stream's start): seek to the keyframe before it, decode forward."""
    import av

    path = Path(path)
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        tb = stream.time_base or Fraction(1, 1000)
        start = stream.start_time or 0
        target = start + int(max(0.0, seconds) / tb)
        try:
            container.seek(target, stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            container.seek(0)
        fps = float(stream.average_rate or 25)
        last = None
        try:
            for frame in container.decode(stream):
                pts = frame.pts if frame.pts is not None else target
                if last is not None and pts > target:
                    break
                last = frame
                if pts >= target:
                    break
        except av.error.FFmpegError as exc:
            if last is None:
                raise InputError(f"{path}: cannot decode video at {seconds:.2f} s ({_reason(exc)})") from None
        if last is None:
            raise InputError(f"{path}: no frame at {seconds:.2f} s")
        time = float(((last.pts if last.pts is not None else target) - start) * tb)
        return VideoFrame(index=int(round(time * fps)), rgb=_to_rgb(last, size, _rotation(last)), pts=last.pts, time=time)
    finally:
        container.close()
