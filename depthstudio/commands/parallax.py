"""`depthstudio parallax INPUT -o OUT.(mp4|webm|gif)`: a 2.5D camera move through a photo.

With several inputs (or a folder), OUT is a folder and each photo gets ``<stem>_parallax.<format>``;
one failing input never stops the rest.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from depthstudio.commands._flags import DepthSource, add_camera_flags, add_depth_flags, add_model_flags, settings_from_args
from depthstudio.errors import SettingsError

VIDEO_FORMATS = ("mp4", "webm", "gif")


def add_parser(sub) -> None:
    from depthstudio.render.camera_path import EASINGS, LOOPS, PRESETS
    from depthstudio.render.layers import DEFAULT_EDGE_CUT

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
    g = p.add_argument_group("motion")
    g.add_argument("--preset", default="circle", metavar="P", help=f"camera move: {', '.join(PRESETS)} or a keyframe .json (default circle)")
    g.add_argument("--duration", type=float, default=4.0, metavar="S", help="clip length in seconds (default 4)")
    g.add_argument("--fps", type=float, default=30.0, metavar="N", help="frames per second (default 30)")
    g.add_argument("--size", default=None, metavar="WxH", help="output size (default: the photo's, long side at most 1920)")
    g.add_argument("--intensity", type=float, default=1.0, metavar="X", help="scale of the camera travel (default 1)")
    g.add_argument("--loop", choices=LOOPS, default=None, help="none, pingpong (out and back) or cycle (default: the preset's)")
    g.add_argument("--easing", choices=tuple(EASINGS), default=None, help="time curve (default: the preset's)")
    g.add_argument("--steady", type=float, default=0.5, metavar="F",
                   help="which depth stays still: 0 = the far end of the scene, 1 = the near end (default 0.5)")
    g.add_argument("--steady-depth", type=float, default=None, metavar="D",
                   help="or the distance that stays still, in scene units / metres")
    r = p.add_argument_group("rendering")
    r.add_argument("--format", choices=VIDEO_FORMATS, default="mp4", help="video format for folder output (default mp4)")
    r.add_argument("--quality", type=float, default=80, metavar="Q", help="video quality 0..100 (default 80)")
    r.add_argument("--edge-cut", type=float, default=DEFAULT_EDGE_CUT, metavar="R",
                   help=f"depth step |ln(z1/z2)| that separates surfaces (default {DEFAULT_EDGE_CUT}; 0 = never cut)")
    r.add_argument("--mesh-resolution", type=int, default=400_000, metavar="N",
                   help="at most N mesh vertices (default 400000)")
    r.add_argument("--no-fill", action="store_true", help="leave revealed areas empty (black) instead of filling them")
    r.add_argument("--samples", type=int, default=4, metavar="N", help="anti-aliasing samples (default 4; 0 = off)")
    r.add_argument("--overwrite", action="store_true", help="redo inputs whose video already exists (folder output)")
    add_depth_flags(p)
    add_camera_flags(p)
    add_model_flags(p)
    p.set_defaults(func=run)


def settings_from(args):
    from depthstudio.render.camera_path import PathSettings
    from depthstudio.render.fill import FillSettings
    from depthstudio.render.parallax import ParallaxSettings, parse_size

    path = PathSettings(preset=args.preset, duration=args.duration, intensity=args.intensity, loop=args.loop,
                        easing=args.easing, steady=args.steady, steady_depth=args.steady_depth)
    if not 0 <= args.quality <= 100:
        raise SettingsError(f"--quality must be between 0 and 100, got {args.quality}")
    if args.samples < 0 or args.samples > 16:
        raise SettingsError(f"--samples must be between 0 and 16, got {args.samples}")
    return ParallaxSettings(
        path=path, fps=args.fps, size=parse_size(args.size) if args.size else None, edge_cut=args.edge_cut,
        max_vertices=args.mesh_resolution, fill=FillSettings(enabled=not args.no_fill), samples=args.samples,
        quality=args.quality,
    ).validate()


def run(args) -> int:
    from depthstudio.commands.common import expand_inputs, run_batch
    from depthstudio.io.atomic import ensure_dir
    from depthstudio.io.images import load_image
    from depthstudio.render.camera_path import KeyframePath
    from depthstudio.render.parallax import ParallaxRenderer

    settings = settings_from(args)
    if str(args.preset).lower().endswith(".json"):
        KeyframePath.load(args.preset)  # a broken keyframe file is one clear error up front
    camera, mapping = settings_from_args(args)
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
    source = DepthSource.from_args(args)
    pending = [p for p in paths if single or args.overwrite or not targets[p].exists()]
    if pending and source.uses_model:
        source.estimator()  # a model that cannot load is one error, not one per photo

    def work(path: Path) -> str | None:
        if path not in pending:
            return "skipped"
        photo = load_image(path)
        depth = source.depth_for(photo)
        with ParallaxRenderer(photo, depth, settings, camera=camera, mapping=mapping) as renderer:
            renderer.write_video(targets[path], progress=sys.stderr.isatty())
        return None

    report = run_batch(paths, work, desc="parallax")
    if single:
        if not report.failed:
            print(f"wrote {out}")
    else:
        print(report.summary("videos written") + f" -> {out}")
    return report.exit_code
