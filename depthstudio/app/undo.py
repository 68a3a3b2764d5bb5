"""Undo/redo of settings changes (QUndoStack); consecutive edits of one field merge into one step."""
from __future__ import annotations

import time

from PySide6.QtGui import QUndoCommand

_IDS: dict[tuple[str, str], int] = {}
MERGE_SECONDS = 1.0


def _command_id(section: str, name: str) -> int:
    return _IDS.setdefault((section, name), 1000 + len(_IDS))


class SetSetting(QUndoCommand):
    """Set document.sections[section].name; undo puts the old value back."""

    def __init__(self, document, section: str, name: str, value, label: str | None = None) -> None:
        super().__init__(f"Change {label or name.replace('_', ' ')}")
        self.document = document
        self.section = section
        self.name = name
        self.old = document.get(section, name)
        self.new = value
        self.stamp = time.monotonic()

    def id(self) -> int:
        return _command_id(self.section, self.name)

    def redo(self) -> None:
        self.document.set(self.section, self.name, self.new)

    def undo(self) -> None:
        self.document.set(self.section, self.name, self.old)

    def mergeWith(self, other) -> bool:
        # a spin box dragged through twenty values is one undo step
        if not isinstance(other, SetSetting) or (other.section, other.name) != (self.section, self.name):
            return False
        if other.stamp - self.stamp > MERGE_SECONDS:
            return False
        self.new = other.new
        self.stamp = other.stamp
        return True


class SetSection(QUndoCommand):
    """Replace a whole settings section (a loaded settings file, a reset); undo puts the old one back."""

    def __init__(self, document, section: str, settings, label: str = "") -> None:
        super().__init__(label or f"Change {section} settings")
        self.document = document
        self.section = section
        self.old = document.sections[section]
        self.new = settings

    def redo(self) -> None:
        self.document.replace_section(self.section, self.new)

    def undo(self) -> None:
        self.document.replace_section(self.section, self.old)
