"""Command-line flags generated from the core's settings classes, and the settings file behind them.

    SECTIONS = (ModelSettings, DepthFileSettings, DepthMapping, CameraSettings, MeshSettings)
    add_sections(p, SECTIONS)                       # one flag per field, grouped by section
    s = read_sections(args, SECTIONS)               # --settings FILE, then the flags given on top
    source = DepthSource(s["model"], s["depth"])

Flags carry no defaults of their own: a flag not given leaves the settings file's value, else the
dataclass default.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from depthstudio.settings import (
    Settings,
    add_flags,
    from_args,
    load_section,
    read_settings_file,
    write_settings_file,
)

#: Argument-group titles per settings section.
TITLES = {
    "model": "model",
    "depth": "depth",
    "mapping": "depth mapping (relative depth to distance)",
    "camera": "camera (default: EXIF, else the model's estimate, else 60 degrees horizontal)",
    "mesh": "mesh",
    "points": "point cloud clean-up",
    "export": "export",
}


def depth_sections() -> tuple[type[Settings], ...]:
    """Model, depth files, depth mapping and camera: what every photo-to-geometry command takes."""
    from depthstudio.geometry.camera import CameraSettings
    from depthstudio.geometry.depth import DepthMapping
    from depthstudio.source import DepthFileSettings, ModelSettings

    return (DepthFileSettings, DepthMapping, CameraSettings, ModelSettings)


def add_sections(p: argparse.ArgumentParser, classes: Iterable[type[Settings]],
                 exclude: dict[str, tuple[str, ...]] | None = None) -> None:
    for cls in classes:
        add_flags(p, cls, exclude=(exclude or {}).get(cls.section, ()), title=TITLES.get(cls.section, cls.section))


def settings_file(args: argparse.Namespace) -> dict[str, dict] | None:
    path = getattr(args, "settings", None)
    return read_settings_file(path) if path else None


def read_sections(args: argparse.Namespace, classes: Iterable[type[Settings]]) -> dict[str, Any]:
    """{section: settings}: the --settings file's values (if given) with the flags given on top."""
    saved = settings_file(args)
    return {cls.section: from_args(cls, args, load_section(cls, saved) if saved is not None else None)
            for cls in classes}


def depth_source(sections: dict[str, Settings]):
    from depthstudio.source import DepthSource

    source = DepthSource(sections["model"], sections["depth"])  # type: ignore[arg-type]
    source.check_files()
    return source


def save_settings(path: Path, command: str, sections: dict[str, Settings], extra: dict | None = None) -> Path:
    """``<stem>.settings.json``: what ``--settings`` reads back to reproduce this output."""
    return write_settings_file(path, command, sections, extra)


def settings_path(output: Path) -> Path:
    """``<output stem>.settings.json`` beside a single-file output (a video, a still)."""
    output = Path(output)
    return output.with_name(output.stem + ".settings.json")
