"""The GUI's data model: the photo list, the current photo, and one core settings object per stage.

No Qt here (napari style): views subscribe to the document's events, workers read snapshots of
its settings. The settings are the core's own dataclasses (the ones the CLI fills from flags),
keyed by their ``section`` name, so saving and loading them is ``Settings.to_dict/from_dict``.

A few fields belong to one photo, not to the session (:data:`PER_PHOTO`): the depth file and its
kind, and the focus distance or point clicked on it. Each photo keeps its own values; switching
photos swaps them in, and they are never saved as the session's defaults.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from depthstudio.app.events import Event
from depthstudio.errors import SettingsError
from depthstudio.settings import Settings, iter_settings

#: Which pipeline stage each section feeds; a change re-runs that stage and the ones after.
#: Only "model" and "depth" need depth again; geometry and effects re-render from the cached depth.
STAGES = {"model": "depth", "depth": "depth", "mapping": "geometry", "camera": "geometry", "mesh": "geometry",
          "parallax": "parallax", "dof": "dof", "stereo": "stereo"}

#: Fields that belong to one photo: section -> field names.
PER_PHOTO = {"depth": ("depth", "depth_kind"), "dof": ("focus_distance", "focus_point")}


def _classes() -> list[Callable[[], type]]:
    def model():
        from depthstudio.source import ModelSettings
        return ModelSettings

    def depth():
        from depthstudio.source import DepthFileSettings
        return DepthFileSettings

    def camera():
        from depthstudio.geometry.camera import CameraSettings
        return CameraSettings

    def mapping():
        from depthstudio.geometry.depth import DepthMapping
        return DepthMapping

    def mesh():
        from depthstudio.geometry.mesh import MeshSettings
        return MeshSettings

    def export():
        from depthstudio.geometry.export import ExportSettings
        return ExportSettings

    def depth_output():
        from depthstudio.io.depthfiles import DepthOutputSettings
        return DepthOutputSettings

    def outputs():
        from depthstudio.outputs import OutputSettings
        return OutputSettings

    def parallax():
        from depthstudio.render.parallax import ParallaxSettings
        return ParallaxSettings

    def dof():
        from depthstudio.render.dof import DofSettings
        return DofSettings

    def stereo():
        from depthstudio.render.stereo import StereoSettings
        return StereoSettings

    def video():
        from depthstudio.video.pipeline import VideoSettings
        return VideoSettings

    return [model, depth, camera, mapping, mesh, export, depth_output, outputs, parallax, dof, stereo, video]


def section_classes() -> dict[str, type]:
    """{section: settings class} of every stage whose core module is installed."""
    out = {}
    for factory in _classes():
        try:
            cls = factory()
        except ImportError:  # an extra that is not installed: the window hides what depends on it
            continue
        out[cls.section] = cls
    return out


def default_sections() -> dict[str, Settings]:
    return {name: cls() for name, cls in section_classes().items()}


def _replace_dotted(obj, parts: list[str], value):
    if len(parts) == 1:
        return dataclasses.replace(obj, **{parts[0]: value})
    inner = getattr(obj, parts[0])
    return dataclasses.replace(obj, **{parts[0]: _replace_dotted(inner, parts[1:], value)})


def flat(settings: Settings) -> dict[str, Any]:
    """{"name" or "nested.name": value} of every setting field."""
    return {name: value for name, _, value in iter_settings(settings)}


@dataclass
class PhotoItem:
    """One photo of the list and what the pipeline knows about it so far."""

    path: Path
    photo: Any = None  # depthstudio.io.images.Photo once loaded
    depth: Any = None  # depthstudio.depthmap.DepthMap once estimated (or read from a file)
    depth_key: tuple | None = None  # what the cached depth was made with
    own: dict = field(default_factory=dict)  # this photo's PER_PHOTO values: {section: {name: value}}
    error: str | None = None
    status: str = "new"  # new | loading | loaded | estimating | ready | failed
    extras: dict = field(default_factory=dict)  # display copies the views keep (preview, thumbnail)

    @property
    def name(self) -> str:
        return self.path.name


class Document:
    """Photos plus settings; emits events when either changes."""

    def __init__(self, sections: dict[str, Settings] | None = None) -> None:
        self.items: list[PhotoItem] = []
        self.current_index: int = -1
        self.sections: dict[str, Settings] = sections if sections is not None else default_sections()
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
        key = os.path.abspath(path)  # no file-system calls: this runs on the UI thread for every item
        for i, item in enumerate(self.items):
            if os.path.abspath(item.path) == key:
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
        was_current = index == self.current_index
        if was_current:
            self._stash()
        del self.items[index]
        if index < self.current_index:
            self.current_index -= 1
        elif was_current:
            self.current_index = -1
            self.items_changed.emit()
            self.set_current(min(index, len(self.items) - 1))
            return
        self.items_changed.emit()

    def set_current(self, index: int) -> None:
        index = int(index) if 0 <= index < len(self.items) else -1
        if index == self.current_index:
            return
        self._stash()
        self.current_index = index
        self._unstash()
        self.current_changed.emit(index)

    def notify(self, item: PhotoItem, what: str) -> None:
        self.item_changed.emit(item, what)

    # ---- per-photo values -------------------------------------------------------------------------
    def _stash(self) -> None:
        item = self.current
        if item is not None:
            item.own = {sec: {n: getattr(self.sections[sec], n) for n in names}
                        for sec, names in PER_PHOTO.items() if sec in self.sections}

    def _unstash(self) -> None:
        item = self.current
        own = item.own if item is not None else {}
        for sec, names in PER_PHOTO.items():
            if sec not in self.sections:
                continue
            defaults = type(self.sections[sec])()
            values = {n: own.get(sec, {}).get(n, getattr(defaults, n)) for n in names}
            self.sections[sec] = dataclasses.replace(self.sections[sec], **values)

    def own_settings(self, item: PhotoItem, section: str) -> Settings:
        """``section`` as it applies to ``item`` (its own per-photo values)."""
        settings = self.sections[section]
        if item is self.current or section not in PER_PHOTO:
            return settings
        defaults = type(settings)()
        values = {n: item.own.get(section, {}).get(n, getattr(defaults, n)) for n in PER_PHOTO[section]}
        return dataclasses.replace(settings, **values)

    def sections_for(self, item: PhotoItem) -> dict[str, Settings]:
        return {name: self.own_settings(item, name) for name in self.sections}

    def set_own(self, item: PhotoItem, section: str, **values) -> None:
        """Set per-photo values of ``item`` (of the sections shown, when it is the current photo)."""
        if item is self.current:
            for name, value in values.items():
                self.set(section, name, value)
        else:
            item.own.setdefault(section, {}).update(values)

    # ---- settings -----------------------------------------------------------------------------
    def get(self, section: str, name: str):
        """A setting's value; ``name`` may be dotted for nested settings ("path.preset")."""
        value: Any = self.sections[section]
        for part in name.split("."):
            value = getattr(value, part)
        return value

    def updated(self, section: str, name: str, value) -> Settings:
        """The section with one field changed and validated; raises SettingsError on bad values."""
        try:
            return _replace_dotted(self.sections[section], name.split("."), value).validate()
        except SettingsError:
            raise
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{section} {name.replace('_', ' ')}: {exc}") from None

    def set(self, section: str, name: str, value) -> None:
        """Change one setting; the section's own validation runs (SettingsError on bad values)."""
        if self.get(section, name) == value:
            return
        self.sections[section] = self.updated(section, name, value)
        self.settings_changed.emit(section, name, self.get(section, name))

    def replace_section(self, section: str, settings: Settings) -> None:
        old = flat(self.sections[section])
        self.sections[section] = settings.validate()
        for name, value in flat(settings).items():
            if old.get(name) != value:
                self.settings_changed.emit(section, name, value)

    def depth_key(self, item: PhotoItem | None = None) -> tuple:
        """What the cached depth of a photo depends on: its depth file and kind, or the model settings."""
        item = item or self.current
        files = self.own_settings(item, "depth") if item is not None else self.sections["depth"]
        if files.depth is not None:  # type: ignore[attr-defined]
            return ("file", str(files.depth), files.depth_kind)  # type: ignore[attr-defined]
        return self.sections["model"].key()  # type: ignore[attr-defined]

    def needs_depth(self, item: PhotoItem) -> bool:
        return item.depth is None or item.depth_key != self.depth_key(item)

    # ---- persistence --------------------------------------------------------------------------
    def settings_dict(self, session: bool = True) -> dict:
        """{section: to_dict()}; ``session`` leaves out the per-photo fields (they are not defaults)."""
        out = {}
        for name, settings in self.sections.items():
            data = settings.to_dict()
            if session:
                for field_name in PER_PHOTO.get(name, ()):
                    data.pop(field_name, None)
            out[name] = data
        return out

    def load_settings_dict(self, data: dict, per_photo: bool = False) -> list[str]:
        """Apply saved sections (``Settings.from_dict``); a section that no longer validates is skipped
        and named in the returned problems. Per-photo fields apply only when ``per_photo``."""
        problems = []
        for section, values in (data or {}).items():
            if section not in self.sections or not isinstance(values, dict):
                continue
            values = dict(values)
            if not per_photo:
                for name in PER_PHOTO.get(section, ()):
                    values.pop(name, None)
            current = self.sections[section]
            merged = {**{k: v for k, v in current.to_dict().items()}, **values}
            try:
                settings = type(current).from_dict(merged)
            except (SettingsError, TypeError, ValueError) as exc:  # stale or hand-edited: keep the window going
                problems.append(f"{section}: {exc}")
                continue
            self.replace_section(section, settings)
        return problems
