"""A streaming video writer (PyAV): frames go to the encoder as they arrive, the file appears atomically.

    with VideoWriter("out.mp4", fps=30, size=(1920, 1080), quality=80) as video:
        for frame in frames:          # (H, W, 3) uint8 RGB
            video.write(frame)

The format follows the extension:

=========  =================  ===================  ==========================================
extension  codec              pixel format         notes
=========  =================  ===================  ==========================================
.mp4 .mov  H.264 (libx264)    yuv420p              ``quality`` -> CRF; plays everywhere
.m4v
.webm      VP9 (libvpx-vp9)   yuv420p              ``quality`` -> CRF (constant quality)
.gif       GIF                pal8                 one global palette made from the first
                                                   frame(s), ordered dithering (no shimmer)
.mkv       FFV1 (lossless)    gray16le / gray8 /   16-bit depth videos: pass (H, W) uint16
                              bgr0                 frames
=========  =================  ===================  ==========================================

Anything else can be chosen with ``codec=``, ``pix_fmt=`` and ``options=`` (e.g. FFV1 in .mkv for
16-bit gray, or H.264 in .mkv). Memory does not grow with the clip's length: nothing but the encoder's
own look-ahead is buffered (and, for GIF, the first ``palette_frames`` frames until the palette is made).

The output is written to a temporary file beside the target and renamed when :meth:`close` succeeds;
an exception or KeyboardInterrupt inside the ``with`` block removes it.

Other streams (e.g. audio copied from a source clip) are added with :meth:`add_stream_from_template`
before the first frame is written, and their packets passed to :meth:`mux`.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from depthstudio.errors import OutputError, SettingsError

if TYPE_CHECKING:
    from av.container import OutputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream


@dataclass(frozen=True)
class Format:
    """How one kind of output file is encoded."""

    codec: str
    pix_fmt: str
    container: str | None = None  # PyAV/ffmpeg muxer name; None = from the extension
    subsampled: bool = True  # chroma subsampling: width and height must be even


FORMATS: dict[str, Format] = {
    ".mp4": Format("libx264", "yuv420p", "mp4"),
    ".m4v": Format("libx264", "yuv420p", "mp4"),
    ".mov": Format("libx264", "yuv420p", "mov"),
    ".webm": Format("libvpx-vp9", "yuv420p", "webm"),
    ".gif": Format("gif", "pal8", "gif", subsampled=False),
    ".mkv": Format("ffv1", "bgr0", "matroska", subsampled=False),
}

#: Extensions the parallax command (and the other effect commands) accept for video output.
VIDEO_SUFFIXES = tuple(FORMATS)


def supported_suffix(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in FORMATS


def even_size(width: int, height: int) -> tuple[int, int]:
    """The nearest size not larger than (width, height) that 4:2:0 video can hold."""
    return max(2, int(width) // 2 * 2), max(2, int(height) // 2 * 2)


def _crf(codec: str, quality: float) -> int:
    """Map quality 0 (smallest file) .. 100 (visually lossless) to the codec's CRF scale."""
    q = float(np.clip(quality, 0, 100)) / 100.0
    if codec in ("libx264", "libx265"):
        return int(round(38 - 24 * q))  # 100 -> 14, 80 -> 19, 50 -> 26
    if codec.startswith("libvpx"):
        return int(round(50 - 32 * q))  # 100 -> 18, 80 -> 24, 50 -> 34
    return 23


def _bayer(n: int = 8) -> np.ndarray:
    """An n x n ordered-dither threshold matrix with values in (-0.5, 0.5)."""
    m = np.zeros((1, 1), np.float32)
    while m.shape[0] < n:
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    return ((m + 0.5) / m.size - 0.5).astype(np.float32)


class GifPalette:
    """One global 256-colour palette and temporally stable (ordered) dithering onto it.

    Error diffusion (Floyd-Steinberg) makes animated GIFs shimmer, because a small change anywhere
    moves the noise everywhere; an ordered dither pattern is fixed to the screen and stays still.
    """

    def __init__(self, samples: list[np.ndarray], colors: int = 256, dither: float = 1.0):
        from PIL import Image

        # A palette from a mosaic of (downscaled) sample frames: median cut keeps rare but
        # saturated colours better than k-means on a uniform sample.
        tiles = []
        for frame in samples:
            step = max(1, int(np.ceil(np.sqrt(frame.shape[0] * frame.shape[1] / 250_000))))
            tiles.append(frame[::step, ::step])
        width = max(t.shape[1] for t in tiles)
        mosaic = np.concatenate([np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), mode="edge") for t in tiles])
        self.image = Image.fromarray(mosaic).quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        palette = self.image.getpalette()
        assert palette is not None  # quantize() always returns a palette ("P") image
        rgb = np.asarray(palette[: 3 * colors], np.uint8).reshape(-1, 3)
        self.rgb = np.zeros((256, 3), np.uint8)
        self.rgb[: len(rgb)] = rgb
        # Dither amplitude: about the typical spacing between neighbouring palette colours.
        spread = np.sort(np.abs(rgb[:, None, :].astype(np.int16) - rgb[None, :, :]).sum(-1), axis=1)
        self.amplitude = float(np.clip(np.median(spread[:, 1]) / 1.5, 2.0, 24.0)) * dither
        self._threshold = _bayer(8)

    @property
    def argb(self) -> np.ndarray:
        """(256, 4) uint8 in the ARGB byte order PyAV's pal8 frames take."""
        out = np.full((256, 4), 255, np.uint8)
        out[:, 1:] = self.rgb
        return out

    def indices(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W) uint8 palette indices for an (H, W, 3) uint8 frame."""
        from PIL import Image

        h, w = rgb.shape[:2]
        if self.amplitude > 0:
            tiles = np.tile(self._threshold, (h // 8 + 1, w // 8 + 1))[:h, :w, None]
            rgb = np.clip(rgb + tiles * self.amplitude, 0, 255).astype(np.uint8)
        image = Image.fromarray(np.ascontiguousarray(rgb)).quantize(palette=self.image, dither=Image.Dither.NONE)
        return np.asarray(image, np.uint8)


class VideoWriter:
    """Encode frames one by one into ``path``; see the module docstring for formats.

    ``size`` is (width, height); when None it is taken from the first frame. Odd sizes are padded
    by one pixel (edge colour) for 4:2:0 codecs; ``.size`` is the encoded size.
    ``quality`` 0..100 (default 80: visually clean, sensible file size) maps to the codec's CRF.
    ``codec``, ``pix_fmt``, ``container`` override the defaults of the extension; ``options`` go to
    the encoder as ffmpeg private options (e.g. {"preset": "slow"}); ``time_base`` sets the video
    stream's time base (default 1/fps) for callers that pass their own ``pts`` to :meth:`write`.
    ``progress`` shows a tqdm bar on stderr (``total`` frames when known).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        size: tuple[int, int] | None = None,
        quality: float = 80,
        codec: str | None = None,
        pix_fmt: str | None = None,
        container: str | None = None,
        options: dict[str, str] | None = None,
        time_base: Fraction | None = None,
        palette_frames: int = 1,
        progress: bool = False,
        total: int | None = None,
        desc: str = "encoding",
    ):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        default = FORMATS.get(suffix)
        if default is None and not codec:
            raise SettingsError(
                f"{self.path}: cannot write video with extension '{suffix or '(none)'}'; "
                f"use one of {', '.join(VIDEO_SUFFIXES)}"
            )
        if not fps or not np.isfinite(fps) or fps <= 0 or fps > 1000:
            raise SettingsError(f"frame rate must be between 0 and 1000 frames per second, got {fps}")
        self.fps = Fraction(fps).limit_denominator(1001)
        if codec:
            self.codec = codec
        else:
            assert default is not None  # checked above
            self.codec = default.codec
        self.pix_fmt = pix_fmt or (default.pix_fmt if default and not codec else None)
        self.container_format = container or (default.container if default else None)
        self.subsampled = self.pix_fmt is not None and ("420" in self.pix_fmt or "422" in self.pix_fmt)
        self.quality = quality
        self.options = dict(options or {})
        self.time_base = time_base
        self.palette_frames = max(1, int(palette_frames))
        if size is not None:
            size = self._check_size(size)
        self.size: tuple[int, int] | None = size
        self.frames_written = 0
        self._progress = progress
        self._total = total
        self._desc = desc
        self._bar = None
        self._stack = contextlib.ExitStack()
        self._container: OutputContainer | None = None
        self._stream: VideoStream | None = None
        self._extra: list[Any] = []
        self._pending: list[tuple[np.ndarray, int | None]] = []  # GIF frames waiting for the palette
        self._palette: GifPalette | None = None
        self._closed = False
        self._open()

    # -- life cycle --------------------------------------------------------------------------
    def _check_size(self, size) -> tuple[int, int]:
        try:
            width, height = (int(v) for v in size)
        except (TypeError, ValueError):
            raise SettingsError(f"video size must be (width, height), got {size!r}") from None
        if width <= 0 or height <= 0:
            raise SettingsError(f"video size must be positive, got {width}x{height}")
        if width > 16384 or height > 16384:
            raise SettingsError(f"video size {width}x{height} is too large (at most 16384 per side)")
        if self.subsampled:
            width, height = width + width % 2, height + height % 2
        return width, height

    def _open(self) -> None:
        import av

        from depthstudio.io.atomic import atomic_path

        tmp = self._stack.enter_context(atomic_path(self.path))
        try:
            self._container = av.open(str(tmp), mode="w", format=self.container_format)
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._abort()
            raise OutputError(f"cannot write video {self.path}: {exc}") from None
        if self._progress:
            from tqdm import tqdm

            self._bar = tqdm(total=self._total, desc=self._desc, unit="frame", file=sys.stderr, leave=False)

    @property
    def _output(self) -> OutputContainer:
        """The open output container (opened by the constructor, which raises if it cannot)."""
        assert self._container is not None
        return self._container

    def _add_video_stream(self, width: int, height: int) -> None:
        import av
        from av.video.stream import VideoStream

        try:
            stream = self._output.add_stream(self.codec, rate=self.fps)
        except (av.FFmpegError, ValueError) as exc:
            raise SettingsError(f"{self.path}: video codec '{self.codec}' is not available in this PyAV build ({exc})") from None
        if not isinstance(stream, VideoStream):
            raise SettingsError(f"{self.path}: '{self.codec}' is not a video codec")
        stream.width, stream.height = width, height
        if self.pix_fmt:
            stream.pix_fmt = self.pix_fmt
        if self.time_base is not None:
            stream.time_base = self.time_base
            stream.codec_context.time_base = self.time_base
        options = {}
        if self.codec in ("libx264", "libx265"):
            options = {"crf": str(_crf(self.codec, self.quality)), "preset": "medium"}
            # Faststart puts the index first so the file plays while it downloads.
            self._output.options.update({"movflags": "+faststart"})
        elif self.codec.startswith("libvpx"):
            options = {"crf": str(_crf(self.codec, self.quality)), "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}
        elif self.codec == "ffv1":
            options = {"level": "3", "slicecrc": "1"}
        options.update(self.options)
        stream.codec_context.options = options
        if self.codec in ("libx264",):
            stream.codec_context.color_range = 1  # MPEG (limited) range: what players expect
        self._stream = stream

    def add_stream_from_template(self, template):
        """Add a stream that copies ``template`` (e.g. a source clip's audio stream); returns it.

        Must be called before the first :meth:`write`. Pass that stream's packets to :meth:`mux`
        after setting ``packet.stream`` to the returned stream.
        """
        if self.frames_written or self._pending:
            raise SettingsError("add extra streams before writing the first frame")
        stream = self._output.add_stream_from_template(template)
        self._extra.append(stream)
        return stream

    def mux(self, packet) -> None:
        """Write a packet of an extra stream (see :meth:`add_stream_from_template`)."""
        if self._stream is None:
            raise SettingsError("write the first video frame before muxing packets of other streams")
        self._output.mux(packet)

    # -- frames ------------------------------------------------------------------------------
    def _prepare(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.dtype == np.float32 or frame.dtype == np.float64:
            frame = np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if frame.ndim == 3 and frame.shape[2] == 4:
            frame = frame[..., :3]
        if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)) or frame.dtype not in (np.uint8, np.uint16):
            raise SettingsError("video frames must be (H, W, 3) uint8 RGB or (H, W) uint8/uint16 gray, "
                                f"got {frame.shape} {frame.dtype}")
        if self.size is None:
            self.size = self._check_size((frame.shape[1], frame.shape[0]))
        width, height = self.size
        h, w = frame.shape[:2]
        if (w, h) != (width, height):
            if width - w in (0, 1) and height - h in (0, 1):  # odd size padded for 4:2:0
                pad = ((0, height - h), (0, width - w)) + (((0, 0),) if frame.ndim == 3 else ())
                frame = np.pad(frame, pad, mode="edge")
            else:
                raise SettingsError(f"frame {self.frames_written} is {w}x{h}, the video is {width}x{height}")
        return np.ascontiguousarray(frame)

    def _to_av(self, frame: np.ndarray) -> VideoFrame:
        from av.video.frame import VideoFrame

        if self.codec == "gif":
            assert self._palette is not None  # GIF frames are held back until the palette is made
            rgb = frame if frame.ndim == 3 else np.repeat(frame[..., None], 3, axis=2)
            if rgb.dtype == np.uint16:
                rgb = (rgb >> 8).astype(np.uint8)
            pal8 = (self._palette.indices(rgb), self._palette.argb)
            # PyAV's stub lists plain arrays only; pal8 takes an (indices, ARGB palette) tuple.
            return VideoFrame.from_ndarray(pal8, format="pal8")  # type: ignore[arg-type]
        if frame.ndim == 2:
            if frame.dtype == np.uint16:
                return VideoFrame.from_ndarray(frame, format="gray16le" if sys.byteorder == "little" else "gray16be")
            return VideoFrame.from_ndarray(frame, format="gray")
        return VideoFrame.from_ndarray(frame, format="rgb24")

    def _choose_pix_fmt(self, frame: np.ndarray) -> None:
        if self.pix_fmt is not None and not (self.codec == "ffv1" and self.pix_fmt == "bgr0"):
            return
        if self.codec == "ffv1":  # lossless: keep what was given
            self.pix_fmt = "bgr0" if frame.ndim == 3 else ("gray16le" if frame.dtype == np.uint16 else "gray")

    def _encode(self, frame: np.ndarray, pts: int | None) -> None:
        import av

        assert self._stream is not None  # added by write() before the first frame
        video_frame = self._to_av(frame)
        if pts is not None:
            video_frame.pts = int(pts)
            if self.time_base is not None:
                video_frame.time_base = self.time_base
        try:
            for packet in self._stream.encode(video_frame):
                self._output.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write video {self.path}: {exc}") from None
        self.frames_written += 1
        if self._bar is not None:
            self._bar.update(1)

    def write(self, frame: np.ndarray, pts: int | None = None) -> None:
        """Encode one frame: (H, W, 3) uint8 RGB, or (H, W) uint8/uint16 gray (FFV1 keeps 16 bits).

        ``pts`` (in ``time_base`` units) is optional; by default frames are 1/fps apart.
        """
        if self._closed:
            raise SettingsError(f"{self.path}: the video is already closed")
        frame = self._prepare(frame)
        if self._stream is None:
            self._choose_pix_fmt(frame)
            assert self.size is not None  # set by _prepare()
            self._add_video_stream(*self.size)
        if self.codec == "gif" and self._palette is None:
            self._pending.append((frame, pts))
            if len(self._pending) >= self.palette_frames:
                self._flush_pending()
            return
        self._encode(frame, pts)

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        samples = [f if f.ndim == 3 else np.repeat(f[..., None], 3, axis=2) for f, _ in self._pending]
        samples = [(s >> 8).astype(np.uint8) if s.dtype == np.uint16 else s for s in samples]
        self._palette = GifPalette(samples)
        pending, self._pending = self._pending, []
        for frame, pts in pending:
            self._encode(frame, pts)

    def close(self) -> Path:
        """Flush the encoder and move the finished file into place."""
        import av

        if self._closed:
            return self.path
        try:
            if self.codec == "gif":
                self._flush_pending()
            if self._stream is None:
                raise SettingsError(f"{self.path}: no frames were written; the video would be empty")
            try:
                for packet in self._stream.encode(None):
                    self._output.mux(packet)
                self._output.close()
            except (av.FFmpegError, OSError) as exc:
                raise OutputError(f"cannot write video {self.path}: {exc}") from None
        except BaseException:
            self._abort()
            raise
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        if self._stack is not None:
            self._stack.close()  # renames the temporary file onto the target
        return self.path

    def _abort(self) -> None:
        """Drop the partial file (called on errors and interrupts)."""
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
        try:
            raise _Aborted()
        except _Aborted:
            self._stack.__exit__(*sys.exc_info())

    abort = _abort

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    def __del__(self):  # an abandoned writer never leaves a half-written file behind
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                self._abort()


class _Aborted(Exception):
    pass


def write_video(path: str | os.PathLike, frames, fps: float, **kwargs) -> Path:
    """Encode an iterable of frames (streamed: a generator is never materialised)."""
    with VideoWriter(path, fps, **kwargs) as video:
        for frame in frames:
            video.write(frame)
    return Path(path)


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[list[np.ndarray], float]:
    """Decode a video back to RGB frames and its frame rate (for tests and previews of short clips)."""
    import av

    frames, times = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if frame.pts is not None:
                times.append(float(frame.pts * frame.time_base))
            if max_frames and len(frames) >= max_frames:
                break
    # From the timestamps: GIF stores delays in 1/100 s, so its nominal rate is only approximate.
    if len(times) == len(frames) > 2 and times[-1] > times[0]:
        rate = (len(times) - 1) / (times[-1] - times[0])
    return frames, rate
