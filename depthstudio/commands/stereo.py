"""`depthstudio stereo INPUT... -o OUT`: stereo 3D pictures of photos (side by side, top-bottom,
anaglyph, cross-eyed, VR180, Looking Glass quilts, or a left/right pair).

OUT is a folder; each photo gets the layout's files (see render.stereo.output_names) and
``<stem>.settings.json``. One failing input never stops the rest.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from depthstudio.commands._flags import (
    add_sections,
    depth_sections,
    depth_source,
    read_sections,
    save_settings,
)
from depthstudio.errors import SettingsError

#: Nested parallax fields that mean nothing for a still stereo picture.
EXCLUDE = ("render.path", "render.fps")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


def sections():
    from depthstudio.render.stereo import StereoSettings

    return (StereoSettings,) + depth_sections()


def settings_checked_late(parser: argparse.ArgumentParser,
                          dests=("stereo.layout", "stereo.anaglyph", "stereo.convergence", "stereo.quilt")) -> None:
    """An unknown layout, anaglyph method, convergence or quilt is a settings error (one line, exit 1)
    rather than an argparse usage error (exit 2): the dataclass checks them, the help lists them."""
    for action in parser._actions:
        if action.dest in dests:
            if action.choices is not None:
                action.choices = None
                action.metavar = action.dest.split(".")[-1].upper()
            action.type = str


def add_parser(sub) -> None:
    from depthstudio.settings import add_flags

    p = sub.add_parser(
        "stereo", help="stereo 3D pictures of photos: side by side, top-bottom, anaglyph, VR180, Looking Glass",
        description="Render each photo from two eyes, the photo's camera moved by -B/2 and +B/2 along its x "
                    "axis (off-axis convergence, never toe-in), with revealed areas filled, and lay them out "
                    "for 3D TVs, glasses, headsets or Looking Glass displays.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="files: pair -> <stem>_left.png, <stem>_right.png; vr180 -> <stem>_vr180_LR.jpg and the Google "
               "VR180 photo <stem>_vr180.vr.jpg; quilt -> <stem>_qs{cols}x{rows}a{aspect}.png; others -> "
               "<stem>_<layout>.png. See docs/stereo.md.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively) or .txt lists")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="redo photos whose outputs already exist")
    classes = sections()
    add_flags(p, classes[0], exclude=EXCLUDE, title="stereo")
    add_sections(p, classes[1:])
    settings_checked_late(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from depthstudio.commands.common import expand_inputs, run_batch
    from depthstudio.io.atomic import ensure_dir
    from depthstudio.io.images import load_image, output_stems
    from depthstudio.render.stereo import StereoRenderer, output_names

    s = read_sections(args, sections())
    settings, camera, mapping = s["stereo"], s["camera"], s["mapping"]
    out = Path(args.output)
    if out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir():
        raise SettingsError(f"{out}: -o is the output folder (each layout names its own files)")
    paths = expand_inputs(args.inputs)
    ensure_dir(out)
    stems = output_stems(paths)
    source = depth_source(s)

    def done(path: Path) -> bool:
        # the quilt's name depends on the view size: look for any quilt of this stem
        if settings.layout == "quilt":
            cols, rows = settings.grid
            return any(out.glob(f"{stems[path]}_qs{cols}x{rows}a*.png"))
        return all((out / name).exists() for name in output_names(stems[path], settings, (1, 1)))

    pending = [p for p in paths if args.overwrite or not done(p)]
    if pending and source.uses_model:
        source.estimator()  # a model that cannot load is one error, not one per photo

    def work(path: Path) -> str | None:
        if path not in pending:
            return "skipped"
        photo = load_image(path)
        depth = source.depth_for(photo)
        with StereoRenderer(photo, depth, settings, camera=camera, mapping=mapping) as stereo:
            for line in stereo.warnings:
                print(f"depthstudio: warning: {path}: {line}", file=sys.stderr)
            stereo.write(out, stems[path])
            info = stereo.info()
        save_settings(out / f"{stems[path]}.settings.json", "stereo", s, {"rig": info})
        return None

    report = run_batch(paths, work, desc="stereo", job=getattr(args, "job", None))
    print(report.summary("stereo pictures written") + f" -> {out}")
    return report.exit_code
