"""`depthstudio stereo INPUT... -o OUT`: stereo 3D pictures of photos (side by side, top-bottom,
anaglyph, cross-eyed, VR180, Looking Glass quilts, or a left/right pair).

OUT is a folder; each photo gets the layout's files (see render.stereo.output_names) and
``<stem>.settings.json``. One failing input never stops the rest.
"""
from __future__ import annotations

import argparse
import glob
import sys
from dataclasses import dataclass
from pathlib import Path

from depthstudio.batch import BatchWork, Item
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
    from depthstudio.commands.common import add_ray_flags

    add_ray_flags(p)
    p.set_defaults(func=run)


@dataclass
class StereoWork(BatchWork):
    """One photo to its stereo picture(s) and settings file: the command's settings sections travel
    to Ray workers; the model loads once per process."""

    sections: dict

    what = "stereo pictures written"

    def __post_init__(self) -> None:
        self._source = depth_source(self.sections)  # per process: rebuilt (without a model) where unpickled

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        self.__post_init__()

    def prepare(self) -> None:
        if self._source.uses_model:
            self._source.estimator()  # a model that cannot load is one error, not one per photo

    def targets(self, item: Item) -> list[Path]:
        from depthstudio.render.stereo import output_names

        return [Path(item.out) / name for name in output_names(item.stem, self.sections["stereo"], (1, 1))]

    def written(self, item: Item) -> list[Path]:
        extra = [Path(item.out) / f"{item.stem}.settings.json"]
        return extra if self.sections["stereo"].layout == "quilt" else [*self.targets(item), *extra]

    def is_done(self, item: Item) -> bool:
        settings = self.sections["stereo"]
        if settings.layout == "quilt":  # the quilt's name depends on the view size: any quilt of this stem
            cols, rows = settings.grid
            return any(Path(item.out).glob(f"{glob.escape(item.stem)}_qs{cols}x{rows}a*.png"))
        return all(p.exists() for p in self.targets(item))

    def __call__(self, item: Item) -> None:
        from depthstudio.io.images import load_image
        from depthstudio.render.stereo import StereoRenderer

        s, out = self.sections, Path(item.out)
        photo = load_image(item.path)
        depth = self._source.depth_for(photo)
        with StereoRenderer(photo, depth, s["stereo"], camera=s["camera"], mapping=s["mapping"]) as stereo:
            for line in stereo.warnings:
                print(f"depthstudio: warning: {item.path}: {line}", file=sys.stderr)
            stereo.write(out, item.stem)
            info = stereo.info()
        save_settings(out / f"{item.stem}.settings.json", "stereo", s, {"rig": info})


def run(args) -> int:
    from depthstudio.batch import split_done
    from depthstudio.commands.common import BatchReport, execute, expand_items, for_urls, ray_settings_from_args

    ray = ray_settings_from_args(args)
    s = read_sections(args, sections())
    out = Path(args.output)
    if out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir():
        raise SettingsError(f"{out}: -o is the output folder (each layout names its own files)")
    work = StereoWork(s)
    items, out_dir = expand_items(args.inputs, out)
    work = for_urls(work, items)  # input URLs (s3://...) are downloaded per photo
    report = BatchReport()
    todo = split_done(work, items, report, args.overwrite)
    execute(work, todo, report, ray, desc="stereo", overwrite=args.overwrite, job=getattr(args, "job", None))
    print(report.summary(work.what) + f" -> {out_dir}")
    return report.exit_code
