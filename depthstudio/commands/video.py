"""`depthstudio video INPUT... -o OUT --effect depth|parallax|dof|stereo`: depth videos and effect previews.

Decoding, inference and encoding overlap; memory stays flat however long the clip; outputs keep
the source's frame rate, timestamps, size (or --size) and audio, and appear only when complete.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from depthstudio.batch import BatchWork, Item, split_done
from depthstudio.commands._flags import add_sections, depth_sections, read_sections
from depthstudio.commands.common import (
    BatchReport,
    add_ray_flags,
    execute,
    for_urls,
    path_or_url,
    ray_settings_from_args,
)
from depthstudio.errors import DepthStudioError, SettingsError
from depthstudio.jobs import Job, tqdm_listener
from depthstudio.settings import add_flags

if TYPE_CHECKING:
    from depthstudio.video.pipeline import VideoSettings


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
    p.add_argument("-o", "--output", required=True, type=path_or_url, metavar="OUT",
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
    p.add_argument("--overwrite", action="store_true", help="redo clips whose outputs already exist")
    add_ray_flags(p)
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


@dataclass
class VideoWork(BatchWork):
    """One whole clip (never single frames: temporal stabilisation needs the clip) to its outputs.

    ``settings``: the VideoSettings (effect inside); ``sections``: the command's settings objects
    (model, depth files...). Plain data: it travels to Ray workers."""

    settings: VideoSettings
    sections: dict

    what = "videos done"
    unit = "clip"

    def estimator(self):
        from depthstudio.source import DepthSource

        return DepthSource(self.sections["model"]).estimator()  # loaded once per process (cached)

    def prepare(self) -> None:
        if self.sections["depth"].depth is None:
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

        files = self.sections["depth"]
        if files.depth is not None:
            from depthstudio.video.depthsource import DepthVideoSource

            # the sidecar JSON beside the depth video says its kind; --depth-kind metric overrides
            estimator = DepthVideoSource(files.depth, "metric" if files.depth_kind == "metric" else None)
        else:
            estimator = self.estimator()
        job, close_bar = getattr(self, "_job", None), None
        if job is not None:  # a local run: a bar of frames per clip (on a cluster, the driver's bar counts clips)
            listen, close_bar = tqdm_listener(Path(item.path).name, unit="frame")
            job = job.sub(0, message=Path(item.path).name)
            job.listen(listen)
        try:
            result = process_video(item.path, item.out, self.settings, estimator, job=job)
        finally:
            if close_bar is not None:
                close_bar()
            if files.depth is not None:
                estimator.close()
        from depthstudio.commands._flags import save_settings, settings_path

        first = result.outputs.get("effect") or result.outputs.get("meta") or next(iter(result.outputs.values()))
        save_settings(settings_path(first), "video", self.sections)
        written = ", ".join(str(p) for role, p in result.outputs.items() if role != "meta")
        cuts = f", {len(result.cuts)} scene cut(s)" if result.cuts else ""
        return f"{item.path}: {result.frames} frames at {result.fps:.1f} frames/s{cuts} -> {written}"


def run(args) -> int:
    from depthstudio.io.remote import is_url, url_path

    ray = ray_settings_from_args(args)
    settings, s = settings_from_args(args)
    inputs = [url_path(p) if is_url(p) else Path(p) for p in args.inputs]  # for names only
    if is_url(str(args.output)) and url_path(str(args.output)).suffix:
        raise SettingsError(f"{args.output}: at a URL, -o must be a folder")
    if len(inputs) > 1 and Path(str(args.output)).suffix:
        raise SettingsError(f"{args.output}: with several inputs, -o must be a folder")
    if s["depth"].depth is not None and len(inputs) > 1:
        raise SettingsError("--depth gives the depth video of one clip: pass one INPUT with it")
    work = VideoWork(settings, s)
    if ray is None:
        work._job = getattr(args, "job", None) or Job()
    report = BatchReport()
    items = [Item(given if is_url(given) else str(p), p.stem, str(args.output)) for given, p in zip(args.inputs, inputs)]
    work = for_urls(work, items)
    todo = split_done(work, items, report, args.overwrite)
    if todo and ray is None and s["depth"].depth is None and not is_url(todo[0].path):
        from depthstudio.video.decode import probe

        try:
            probe(todo[0].path)  # a bad first input fails before the model loads
        except DepthStudioError as exc:
            report.fail(todo[0].path, str(exc))
            todo = todo[1:]
    execute(work, todo, report, ray, desc="video", overwrite=args.overwrite, job=getattr(args, "job", None))
    if len(inputs) > 1:
        print(report.summary(work.what))
    return report.exit_code
