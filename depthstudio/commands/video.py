"""`depthstudio video INPUT... -o OUT --effect depth|parallax|dof`: depth videos and effect previews.

Decoding, inference and encoding overlap; memory stays flat however long the clip; outputs keep
the source's frame rate, timestamps, size (or --size) and audio, and appear only when complete.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from depthstudio.batch import BatchWork, Item, split_done
from depthstudio.commands._flags import point_arg, size_arg
from depthstudio.commands.common import BatchReport, add_ray_flags, execute, ray_options_from_args
from depthstudio.errors import DepthStudioError, SettingsError


def _pull(text: str) -> list[tuple[float, float]]:
    """"T0:D0,T1:D1,..." (seconds : metres or scene units) -> [(t, d), ...]."""
    keys = []
    try:
        for part in text.split(","):
            t, d = part.split(":")
            keys.append((float(t), float(d)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"focus pull must look like 0:2,3:8 (seconds:distance,...), got {text!r}") from None
    if not keys:
        raise argparse.ArgumentTypeError("focus pull needs at least one time:distance pair")
    return sorted(keys)


def add_parser(sub) -> None:
    from depthstudio.commands._flags import add_camera_flags, add_depth_flags, add_model_flags

    p = sub.add_parser(
        "video",
        help="depth videos and effect previews for clips",
        description="Temporally stable depth for video clips, and parallax / depth-of-field previews on them.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files (any container FFmpeg reads)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                   help="output folder, or a file: depth: x.mkv (16-bit) / x.mp4 (preview); effects: .mp4 .mov .webm .gif")
    p.add_argument("--effect", default="depth", choices=("depth", "parallax", "dof"), help="what to render (default depth)")
    add_model_flags(p)
    add_depth_flags(p)
    g = p.add_argument_group("output")
    g.add_argument("--size", type=size_arg, metavar="WxH", help="output size (default: the source's)")
    g.add_argument("--quality", type=float, default=80, help="0..100 for the lossy outputs (default 80)")
    g.add_argument("--no-audio", action="store_true", help="do not copy the source's audio")
    g.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames (quick previews)")
    g.add_argument("--batch", type=int, default=4, metavar="N", help="frames per model forward (default 4)")
    g.add_argument("--overwrite", action="store_true", help="redo clips whose outputs already exist")
    g = p.add_argument_group("depth effect")
    g.add_argument("--preview", default="color", choices=("color", "gray", "none"),
                   help="8-bit preview MP4: colour-mapped, grayscale, or none (default color)")
    g.add_argument("--side-by-side", action="store_true", help="put the source beside the depth in the preview")
    g.add_argument("--no-lossless", action="store_true", help="skip the 16-bit FFV1 depth stream (.mkv)")
    g = p.add_argument_group("temporal stability")
    g.add_argument("--no-stabilize", action="store_true", help="raw per-frame depth (flickers)")
    g.add_argument("--smoothing", type=float, default=0.5, help="0 = align scale/shift only .. 1 = strongest temporal smoothing (default 0.5)")
    g.add_argument("--cut-threshold", type=float, default=0.3, help="scene-cut sensitivity 0..1, lower = more cuts, 0 = never (default 0.3)")
    add_camera_flags(p)
    g = p.add_argument_group("effects (parallax, dof)")
    g.add_argument("--preset", default="zoom-in", help="parallax camera move: a preset name or a keyframe .json (default zoom-in)")
    g.add_argument("--intensity", type=float, default=1.0, help="parallax: scales the preset's camera travel (default 1)")
    g.add_argument("--period", type=float, metavar="S", help="parallax: seconds per move (default: the clip's length for one-way moves, 4 s for swings)")
    g.add_argument("--focus-distance", type=float, metavar="D", help="dof: focus at this distance (metres or near/far units)")
    g.add_argument("--focus-point", type=point_arg, metavar="X,Y", help="dof: focus on what is at this pixel (or 0..1 fractions), tracked through the clip")
    g.add_argument("--no-track", action="store_true", help="dof: keep the focus point at its pixel instead of following it")
    g.add_argument("--focus-pull", type=_pull, metavar="T:D,...", help="dof: focus distance keyframes, seconds:distance (e.g. 0:1.5,3:8)")
    g.add_argument("--f-number", type=float, default=2.8, help="dof: aperture (default 2.8)")
    g.add_argument("--dof-preview", action="store_true", help="dof: faster, scaled-down blur")
    add_ray_flags(p)
    p.set_defaults(func=run)


def settings_from_args(args):
    from depthstudio.commands._flags import settings_from_args as settings_from_flags
    from depthstudio.video.pipeline import VideoSettings
    from depthstudio.video.stabilize import StabilizeSettings

    stabilize = None if args.no_stabilize else StabilizeSettings(smoothing=args.smoothing, cut_threshold=args.cut_threshold)
    settings = VideoSettings(
        effect=args.effect, size=args.size, batch_size=args.batch, stabilize=stabilize, preview=args.preview,
        side_by_side=args.side_by_side, lossless=not args.no_lossless, quality=args.quality, audio=not args.no_audio,
        max_frames=args.max_frames, near=args.near, far=args.far,
    )
    settings.camera = settings_from_flags(args)[0]
    if args.effect == "parallax":
        from depthstudio.render.camera_path import PathSettings
        from depthstudio.video.effects import VideoParallaxSettings

        path = PathSettings(preset=args.preset, intensity=args.intensity)
        if args.period is not None:
            path.duration = args.period
        settings.parallax = VideoParallaxSettings(path=path, fit_clip=args.period is None).validate()
    elif args.effect == "dof":
        from depthstudio.render.dof import DofSettings
        from depthstudio.video.effects import VideoDofSettings

        lens = DofSettings(f_number=args.f_number, focus_distance=args.focus_distance, focus_point=args.focus_point)
        settings.dof = VideoDofSettings(lens=lens, pull=args.focus_pull, track=not args.no_track,
                                        preview=args.dof_preview).validate()
    return settings.validate()


class _Bar:
    """tqdm bar fed by the pipeline's progress callback (frames, with ETA)."""

    def __init__(self, name: str):
        self.name = name
        self.bar = None

    def __call__(self, done: int, total: int | None) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.name, unit="frame", file=sys.stderr, leave=False, dynamic_ncols=True)
        if total and total >= done and self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class VideoWork(BatchWork):
    """One whole clip (never single frames: temporal stabilisation needs the clip) to its outputs."""

    settings: object  # depthstudio.video.pipeline.VideoSettings
    model: str | None = None
    backend: str = "auto"
    input_size: int = 518
    depth: str | None = None  # --depth: the depth video of the one clip; no model runs
    depth_kind: str = "disparity"

    what = "videos done"
    unit = "clip"

    def estimator(self):
        if getattr(self, "_estimator", None) is None:
            from depthstudio.models.estimator import load_estimator

            self._estimator = load_estimator(self.model, self.backend, self.input_size)
        return self._estimator

    def prepare(self) -> None:
        if self.depth is None:
            self.estimator()

    def targets(self, item: Item) -> list[Path]:
        from depthstudio.video.pipeline import output_paths

        return list(output_paths(item.path, item.out, self.settings).values())

    def is_done(self, item: Item) -> bool:
        try:
            return super().is_done(item)
        except DepthStudioError:
            return False  # a bad -o: the item itself reports it

    def __call__(self, item: Item) -> str:
        from depthstudio.video.pipeline import process_video

        if self.depth is not None:
            from depthstudio.video.depthsource import DepthVideoSource

            # the sidecar JSON beside the depth video says its kind; --depth-kind metric overrides
            estimator = DepthVideoSource(self.depth, "metric" if self.depth_kind == "metric" else None)
        else:
            estimator = self.estimator()
        bar = _Bar(Path(item.path).name) if getattr(self, "_frame_bars", False) else None
        try:
            result = process_video(item.path, item.out, self.settings, estimator, progress=bar)
        finally:
            if bar is not None:
                bar.close()
            if self.depth is not None:
                estimator.close()
        written = ", ".join(str(p) for role, p in result.outputs.items() if role != "meta")
        cuts = f", {len(result.cuts)} scene cut(s)" if result.cuts else ""
        return f"{item.path}: {result.frames} frames at {result.fps:.1f} frames/s{cuts} -> {written}"


def run(args) -> int:
    ray = ray_options_from_args(args)
    settings = settings_from_args(args)
    inputs = [Path(p) for p in args.inputs]
    if len(inputs) > 1 and args.output.suffix:
        raise SettingsError(f"{args.output}: with several inputs, -o must be a folder")
    if args.depth is not None and len(inputs) > 1:
        raise SettingsError("--depth gives the depth video of one clip: pass one INPUT with it")
    work = VideoWork(settings, args.model, args.backend, args.input_size,
                     None if args.depth is None else str(args.depth), args.depth_kind)
    work._frame_bars = ray is None  # one bar of frames per clip here; one bar of clips on a cluster
    report = BatchReport()
    items = [Item(str(p), p.stem, str(args.output)) for p in inputs]
    todo = split_done(work, items, report, args.overwrite)
    if todo and ray is None and args.depth is None:
        from depthstudio.video.decode import probe

        try:
            probe(todo[0].path)  # a bad first input fails before the model loads
        except DepthStudioError as exc:
            report.fail(todo[0].path, str(exc))
            todo = todo[1:]
    execute(work, todo, report, ray, desc="video", overwrite=args.overwrite)
    if len(inputs) > 1:
        print(report.summary(work.what))
    return report.exit_code
