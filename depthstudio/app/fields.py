"""Editors for settings fields, generated from the core's field metadata (depthstudio.settings.specs).

Label, unit, range, step, decimals, choices and the "auto" text all come from the field's
:class:`~depthstudio.settings.Spec`; nothing here defines a default or a range of its own. An
optional field (None = automatic) gets an "Auto" box; while it is on, the editor shows what the
automatic value resolved to, or the core's description of it ("EXIF, model or 60").

Spin boxes and combo boxes only take the mouse wheel once they have keyboard focus, so scrolling
the settings panel never changes a setting.
"""
from __future__ import annotations

import math
from pathlib import Path

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

from depthstudio.settings import FieldInfo

#: Shown units: the core's unit names as a spin box suffix.
UNIT_SUFFIX = {"deg": "°", "scene units": "", "samples": "× MSAA"}
#: Widest range a spin box offers where the field has no bound of its own.
OPEN_BOUND = 1e9


class _WheelNeedsFocus:
    """Mixin: the wheel over an unfocused editor scrolls the panel instead of changing the value."""

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.hasFocus():
            super().wheelEvent(event)  # type: ignore[misc]
        else:
            event.ignore()


class SpinBox(_WheelNeedsFocus, QSpinBox):
    pass


class DoubleSpinBox(_WheelNeedsFocus, QDoubleSpinBox):
    pass


class ComboBox(_WheelNeedsFocus, QComboBox):
    pass


def _for_editor(widget: QWidget) -> QWidget:
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # focus by click or Tab, never by the wheel
    return widget


def kind_of(fi: FieldInfo) -> str | None:
    """How a field is edited: bool, int, float, choice, multi, path, text; None: not in the panels."""
    s = fi.spec
    if s.multiple:
        return "multi"
    if s.choices is not None:
        return "choice"
    if fi.type is bool:
        return "bool"
    if fi.type is int:
        return "int"
    if fi.type is float:
        return "float"
    if fi.type is Path:
        return "path"
    if fi.type is str:
        return "text"
    if fi.type is tuple and s.parse is not None and s.show is not None:
        return "text"  # sizes and points typed as the command line takes them ("1920x1080")
    return None  # vectors without a text form (a colour): set elsewhere


def tooltip(fi: FieldInfo) -> str:
    s = fi.spec
    parts = [s.help[:1].upper() + s.help[1:] if s.help else s.label]
    rng = s.range_text()
    if rng:
        parts.append(f"Range: {rng}{' ' + s.unit if s.unit else ''}")
    if s.auto:
        parts.append(f"Auto: {s.auto}")
    if s.flag != "":
        parts.append(f"Command line: {fi.flag}")
    return "\n".join(parts)


class FieldEditor(QWidget):
    """One field's editor; emits ``edited(name, value)`` with the new value (None = Auto)."""

    edited = Signal(str, object)

    def __init__(self, name: str, fi: FieldInfo, suggestions: tuple = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.info = fi
        self.kind = kind_of(fi)
        self.suggestions = tuple(suggestions)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.auto: QCheckBox | None = None
        self._placeholder = None
        self.widget = self._make_widget()
        self.widget.setToolTip(tooltip(fi))
        layout.addWidget(self.widget, 1)
        if fi.optional and self.kind in ("float", "int", "multi"):
            self.auto = QCheckBox("Auto")
            self.auto.setToolTip(f"Auto: {fi.spec.auto or 'DepthStudio chooses'}")
            self.auto.toggled.connect(self._auto_toggled)
            layout.addWidget(self.auto)
        self._last: object = object()

    @property
    def label(self) -> str:
        return self.info.spec.label

    # ---- widgets ----------------------------------------------------------------------------------
    def _bounds(self) -> tuple[float, float, int, float]:
        s, integer = self.info.spec, self.kind == "int"
        decimals = 0 if integer else (s.decimals if s.decimals is not None else 2)
        tiny = 1 if integer else 10.0 ** -decimals
        lo = -OPEN_BOUND if s.minimum is None else s.minimum + (tiny if s.min_exclusive else 0)
        hi = OPEN_BOUND if s.maximum is None else s.maximum - (tiny if s.max_exclusive else 0)
        span = max(abs(hi - lo), 1e-9)
        step = s.step if s.step is not None else (1 if integer else max(tiny, 10.0 ** (math.floor(math.log10(span)) - 2)))
        if s.step is None and not integer and hi - lo > 1e6:
            step = 1.0
        return lo, hi, decimals, step

    def _make_widget(self) -> QWidget:
        s, kind = self.info.spec, self.kind
        if kind in ("float", "int"):
            lo, hi, decimals, step = self._bounds()
            if kind == "int":
                w: QWidget = SpinBox()
                w.setRange(int(max(lo, -(2**31) + 2)), int(min(hi, 2**31 - 1)))
                w.setSingleStep(int(max(1, step)))
                w.valueChanged.connect(lambda v: self._emit(int(v)))
            else:
                w = DoubleSpinBox()
                w.setDecimals(decimals)
                w.setRange(lo, hi)
                w.setSingleStep(step)
                w.valueChanged.connect(lambda v: self._emit(float(v)))
            unit = UNIT_SUFFIX.get(s.unit, s.unit)
            if unit:
                w.setSuffix(unit if unit.startswith(("°", "×")) else " " + unit)
            w.setKeyboardTracking(False)
            if self.info.optional:
                # one step below the range shows the core's description of Auto, never a number
                w.setMinimum(w.minimum() - w.singleStep())
                w.setSpecialValueText(f"auto: {s.auto}" if s.auto else "auto")
            return _for_editor(w)
        if kind == "bool":
            w = QCheckBox()
            w.toggled.connect(lambda v: self._emit(bool(v)))
            return w
        if kind == "choice":
            w = ComboBox()
            if self.info.optional:
                w.addItem(f"Auto ({s.auto})" if s.auto else "Auto", None)
            for choice in s.choices or ():
                w.addItem(str(choice).replace("_", " "), choice)
            w.currentIndexChanged.connect(lambda i: self._emit(w.itemData(i)))
            return _for_editor(w)
        if kind == "multi":
            w = QWidget()
            row = QHBoxLayout(w)
            row.setContentsMargins(0, 0, 0, 0)
            self.boxes = {}
            for choice in s.choices or ():
                box = QCheckBox(str(choice).upper())
                box.toggled.connect(lambda _=False: self._emit(self._widget_value()))
                row.addWidget(box)
                self.boxes[choice] = box
            row.addStretch(1)
            return w
        if kind == "text" and self.suggestions:
            w = ComboBox()
            w.setEditable(True)
            for choice in self.suggestions:
                w.addItem(str(choice), choice)
            w.activated.connect(lambda i: self._emit(w.itemData(i) if w.itemText(i) == w.currentText() else w.currentText()))
            w.lineEdit().editingFinished.connect(lambda: self._emit(w.currentText().strip()))
            return _for_editor(w)
        # path or text
        w = QWidget()
        row = QHBoxLayout(w)
        row.setContentsMargins(0, 0, 0, 0)
        self.line = QLineEdit()
        if s.auto:
            self.line.setPlaceholderText(f"auto: {s.auto}")
        self.line.editingFinished.connect(lambda: self._emit(self._widget_value()))
        row.addWidget(self.line, 1)
        if kind == "path":
            browse = QToolButton()
            browse.setText("…")
            browse.setToolTip(f"Choose the {s.label.lower()}")
            browse.clicked.connect(self._browse)
            row.addWidget(browse)
        return w

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.info.spec.label, self.line.text())
        if folder:
            self.line.setText(folder)
            self._emit(self._widget_value())

    # ---- values -----------------------------------------------------------------------------------
    def _auto_on(self) -> bool:
        return self.auto is not None and self.auto.isChecked()

    def _auto_toggled(self, on: bool) -> None:
        self.widget.setEnabled(not on)
        if on:
            self._emit(None)
            return
        # leaving Auto starts from what Auto resolved to (never from the special "auto" value)
        start = self._placeholder
        if self.kind in ("float", "int"):
            w = self.widget
            if start is None:
                s = self.info.spec
                start = s.minimum if s.minimum is not None and not s.min_exclusive else w.minimum() + 2 * w.singleStep()
            w.blockSignals(True)
            w.setValue(max(w.minimum() + w.singleStep(), start))
            w.blockSignals(False)
        self._emit(self._widget_value())

    def _widget_value(self):
        kind, w = self.kind, self.widget
        if kind in ("float", "int"):
            if self.info.optional and w.value() <= w.minimum():
                return None
            return int(w.value()) if kind == "int" else float(w.value())
        if kind == "bool":
            return bool(w.isChecked())
        if kind == "choice":
            return w.currentData()
        if kind == "multi":
            if self._auto_on():
                return None
            return tuple(c for c, b in self.boxes.items() if b.isChecked())
        if kind == "text" and self.suggestions:
            return w.currentText().strip() or None
        text = self.line.text().strip()
        if not text:
            return None if self.info.optional else ""
        if kind == "path":
            return Path(text)
        if self.info.spec.parse is not None:
            try:
                return self.info.spec.parse(text)
            except Exception:
                return text  # the document's validation names the problem
        return text

    def _emit(self, value) -> None:
        if self._auto_on() and value is not None:
            return
        if value != self._last:
            self._last = value
            self.edited.emit(self.name, value)

    def set_value(self, value) -> None:
        """Show ``value`` without emitting."""
        self._last = value
        blockers = [self.widget] + ([self.auto] if self.auto else []) + list(getattr(self, "boxes", {}).values())
        for b in blockers:
            b.blockSignals(True)
        try:
            if self.auto is not None:
                self.auto.setChecked(value is None)
                self.widget.setEnabled(value is not None)
            kind, w = self.kind, self.widget
            if kind in ("float", "int"):
                shown = value if value is not None else self._placeholder
                if shown is None or (isinstance(shown, float) and not math.isfinite(shown)):
                    w.setValue(w.minimum())  # shows the "auto: ..." text
                else:
                    w.setValue(shown)
            elif kind == "bool":
                w.setChecked(bool(value))
            elif kind == "choice":
                index = w.findData(value)
                w.setCurrentIndex(max(0, index))
            elif kind == "multi":
                shown = value if value is not None else (self._placeholder or ())
                for choice, box in self.boxes.items():
                    box.setChecked(choice in shown)
                    box.setEnabled(value is not None)
            elif kind == "text" and self.suggestions:
                index = w.findData(value)
                if index >= 0:
                    w.setCurrentIndex(index)
                else:
                    w.setEditText("" if value is None else str(value))
            else:
                show = self.info.spec.show
                text = "" if value is None else (show(value) if show is not None and not isinstance(value, str) else str(value))
                self.line.setText(text)
        finally:
            for b in blockers:
                b.blockSignals(False)

    def set_placeholder(self, value) -> None:
        """What Auto resolves to for the current photo (None: unknown, e.g. no photo yet)."""
        self._placeholder = value
        if self._auto_on() or (self.auto is None and self.info.optional and self._last is None):
            self.set_value(None)

    def value(self):
        return self._widget_value()


__all__ = ["FieldEditor", "kind_of", "tooltip"]
