"""The GUI's data model: the photo list, the current photo, and one settings object per stage.

No Qt here (napari style): views subscribe to the document's events, workers read snapshots of
its settings. Settings are the core's own dataclasses, so what the window edits is exactly what
the CLI fills from flags and what is saved beside every export.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from depthstudio.app.events import Event
from depthstudio.errors import SettingsError

#: Which pipeline stage each settings section feeds; a change re-runs that stage and the ones after.
#: Only "model" needs inference again; geometry and effects re-render from the cached depth.
STAGES = {
    "model": "depth",
    "source": "depth",
    "mapping": "geometry",
    "camera": "geometry",
    "mesh": "geometry",
    "parallax": "parallax",
    "dof": "dof",
    "export": "none",
}

EXPORT_FORMATS = ("obj", "ply", "glb", "usdz")


@dataclass
class ModelSettings:
    """Which model estimates depth, and how (the CLI's --model, --backend, --input-size)."""

    model: str = "da2-small"
    backend: str = "auto"
    input_size: int = 518

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "onnx", "torch"):
            raise SettingsError(f"backend must be auto, onnx or torch, not {self.backend!r}")
        if not 14 <= int(self.input_size) <= 4096:
            raise SettingsError(f"input size must be between 14 and 4096 pixels, not {self.input_size}")
        self.input_size = int(self.input_size)


@dataclass
class DepthFileSettings:
    """How to read depth the user brings instead of a model's (the CLI's --depth-kind)."""

    kind: Literal["disparity", "metric"] = "disparity"

    def validate(self) -> DepthFileSettings:
        if self.kind not in ("disparity", "metric"):
            raise SettingsError(f"depth kind must be disparity or metric, not {self.kind!r}")
        return self


@dataclass
class ExportSettings:
    """What the Export action writes, and where."""

    folder: str = ""
    formats: tuple = ("obj", "ply", "glb")
    depth_png: bool = True
    depth_exr: bool = False
    parallax_video: bool = False
    dof_still: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.formats, str):
            self.formats = tuple(f for f in self.formats.replace(" ", "").split(",") if f)
        self.formats = tuple(self.formats)
        bad = [f for f in self.formats if f not in EXPORT_FORMATS]
        if bad:
            raise SettingsError(f"unknown export format {bad[0]!r}; choose from {', '.join(EXPORT_FORMATS)}")


def _mesh_settings():
    from depthstudio.geometry.mesh import MeshSettings

    return MeshSettings()


def _camera_settings():
    from depthstudio.geometry.camera import CameraSettings

    return CameraSettings()


def _depth_mapping():
    from depthstudio.geometry.depth import DepthMapping

    return DepthMapping()


def _core_settings() -> dict[str, Any]:
    """Default settings objects per section, from the core's dataclasses.

    A section whose core module is not installed (the render extras, say) is left out, and the
    window hides what depends on it.
    """
    from depthstudio.app import core

    factories = {
        "model": ModelSettings,
        "source": DepthFileSettings,
        "camera": _camera_settings,
        "mapping": _depth_mapping,
        "mesh": _mesh_settings,
        "parallax": lambda: core.parallax_settings_class()(),
        "dof": lambda: core.dof_settings_class()(),
        "export": ExportSettings,
    }
    sections: dict[str, Any] = {}
    for name, factory in factories.items():
        try:
            sections[name] = factory()
        except ImportError:
            pass
    return sections


def _replace_dotted(obj, parts: list[str], value):
    if len(parts) == 1:
        return dataclasses.replace(obj, **{parts[0]: value})
    inner = getattr(obj, parts[0])
    return dataclasses.replace(obj, **{parts[0]: _replace_dotted(inner, parts[1:], value)})


def flat_fields(settings, prefix: str = "") -> dict:
    """{"name" or "nested.name": value} over a settings dataclass and the dataclasses inside it."""
    out = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(flat_fields(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


@dataclass
class PhotoItem:
    """One photo of the list and what the pipeline knows about it so far."""

    path: Path
    photo: Any = None  # depthstudio.io.images.Photo once loaded
    depth: Any = None  # depthstudio.depthmap.DepthMap once estimated (or read from a file)
    depth_key: tuple | None = None  # the model settings the cached depth was made with
    depth_file: Path | None = None  # the user's own depth map, used instead of a model
    error: str | None = None
    status: str = "new"  # new | loading | loaded | estimating | ready | failed
    extras: dict = field(default_factory=dict)  # display copies the views keep (preview, thumbnail)

    @property
    def name(self) -> str:
        return self.path.name


class Document:
    """Photos plus settings; emits events when either changes."""

    def __init__(self, sections: dict[str, Any] | None = None) -> None:
        self.items: list[PhotoItem] = []
        self.current_index: int = -1
        self.sections: dict[str, Any] = sections if sections is not None else _core_settings()
        self.items_changed = Event("items_changed")  # ()
        self.current_changed = Event("current_changed")  # (index)
        self.item_changed = Event("item_changed")  # (item, what: "photo" | "depth" | "status")
        self.settings_changed = Event("settings_changed")  # (section, name, value)

    # ---- photos -------------------------------------------------------------------------------
    @property
    def current(self) -> PhotoItem | None:
        if 0 <= self.current_index < len(self.items):
            return self.items[self.current_index]
        return None

    def index_of(self, path: str | Path) -> int:
        key = Path(path).resolve()
        for i, item in enumerate(self.items):
            if item.path.resolve() == key:
                return i
        return -1

    def add_paths(self, paths) -> list[int]:
        """Add photos (duplicates are not added twice); returns the indices of the given paths."""
        indices = []
        added = False
        for path in paths:
            path = Path(path)
            index = self.index_of(path)
            if index < 0:
                self.items.append(PhotoItem(path=path))
                index = len(self.items) - 1
                added = True
            indices.append(index)
        if added:
            self.items_changed.emit()
        return indices

    def remove(self, index: int) -> None:
        if not 0 <= index < len(self.items):
            return
        del self.items[index]
        if index < self.current_index:
            self.current_index -= 1
        elif index == self.current_index:
            self.current_index = min(index, len(self.items) - 1)
        self.items_changed.emit()
        self.current_changed.emit(self.current_index)

    def set_current(self, index: int) -> None:
        index = int(index) if 0 <= index < len(self.items) else -1
        if index != self.current_index:
            self.current_index = index
            self.current_changed.emit(index)

    def notify(self, item: PhotoItem, what: str) -> None:
        self.item_changed.emit(item, what)

    # ---- settings -----------------------------------------------------------------------------
    def get(self, section: str, name: str):
        """A setting's value; ``name`` may be dotted for nested settings ("path.preset")."""
        value = self.sections[section]
        for part in name.split("."):
            value = getattr(value, part)
        return value

    def updated(self, section: str, name: str, value):
        """The section with one field changed and validated; raises SettingsError on bad values."""
        try:
            updated = _replace_dotted(self.sections[section], name.split("."), value)
            check = getattr(updated, "validate", None)
            if callable(check):
                check()
        except SettingsError:
            raise
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{section} {name.replace('_', ' ')}: {exc}") from None
        return updated

    def set(self, section: str, name: str, value) -> None:
        """Change one setting; the section's own validation runs (SettingsError on bad values)."""
        if self.get(section, name) == value:
            return
        updated = self.updated(section, name, value)
        self.sections[section] = updated
        self.settings_changed.emit(section, name, self.get(section, name))

    def depth_key(self, item: PhotoItem | None = None) -> tuple:
        """What the cached depth of a photo depends on: the model settings or the depth file."""
        item = item or self.current
        if item is not None and item.depth_file is not None:
            return ("file", str(item.depth_file), self.sections["source"].kind)
        m = self.sections["model"]
        return ("model", m.model, m.backend, m.input_size)

    def needs_depth(self, item: PhotoItem) -> bool:
        return item.depth is None or item.depth_key != self.depth_key(item)

    # ---- persistence --------------------------------------------------------------------------
    def settings_dict(self) -> dict:
        out = {}
        for name, settings in self.sections.items():
            out[name] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in flat_fields(settings).items()}
        return out

    def settings_json(self) -> str:
        return json.dumps(self.settings_dict(), indent=2, default=str)

    def load_settings_dict(self, data: dict) -> list[str]:
        """Apply saved settings; fields that no longer exist or no longer validate are skipped."""
        problems = []
        for section, values in (data or {}).items():
            if section not in self.sections or not isinstance(values, dict):
                continue
            known = flat_fields(self.sections[section])
            for name, value in values.items():
                if name not in known:
                    continue
                if isinstance(known[name], tuple) and isinstance(value, list):
                    value = tuple(value)
                elif isinstance(value, list):
                    value = tuple(value)
                try:
                    self.set(section, name, value)
                except Exception as exc:  # a stale or hand-edited value must not stop the window
                    problems.append(f"{section}.{name}: {exc}")
        return problems
