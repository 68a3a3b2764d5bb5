"""`depthstudio video INPUT... -o OUT --effect depth|parallax|dof|stereo`: depth videos and effect previews.

Decoding, inference and encoding overlap; memory stays flat however long the clip; outputs keep
the source's frame rate, timestamps, size (or --size) and audio, and appear only when complete.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from depthstudio.commands._flags import add_sections, depth_sections, read_sections
from depthstudio.commands.common import BatchReport
from depthstudio.errors import DepthStudioError, SettingsError
from depthstudio.jobs import Cancelled, Job, tqdm_listener
from depthstudio.settings import add_flags


def sections():
    from depthstudio.render.stereo import StereoSettings
    from depthstudio.video.effects import VideoDofSettings, VideoParallaxSettings
    from depthstudio.video.pipeline import VideoSettings

    return (VideoSettings, VideoParallaxSettings, VideoDofSettings, StereoSettings) + depth_sections()


#: The dof lens's --preview is the video's depth-preview choice here.
RENAMED = {"lens.preview": "--dof-preview"}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "video",
        help="depth videos and effect previews for clips",
        description="Temporally stable depth for video clips, and parallax / depth-of-field / stereo 3D previews on them.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files (any container FFmpeg reads)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                   help="output folder, or a file: depth: x.mkv (16-bit) / x.mp4 (preview); effects: .mp4 .mov .webm .gif")
    for cls in sections():
        if cls.section == "video_parallax":
            add_flags(p, cls, exclude=("path.duration",), title="parallax effect")
        elif cls.section == "video_dof":
            add_flags(p, cls, rename=RENAMED, title="dof effect")
        elif cls.section == "stereo":
            # the video's own --size, --quality and frame rate apply; no camera path
            add_flags(p, cls, exclude=("render.path", "render.fps", "render.size", "render.quality"),
                      title="stereo effect")
        elif cls.section == "video":
            add_flags(p, cls, exclude=("mapping", "camera"), title="video")
        else:
            add_sections(p, (cls,))
    from depthstudio.commands.stereo import settings_checked_late

    settings_checked_late(p)
    p.set_defaults(func=run)


def settings_from_args(args):
    """(VideoSettings with the effect's settings inside, the depth-source sections)."""
    from dataclasses import replace

    s = read_sections(args, sections())
    settings = replace(s["video"], mapping=s["mapping"], camera=s["camera"])
    if settings.effect == "parallax":
        settings = replace(settings, parallax=s["video_parallax"])
    elif settings.effect == "dof":
        settings = replace(settings, dof=s["video_dof"])
    elif settings.effect == "stereo":
        from depthstudio.video.effects import check_video_stereo

        settings = replace(settings, stereo=check_video_stereo(s["stereo"]))
    return settings.validate(), s


def run(args) -> int:
    from depthstudio.video.pipeline import process_video

    settings, s = settings_from_args(args)
    files = s["depth"]
    inputs = [Path(p) for p in args.inputs]
    if len(inputs) > 1 and args.output.suffix:
        raise SettingsError(f"{args.output}: with several inputs, -o must be a folder")
    estimator: Any = None  # a loaded model (kept for the next clip) or a depth video
    report = BatchReport()
    job = getattr(args, "job", None) or Job()
    for path in inputs:
        listen, close_bar = tqdm_listener(path.name, unit="frame", enabled=sys.stderr.isatty() or len(inputs) > 0)
        clip = job.sub(0, message=path.name)
        clip.listen(listen)
        try:
            if files.depth is not None:
                from depthstudio.video.depthsource import DepthVideoSource

                if len(inputs) > 1:
                    raise SettingsError("--depth gives the depth video of one clip: pass one INPUT with it")
                # the sidecar JSON beside the depth video says its kind; --depth-kind metric overrides
                estimator = DepthVideoSource(files.depth, "metric" if files.depth_kind == "metric" else None)
            elif estimator is None:
                from depthstudio.models.estimator import load_estimator
                from depthstudio.video.decode import probe

                probe(path)  # a bad first input fails before the model loads
                m = s["model"]
                estimator = load_estimator(m.model, m.backend, m.input_size)
            try:
                result = process_video(path, args.output, settings, estimator, job=clip)
            finally:
                if hasattr(estimator, "close"):
                    estimator.close()
        except Cancelled:
            close_bar()
            raise
        except DepthStudioError as exc:
            close_bar()
            message = str(exc)
            report.fail(path, message if str(path) in message else f"{path}: {message}")
            continue
        close_bar()
        report.done.append(path)
        written = ", ".join(str(p) for role, p in result.outputs.items() if role != "meta")
        cuts = f", {len(result.cuts)} scene cut(s)" if result.cuts else ""
        print(f"{path}: {result.frames} frames at {result.fps:.1f} frames/s{cuts} -> {written}")
    if len(inputs) > 1:
        print(report.summary("videos done"))
    return report.exit_code
