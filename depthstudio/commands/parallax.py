"""`depthstudio parallax INPUT -o OUT.(mp4|webm|gif)`: a 2.5D camera move through a photo.

With several inputs (or a folder), OUT is a folder and each photo gets ``<stem>_parallax.<format>``;
one failing input never stops the rest.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from depthstudio.commands._flags import add_sections, depth_sections, depth_source, read_sections, save_settings, settings_path
from depthstudio.errors import SettingsError

VIDEO_FORMATS = ("mp4", "webm", "gif")


def sections():
    from depthstudio.render.parallax import ParallaxSettings

    return (ParallaxSettings,) + depth_sections()


def add_parser(sub) -> None:
    from depthstudio.render.camera_path import PRESETS

    presets = ", ".join(f"{name} ({p.help})" for name, p in PRESETS.items())
    p = sub.add_parser(
        "parallax", help="a 2.5D camera-move video of a photo (MP4, WebM, GIF)",
        description="Render a parallax video: the photo becomes a depth mesh, cut at depth edges with the "
                    "revealed areas filled, seen by a moving camera. The first frame is the photo itself.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"presets: {presets}; or a keyframe .json file (see docs/parallax.md)",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="an image (or several, folders, .txt lists)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                   help="output video (.mp4, .webm, .gif); a folder when there are several inputs")
    p.add_argument("--format", choices=VIDEO_FORMATS, default="mp4", help="video format for folder output (default mp4)")
    p.add_argument("--overwrite", action="store_true", help="redo inputs whose video already exists (folder output)")
    add_sections(p, sections())
    p.set_defaults(func=run)


def run(args) -> int:
    from depthstudio.commands.common import expand_inputs, run_batch
    from depthstudio.io.atomic import ensure_dir
    from depthstudio.io.images import load_image
    from depthstudio.render.camera_path import KeyframePath
    from depthstudio.render.parallax import ParallaxRenderer

    s = read_sections(args, sections())
    settings, camera, mapping = s["parallax"], s["camera"], s["mapping"]
    if str(settings.path.preset).lower().endswith(".json"):
        KeyframePath.load(settings.path.preset)  # a broken keyframe file is one clear error up front
    paths = expand_inputs(args.inputs)
    out = Path(args.output)
    suffix = out.suffix.lower().lstrip(".")
    single = len(paths) == 1 and bool(suffix)
    if single:
        if suffix not in VIDEO_FORMATS:
            raise SettingsError(f"{out}: cannot write a parallax video as '.{suffix}'; use .mp4, .webm or .gif")
        ensure_dir(out.parent)
        targets = {paths[0]: out}
    else:
        if suffix in VIDEO_FORMATS:
            raise SettingsError(f"{out}: with {len(paths)} inputs, -o must be a folder (one video per photo)")
        ensure_dir(out)
        targets = {p: out / f"{p.stem}_parallax.{args.format}" for p in paths}
    source = depth_source(s)
    pending = [p for p in paths if single or args.overwrite or not targets[p].exists()]
    if pending and source.uses_model:
        source.estimator()  # a model that cannot load is one error, not one per photo

    job = getattr(args, "job", None)

    def work(path: Path) -> str | None:
        if path not in pending:
            return "skipped"
        photo = load_image(path)
        depth = source.depth_for(photo)
        with ParallaxRenderer(photo, depth, settings, camera=camera, mapping=mapping) as renderer:
            renderer.write_video(targets[path], progress=sys.stderr.isatty(), job=job.sub(0) if job else None)
        save_settings(settings_path(targets[path]), "parallax", s)
        return None

    report = run_batch(paths, work, desc="parallax", job=job)
    if single:
        if not report.failed:
            print(f"wrote {out}")
    else:
        print(report.summary("videos written") + f" -> {out}")
    return report.exit_code
