"""The video pipeline: a clip in, a depth video or an effect preview out, streamed.

    result = process_video("clip.mp4", "out/", VideoSettings(effect="depth"))

Four stages overlap, joined by small bounded queues (memory stays flat whatever the clip's
length):

    decode + preprocess  ->  model forward (batches)  ->  resize back, stabilise, render, encode
       (thread "decode")        (calling thread)                 (thread "encode")

Stages pass immutable messages (Decoded, Predicted, Failed); batches go through
``Estimator.forward_prepared``. Front ends drive it the same way, through one ``depthstudio.jobs.Job``:
the CLI listens with a tqdm bar, the GUI with its event loop and cancels it from a button; an
``on_frame`` callback shows each rendered frame live.
Outputs are written atomically: an error, a cancel or Ctrl-C leaves no file behind.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from depthstudio.errors import DepthStudioError, OutputError, SettingsError
from depthstudio.geometry.camera import CameraSettings
from depthstudio.geometry.depth import DepthMapping
from depthstudio.jobs import Cancelled, Job, check
from depthstudio.settings import Settings, nested, parse_size, setting, show_size
from depthstudio.source import ModelSettings
from depthstudio.video.decode import VideoFrame, VideoInfo, iter_frames, probe
from depthstudio.video.stabilize import Stabilizer, StabilizeSettings

log = logging.getLogger(__name__)

EFFECTS = ("depth", "parallax", "dof", "stereo")
PREVIEWS = ("color", "gray", "none")


def _parallax_settings():
    from depthstudio.video.effects import VideoParallaxSettings

    return VideoParallaxSettings


def _dof_settings():
    from depthstudio.video.effects import VideoDofSettings

    return VideoDofSettings


@dataclass
class VideoSettings(Settings):
    """Everything ``process_video`` needs besides the model; the CLI fills it from flags."""

    section = "video"

    effect: str = setting("depth", label="Effect", choices=EFFECTS, help="what to render")
    size: tuple | None = setting(None, label="Output size", metavar="WxH", parse=parse_size, show=show_size,
                                 auto="the source's", help="output size")
    batch_size: int = setting(4, label="Batch", minimum=1, maximum=256, flag="--batch", metavar="N",
                              help="frames per model forward")
    stabilize: StabilizeSettings | None = nested(StabilizeSettings)
    preview: str = setting("color", label="Depth preview", choices=PREVIEWS,
                           help="8-bit preview MP4: colour-mapped, grayscale, or none")
    side_by_side: bool = setting(False, label="Side by side", help="put the source beside the depth in the preview")
    lossless: bool = setting(True, label="16-bit depth stream", help="the 16-bit FFV1 depth stream (.mkv)")
    quality: float = setting(80.0, label="Quality", minimum=0.0, maximum=100.0, metavar="Q",
                             help="0..100 for the lossy outputs")
    audio: bool = setting(True, label="Audio", help="copy the source's audio")
    max_frames: int | None = setting(None, label="Max frames", minimum=1, metavar="N", auto="all",
                                     help="stop after N frames (quick previews)")
    #: Relative depth -> distance for the effects (normalised disparity 1 -> near, 0 -> far).
    mapping: DepthMapping = nested(DepthMapping)
    #: Camera for the effects; None = 60 degrees horizontal.
    camera: CameraSettings | None = None
    #: Effect settings; None = their defaults.
    parallax: Any = None
    dof: Any = None
    stereo: Any = None

    def check(self) -> None:
        if self.size is not None:
            object.__setattr__(self, "size", parse_size(self.size))
        if self.effect == "depth" and self.preview == "none" and not self.lossless:
            raise SettingsError("nothing to write: the depth effect needs the preview, the lossless stream, or both")
        for stage in (self.parallax, self.dof, self.stereo, self.camera):
            if stage is not None:
                stage.validate()

    @property
    def near(self) -> float:
        return self.mapping.near

    @property
    def far(self) -> float:
        return self.mapping.far


@dataclass
class VideoResult:
    outputs: dict[str, Path]
    frames: int
    info: VideoInfo
    seconds: float
    cuts: list[int] = field(default_factory=list)  # frame indices where a new shot started

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# -- where the files go ----------------------------------------------------------------------------
def output_paths(input_path: str | os.PathLike, out: str | os.PathLike, settings: VideoSettings) -> dict[str, Path]:
    """The files ``process_video`` writes, by role.

    ``out`` is a folder (``<stem>_depth.mkv`` / ``_depth.mp4`` / ``_parallax.mp4`` / ``_dof.mp4``
    inside it) or a file: for the depth effect ``x.mkv`` names the 16-bit stream and ``x.mp4`` the
    preview (the other goes beside it with the other extension); effects take .mp4, .mov, .webm, .gif.
    Roles: "depth16" (FFV1 gray16 MKV), "preview" (8-bit), "effect", "meta" (JSON sidecar).
    """
    from depthstudio.video.writer import VIDEO_SUFFIXES

    input_path, out = Path(input_path), Path(out)
    lossy = tuple(s for s in VIDEO_SUFFIXES if s != ".mkv")
    suffix = out.suffix.lower()
    is_file = suffix in VIDEO_SUFFIXES
    if suffix and not is_file and not out.is_dir():
        raise SettingsError(f"{out}: cannot write video with extension '{suffix}'; "
                            f"use one of {', '.join(VIDEO_SUFFIXES)} or a folder")
    paths: dict[str, Path] = {}
    if settings.effect == "depth":
        if is_file:
            base = out.with_suffix("")
            preview = out if suffix in lossy else base.with_suffix(".mp4")
        else:
            base = out / f"{input_path.stem}_depth"
            preview = base.with_suffix(".mp4")
        if settings.lossless:
            paths["depth16"] = base.with_suffix(".mkv")
        if settings.preview != "none":
            paths["preview"] = preview
        paths["meta"] = base.with_suffix(".json")
    else:
        if is_file and suffix == ".mkv":
            raise SettingsError(f"{out}: effect videos are .mp4, .mov, .webm or .gif (.mkv is the 16-bit depth stream)")
        paths["effect"] = out if is_file else out / f"{input_path.stem}_{settings.effect}.mp4"
    return paths


# -- depth values into pixels -----------------------------------------------------------------------
@dataclass
class DepthEncoding:
    """How stabilised depth becomes the 16-bit stream's values (written to the JSON sidecar).

    The stream always holds nearness in [0, 1] (near = bright, 0 = no surface). Relative models:
    normalised disparity. Metric models: ``1/z`` between ``1/far`` (0) and ``1/near`` (1), so
    z = 1 / (1/far + v * (1/near - 1/far)), the same mapping DESIGN.md gives relative depth.
    """

    kind: str
    near: float | None = None
    far: float | None = None

    def nearness(self, values: np.ndarray, valid: np.ndarray) -> np.ndarray:
        if self.kind == "metric":
            assert self.near is not None and self.far is not None, "metric encoding needs near and far"
            lo, hi = 1.0 / self.far, 1.0 / self.near
            v = (values - np.float32(lo)) * np.float32(1.0 / (hi - lo))
        else:
            v = values
        return np.where(valid, np.clip(v, 0.0, 1.0), 0.0).astype(np.float32)

    @staticmethod
    def to_uint16(nearness: np.ndarray, valid: np.ndarray) -> np.ndarray:
        out = np.round(nearness * 65535.0).astype(np.uint16)
        out[valid & (out == 0)] = 1  # 0 is reserved for "no surface"
        out[~valid] = 0
        return out


def _metric_range(z: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    v = z[valid]
    if v.size == 0:
        return 1.0, 10.0
    lo, hi = np.percentile(v, [1.0, 99.0])
    near, far = max(float(lo) * 0.8, 1e-3), max(float(hi) * 1.25, float(lo) * 0.8 + 1e-3)
    return near, far


# -- effects -----------------------------------------------------------------------------------------
class _DepthEffect:
    """16-bit FFV1 depth stream + 8-bit preview (optionally beside the source)."""

    def __init__(self, settings: VideoSettings, paths: dict[str, Path]):
        self.settings = settings
        self.paths = paths

    def writers(self, info: VideoInfo, size: tuple[int, int]) -> dict[str, dict]:
        specs: dict[str, dict] = {}
        if "depth16" in self.paths:
            specs["depth16"] = {"size": size}
        if "preview" in self.paths:
            w, h = size
            specs["preview"] = {"size": (w * 2 if self.settings.side_by_side else w, h), "quality": self.settings.quality}
        return specs

    def render(self, frame: VideoFrame, nearness: np.ndarray, valid: np.ndarray, z_of) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if "depth16" in self.paths:
            out["depth16"] = DepthEncoding.to_uint16(nearness, valid)
        if "preview" in self.paths:
            if self.settings.preview == "gray":
                gray = np.clip(nearness * 255.0 + 0.5, 0, 255).astype(np.uint8)
                rgb = np.repeat(gray[..., None], 3, axis=2)
            else:
                from depthstudio.io.depthfiles import colorize

                rgb = colorize(nearness, valid)
            if self.settings.side_by_side:
                rgb = np.concatenate([frame.rgb, rgb], axis=1)
            out["preview"] = rgb
        return out

    def close(self) -> None:
        pass


def _make_effect(settings: VideoSettings, paths: dict[str, Path], info: VideoInfo, size: tuple[int, int]):
    if settings.effect == "depth":
        return _DepthEffect(settings, paths)
    from depthstudio.video import effects

    if settings.effect == "parallax":
        return effects.ParallaxEffect(settings, paths, info, size)
    if settings.effect == "stereo":
        return effects.StereoEffect(settings, paths, info, size)
    return effects.DofEffect(settings, paths, info, size)


# -- audio -------------------------------------------------------------------------------------------
class _AudioCopy:
    """Copies the source's audio packets into one output, interleaved with the video by time."""

    def __init__(self, source: Path, writer, suffix: str, stop: threading.Event):
        import av

        self.container = av.open(str(source), metadata_errors="ignore")
        self.stream = None
        in_audio = next(iter(self.container.streams.audio), None)
        if in_audio is None:
            return
        if not _container_takes(suffix, in_audio.codec_context.name):
            log.warning("%s: the source's %s audio cannot go into a %s file; written without audio",
                        writer.path, in_audio.codec_context.name, suffix)
            return
        self.out = writer.add_stream_from_template(in_audio)
        self.stream = in_audio
        self.writer = writer
        self.stop = stop
        self.packets = self.container.demux(in_audio)
        self.pending = None
        self.tb = in_audio.time_base

    def _next(self):
        import av

        if self.pending is None:
            try:
                while True:
                    packet = next(self.packets)
                    if packet.size or packet.dts is not None:
                        break
                self.pending = packet
            except (StopIteration, av.error.FFmpegError):
                self.pending = None
                self.packets = iter(())
        return self.pending

    def until(self, seconds: float | None) -> None:
        """Mux every packet that starts before ``seconds`` (None: all that are left)."""
        if self.stream is None:
            return
        while not self.stop.is_set():
            packet = self._next()
            if packet is None:
                return
            if packet.pts is not None and seconds is not None and float(packet.pts * self.tb) >= seconds:
                return
            self.pending = None
            if packet.dts is None:
                continue
            packet.stream = self.out
            self.writer.mux(packet)

    def close(self) -> None:
        self.container.close()


_TAKES: dict[str, set] = {}


def _container_takes(suffix: str, codec: str) -> bool:
    """Whether the muxer for ``suffix`` can hold ``codec`` as is (asked of FFmpeg itself)."""
    import av

    from depthstudio.video.writer import FORMATS

    fmt = FORMATS.get(suffix)
    if fmt is None or fmt.codec == "gif" or fmt.container is None:
        return False
    container = fmt.container
    if container not in _TAKES:
        try:
            with av.open(io.BytesIO(), mode="w", format=container) as probe_out:
                _TAKES[container] = set(probe_out.supported_codecs)
        except Exception:  # then assume it does, the muxer will say otherwise
            _TAKES[container] = {codec}
    if container == "webm":
        return codec in ("opus", "vorbis")
    return codec in _TAKES[container]


# -- the pipeline ----------------------------------------------------------------------------------
# Stages pass immutable messages through bounded queues; each stage owns its own state, and the
# calling thread reads a stage's results only after it has joined.
@dataclass(frozen=True)
class Decoded:
    """A decoded frame and the model input made from it."""

    frame: VideoFrame
    photo: Any
    x: np.ndarray


@dataclass(frozen=True)
class Predicted:
    """A frame and the model's raw prediction for it."""

    frame: VideoFrame
    photo: Any
    prediction: np.ndarray


@dataclass(frozen=True)
class Failed:
    """A stage's error, handed to the calling thread."""

    exc: BaseException


_END = object()


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event):
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    return _END


class DecodeStage(threading.Thread):
    """Decode frames and preprocess them for the model."""

    def __init__(self, path: Path, size, max_frames, estimator, out: queue.Queue, stop: threading.Event):
        super().__init__(name="depthstudio-decode", daemon=True)
        self.path, self.size, self.max_frames = path, size, max_frames
        self.estimator, self.out, self.stop = estimator, out, stop

    def run(self) -> None:
        try:
            for frame in iter_frames(self.path, size=self.size, stop=self.stop, max_frames=self.max_frames):
                photo, x = self.estimator.preprocess(frame.rgb)
                if not _put(self.out, Decoded(frame, photo, x), self.stop):
                    return
            _put(self.out, _END, self.stop)
        except BaseException as exc:  # handed to the calling thread
            _put(self.out, Failed(exc), self.stop)


def infer_stage(estimator, batch_size: int, source: queue.Queue, out: queue.Queue, stop: threading.Event,
                job: Job | None) -> None:
    """Batches of decoded frames through ``Estimator.forward_prepared`` (runs in the calling thread)."""
    finished = False
    while not finished and not stop.is_set():
        batch: list[Decoded] = []
        while len(batch) < batch_size:
            item = _get(source, stop)
            if item is _END:
                finished = True
                break
            if isinstance(item, Failed):
                raise item.exc
            batch.append(item)
        check(job)
        predictions = estimator.forward_prepared([(d.photo, d.x) for d in batch])
        for decoded, prediction in zip(batch, predictions):
            if not _put(out, Predicted(decoded.frame, decoded.photo, prediction), stop):
                return
    _put(out, _END, stop)


class EncodeStage(threading.Thread):
    """Postprocess, stabilise, render the effect and encode; owns the writers and its results."""

    def __init__(self, input_path: Path, info: VideoInfo, size, settings: VideoSettings, paths: dict[str, Path],
                 estimator, source: queue.Queue, stop: threading.Event, job: Job | None, total: int | None,
                 on_frame: Callable[[int, dict[str, np.ndarray]], None] | None):
        super().__init__(name="depthstudio-encode", daemon=True)
        self.input_path, self.info, self.size, self.settings, self.paths = input_path, info, size, settings, paths
        self.estimator, self.source, self.stop, self.job, self.total = estimator, source, stop, job, total
        self.on_frame = on_frame
        # results, read by the calling thread after join()
        self.frames = 0
        self.cuts: list[int] = []
        self.meta: dict = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._encode()
        except BaseException as exc:  # handed to the calling thread
            self.error = exc
            self.stop.set()

    def _encode(self) -> None:
        from depthstudio.video.writer import VideoWriter

        settings, info, paths = self.settings, self.info, self.paths
        effect = _make_effect(settings, paths, info, self.size)
        kind = self.estimator.kind
        stab = None
        if settings.stabilize is not None and settings.stabilize.enabled:
            # metric depth keeps its units (metres): align to the first frame, do not normalise
            stab = Stabilizer(settings.stabilize.replace(normalize=kind != "metric"))
        encoding: DepthEncoding | None = None
        tb = Fraction(info.time_base)
        with contextlib.ExitStack() as stack:
            stack.callback(effect.close)
            writers: dict[str, VideoWriter] = {}
            audio: list[_AudioCopy] = []
            for role, spec in effect.writers(info, self.size).items():
                target = paths[role]
                # FFV1 codes slices in parallel: the 16-bit stream must not hold back the model
                options = {"threads": "0", "slices": "16"} if target.suffix.lower() == ".mkv" else None
                writer = VideoWriter(target, fps=float(info.fps), size=spec["size"],
                                     quality=spec.get("quality", settings.quality), time_base=tb, options=options)
                stack.enter_context(writer)
                writers[role] = writer
                if settings.audio and info.has_audio:
                    copy = _AudioCopy(self.input_path, writer, target.suffix.lower(), self.stop)
                    stack.callback(copy.close)
                    if copy.stream is not None:
                        audio.append(copy)
            last_time = 0.0
            frame_duration = 1.0 / float(info.fps)
            while True:
                item = _get(self.source, self.stop)
                if item is _END:
                    if self.stop.is_set():
                        raise Cancelled(f"{self.input_path}: stopped; no output written")
                    break
                check(self.job)
                frame = item.frame
                depth = self.estimator.postprocess(item.photo, item.prediction)
                valid = depth.valid
                values = depth.values
                if kind == "metric":
                    values = np.where(valid, 1.0 / np.where(valid, values, 1.0), 0.0).astype(np.float32)
                if stab is not None:
                    values = stab.update(values, valid, rgb=frame.rgb)
                    if stab.was_reset and frame.index > 0:
                        self.cuts.append(frame.index)
                if encoding is None:  # one mapping for the whole clip, written to the sidecar
                    if kind == "metric":
                        near, far = _metric_range(np.where(valid, 1.0 / np.maximum(values, 1e-9), 0), valid)
                        encoding = DepthEncoding("metric", near, far)
                    else:
                        encoding = DepthEncoding("disparity")
                nearness = depth.normalized() if stab is None and kind != "metric" else encoding.nearness(values, valid)
                images = effect.render(frame, nearness, valid, _z_getter(kind, values, nearness, valid, settings))
                pts = frame.pts if frame.pts is not None else int(round(frame.index * frame_duration / tb))
                for role, image in images.items():
                    writers[role].write(image, pts=pts)
                last_time = frame.time + frame_duration
                for copy in audio:
                    copy.until(last_time)
                self.frames += 1
                if self.on_frame is not None:
                    self.on_frame(frame.index, images)
                if self.job is not None:
                    self.job.advance(1)
            for copy in audio:
                copy.until(None if settings.max_frames is None else last_time)
            # leaving the ExitStack closes the writers: each file is renamed into place
        if hasattr(effect, "finish"):  # metadata an effect adds to its finished files (vr180 boxes)
            effect.finish(self.paths)
        self.meta = self._sidecar(kind, stab, encoding)

    def _sidecar(self, kind: str, stab, encoding: DepthEncoding | None) -> dict:
        meta = {
            "source": str(self.input_path),
            "frames": self.frames,
            "fps": float(self.info.fps),
            "size": list(self.size),
            "effect": self.settings.effect,
            "model_id": getattr(self.estimator, "model_id", "unknown"),
            "kind": kind,
            "encoding": "nearness in [0, 1] as uint16 (near = bright, 0 = no surface)",
            "stabilize": stab.settings.to_dict() if stab is not None else None,
            "scene_cuts": self.cuts,
        }
        if encoding is not None and encoding.kind == "metric":
            meta.update({"near": encoding.near, "far": encoding.far,
                         "to_metres": "z = 1 / (1/far + v * (1/near - 1/far)), v = value / 65535"})
        if "meta" in self.paths:
            from depthstudio.io.atomic import write_text

            write_text(self.paths["meta"], json.dumps(meta, indent=2) + "\n")
        return meta


def process_video(
    input_path: str | os.PathLike,
    out: str | os.PathLike,
    settings: VideoSettings | None = None,
    estimator=None,
    *,
    model: ModelSettings | None = None,
    job: Job | None = None,
    on_frame: Callable[[int, dict[str, np.ndarray]], None] | None = None,
) -> VideoResult:
    """Turn one clip into the outputs of ``settings.effect`` (see ``output_paths``).

    ``estimator`` is a loaded model (``depthstudio.models.estimator.load_estimator``); without it
    ``model`` (ModelSettings) names one. ``job`` (depthstudio.jobs.Job) gets the frame count and
    one step per encoded frame; cancelling it stops the run with ``Cancelled`` and leaves no file.
    ``on_frame(index, images)`` sees each rendered frame.
    """
    settings = (settings or VideoSettings()).validate()
    input_path = Path(input_path)
    info = probe(input_path)
    paths = output_paths(input_path, out, settings)
    for target in paths.values():
        _check_writable(target)
    if estimator is None:
        from depthstudio.source import DepthSource

        estimator = DepthSource(model).estimator()

    size = tuple(settings.size) if settings.size else info.size
    total = info.frames if settings.max_frames is None else min(info.frames or settings.max_frames, settings.max_frames)
    if job is not None:
        job.start(total, input_path.name)
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=2 * settings.batch_size)
    predicted: queue.Queue = queue.Queue(maxsize=2 * settings.batch_size)
    started = time.perf_counter()
    decoder = DecodeStage(input_path, size if settings.size else None, settings.max_frames, estimator, decoded, stop)
    encoder = EncodeStage(input_path, info, size, settings, paths, estimator, predicted, stop, job, total, on_frame)
    decoder.start()
    encoder.start()
    try:
        infer_stage(estimator, settings.batch_size, decoded, predicted, stop, job)
        while encoder.is_alive():
            encoder.join(0.1)
            if job is not None and job.cancelled:
                stop.set()  # the encoder drops its files and raises Cancelled
    except BaseException:
        stop.set()
        raise
    finally:
        _join(encoder, decoder, stop)
    if encoder.error is not None:
        if isinstance(encoder.error, Cancelled) and job is not None and job.cancelled:
            job.check()  # the job's own Cancelled (it knows the signal)
        raise encoder.error
    if encoder.frames == 0:
        raise DepthStudioError(f"{input_path}: no frames were processed")
    if settings.max_frames is None and info.frames and encoder.frames < 0.9 * info.frames - 1:
        log.warning("%s: only %d of the %d frames its header announces could be decoded; the file may be truncated",
                    input_path, encoder.frames, info.frames)
    return VideoResult(outputs=paths, frames=encoder.frames, info=info, seconds=time.perf_counter() - started,
                       cuts=encoder.cuts)


def _join(encoder: threading.Thread, decoder: threading.Thread, stop: threading.Event) -> None:
    # The encoder may still be closing files (normal end) - wait for it; then the decoder.
    while encoder.is_alive():
        encoder.join(0.1)
    stop.set()
    decoder.join(5.0)


def _check_writable(target: Path) -> None:
    from depthstudio.io.atomic import ensure_dir

    folder = ensure_dir(target.parent)
    if target.is_dir():
        raise OutputError(f"{target}: is a folder; give a file name or another folder")
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"{target}: exists and is not writable")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"output folder is not writable: {folder}")


def _z_getter(kind, values, nearness, valid, settings):
    """Distance for the effects, computed only when one asks (the depth effect never does)."""

    def z() -> np.ndarray:
        from depthstudio.geometry.depth import disparity_to_depth

        if kind == "metric":
            return np.where(valid, 1.0 / np.maximum(values, 1e-9), 0).astype(np.float32)
        return np.where(valid, disparity_to_depth(nearness, settings.near, settings.far), 0).astype(np.float32)

    return z
