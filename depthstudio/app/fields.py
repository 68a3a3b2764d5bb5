"""Editors for settings fields, built from the core's dataclasses (type hints + a few hints here)."""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)


@dataclass
class FieldSpec:
    """How one settings field is edited."""

    name: str
    label: str = ""
    kind: str = "float"  # float | int | bool | choice | text | folder | multi
    minimum: float = 0.0
    maximum: float = 1e6
    step: float = 0.1
    decimals: int = 2
    suffix: str = ""
    choices: tuple = ()
    optional: bool = False  # None allowed: shown as "Auto"
    tooltip: str = ""
    auto_text: str = "Auto"

    def __post_init__(self) -> None:
        if not self.label:
            self.label = self.name.replace("_", " ").capitalize()


def _unwrap_optional(hint):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def specs_for(settings_cls, hints: dict[str, dict] | None = None, skip: tuple = (), prefix: str = "") -> list[FieldSpec]:
    """FieldSpecs for every field of a dataclass (nested ones with dotted names), from its type
    hints, overridden by ``hints``."""
    hints = hints or {}
    try:
        types_ = typing.get_type_hints(settings_cls)
    except Exception:
        types_ = {}
    specs = []
    for f in dataclasses.fields(settings_cls):
        name = prefix + f.name
        if name in skip or f.name.startswith("_"):
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        if dataclasses.is_dataclass(default) and not isinstance(default, type):
            specs += specs_for(type(default), hints, skip, prefix=name + ".")
            continue
        hint, optional = _unwrap_optional(types_.get(f.name, type(default)))
        kind = "text"
        choices: tuple = ()
        if typing.get_origin(hint) is typing.Literal:
            kind, choices = "choice", tuple(typing.get_args(hint))
        elif hint is bool:
            kind = "bool"
        elif hint is int:
            kind = "int"
        elif hint is float:
            kind = "float"
        elif isinstance(default, bool):
            kind = "bool"
        elif isinstance(default, int):
            kind = "int"
        elif isinstance(default, float):
            kind = "float"
        elif typing.get_origin(hint) is tuple or isinstance(default, tuple):
            if name not in hints:
                continue  # vectors (a focus point, say) are set from the views, not typed in
        options = {"kind": kind, "choices": choices, "optional": optional or default is None}
        if kind == "int":
            options.update(minimum=0, maximum=10**9, step=1, decimals=0)
        options.update(hints.get(name, {}))
        if options.get("hidden"):
            continue
        options.pop("hidden", None)
        label = options.pop("label", None) or f.name.replace("_", " ").capitalize()
        specs.append(FieldSpec(name=name, label=label, **options))
    return specs


class FieldEditor(QWidget):
    """One field: a value widget, plus an "Auto" box where None is allowed."""

    edited = Signal(str, object)  # field name, new value

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.auto: QCheckBox | None = None
        self.widget = self._make_widget(spec)
        self.widget.setToolTip(spec.tooltip)
        layout.addWidget(self.widget, 1)
        if spec.optional and spec.kind in ("float", "int", "choice", "text"):
            self.auto = QCheckBox(spec.auto_text)
            self.auto.setToolTip(f"Leave {spec.label.lower()} to DepthStudio (EXIF, the model, or the default)")
            self.auto.toggled.connect(self._auto_toggled)
            layout.addWidget(self.auto)
        self._last = None

    def _make_widget(self, spec: FieldSpec) -> QWidget:
        if spec.kind == "float":
            w = QDoubleSpinBox()
            w.setRange(spec.minimum, spec.maximum)
            w.setSingleStep(spec.step)
            w.setDecimals(spec.decimals)
            w.setSuffix(spec.suffix)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v: self._emit(float(v)))
        elif spec.kind == "int":
            w = QSpinBox()
            w.setRange(int(spec.minimum), int(min(spec.maximum, 2**31 - 1)))
            w.setSingleStep(int(max(1, spec.step)))
            w.setSuffix(spec.suffix)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v: self._emit(int(v)))
        elif spec.kind == "bool":
            w = QCheckBox()
            w.toggled.connect(lambda v: self._emit(bool(v)))
        elif spec.kind == "choice":
            w = QComboBox()
            for choice in spec.choices:
                w.addItem(str(choice).replace("_", " "), choice)
            w.currentIndexChanged.connect(lambda i: self._emit(w.itemData(i)))
        elif spec.kind == "folder":
            w = QWidget()
            row = QHBoxLayout(w)
            row.setContentsMargins(0, 0, 0, 0)
            self.line = QLineEdit()
            self.line.setPlaceholderText("next to each photo")
            self.line.editingFinished.connect(lambda: self._emit(self.line.text().strip()))
            browse = QToolButton()
            browse.setText("…")
            browse.setToolTip("Choose a folder")
            browse.clicked.connect(self._browse)
            row.addWidget(self.line, 1)
            row.addWidget(browse)
        else:
            w = QLineEdit()
            w.editingFinished.connect(lambda: self._emit(w.text().strip()))
        return w

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.spec.label, self.line.text())
        if folder:
            self.line.setText(folder)
            self._emit(folder)

    def _auto_toggled(self, on: bool) -> None:
        self.widget.setEnabled(not on)
        self._emit(None if on else self._widget_value())

    def _widget_value(self):
        w, kind = self.widget, self.spec.kind
        if kind == "float":
            return float(w.value())
        if kind == "int":
            return int(w.value())
        if kind == "bool":
            return bool(w.isChecked())
        if kind == "choice":
            return w.currentData()
        if kind == "folder":
            return self.line.text().strip()
        return w.text().strip()

    def _emit(self, value) -> None:
        if self.auto is not None and self.auto.isChecked() and value is not None:
            return
        if value != self._last:
            self._last = value
            self.edited.emit(self.spec.name, value)

    def set_value(self, value, placeholder=None) -> None:
        """Show ``value`` without emitting; ``placeholder`` is what Auto currently resolves to."""
        self._last = value
        blockers = [self.widget] + ([self.auto] if self.auto else [])
        for b in blockers:
            b.blockSignals(True)
        try:
            if self.auto is not None:
                self.auto.setChecked(value is None)
                self.widget.setEnabled(value is not None)
            shown = value if value is not None else placeholder
            kind = self.spec.kind
            if kind in ("float", "int") and shown is not None and not (isinstance(shown, float) and math.isnan(shown)):
                self.widget.setValue(shown)
            elif kind == "bool":
                self.widget.setChecked(bool(value))
            elif kind == "choice":
                index = self.widget.findData(shown)
                if index >= 0:
                    self.widget.setCurrentIndex(index)
            elif kind == "folder":
                self.line.setText(str(value or ""))
            elif kind == "text":
                self.widget.setText("" if shown is None else str(shown))
        finally:
            for b in blockers:
                b.blockSignals(False)

    def set_auto_placeholder(self, value) -> None:
        """While on Auto, show what the automatic value resolved to (greyed out)."""
        if self.auto is not None and self.auto.isChecked() and value is not None:
            self.widget.blockSignals(True)
            try:
                if self.spec.kind in ("float", "int"):
                    self.widget.setValue(value)
            finally:
                self.widget.blockSignals(False)


class FormatsEditor(QWidget):
    """Checkboxes for a tuple of choices (export formats)."""

    edited = Signal(str, object)

    def __init__(self, name: str, choices: tuple, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.boxes: dict[str, QCheckBox] = {}
        for choice in choices:
            box = QCheckBox(choice.upper())
            box.toggled.connect(self._changed)
            layout.addWidget(box)
            self.boxes[choice] = box
        layout.addStretch(1)

    def _changed(self) -> None:
        self.edited.emit(self.name, tuple(c for c, b in self.boxes.items() if b.isChecked()))

    def set_value(self, value, placeholder=None) -> None:
        for choice, box in self.boxes.items():
            box.blockSignals(True)
            box.setChecked(choice in (value or ()))
            box.blockSignals(False)


__all__ = ["FieldSpec", "FieldEditor", "FormatsEditor", "specs_for", "Qt"]
