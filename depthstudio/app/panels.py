"""The settings panels: one group per stage, generated from the core's settings classes.

This file only says which sections a panel shows, in which order, and which fields live
elsewhere (set from a view, or not meant for the window); every label, range, default, unit and
choice comes from the field's metadata (depthstudio.settings), through depthstudio.app.fields.
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from depthstudio.app import core
from depthstudio.app.document import Document
from depthstudio.app.fields import ComboBox, FieldEditor, kind_of
from depthstudio.settings import FieldInfo, info, nested_fields, specs

#: (title, [(section, fields left out of the panel)]) in the order the dock shows them.
PANELS: list[tuple[str, list[tuple[str, tuple[str, ...]]]]] = [
    ("Model", [("model", ("model",))]),  # the model row is the catalogue picker below
    ("Depth file", [("depth", ("depth",))]),  # the file row has Choose / Use model buttons
    ("Camera", [("camera", ())]),
    ("Depth mapping", [("mapping", ())]),
    ("Mesh", [("mesh", ())]),
    ("Parallax", [("parallax", ("size",))]),  # the preview draws at the view's size
    ("Depth of field", [("dof", ("focus_point", "preview"))]),  # focus is clicked on the preview
    ("Stereo", [("stereo", ("render.path", "render.fps"))]),  # the eyes' track is the rig, not a camera move
    ("Export", [("outputs", ()), ("export", ()), ("depth_output", ())]),
]

#: Free-text fields offered with the core's list of names (a preset, or a keyframe .json path).
SUGGESTIONS: dict[tuple[str, str], Callable[[], list]] = {}


def _preset_names() -> list:
    from depthstudio.render.camera_path import preset_names

    return preset_names()


SUGGESTIONS[("parallax", "path.preset")] = _preset_names


def fields_of(cls: type, prefix: str = "") -> list[tuple[str, FieldInfo]]:
    """(dotted name, FieldInfo) of every field a panel can edit, nested settings included."""
    out = [(prefix + fi.name, fi) for fi in specs(cls) if kind_of(fi) is not None]
    defaults = cls()
    for name, inner in nested_fields(cls):
        if getattr(defaults, name) is not None:  # an optional stage that is off by default is not a panel row
            out += fields_of(inner, f"{prefix}{name}.")
    return out


def label_for(document: Document, section: str, name: str) -> str:
    """The field's label (for undo steps and messages)."""
    cls: type = type(document.sections[section])
    parts = name.split(".")
    for part in parts[:-1]:
        cls = dict(nested_fields(cls))[part]
    return info(cls, parts[-1]).spec.label


class SectionPanel(QGroupBox):
    """A group of field editors for one or more settings sections."""

    def __init__(self, document: Document, title: str, parts: list[tuple[str, tuple[str, ...]]], change: Callable,
                 parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.document = document
        self.parts = [(s, hide) for s, hide in parts if s in document.sections]
        self.section = self.parts[0][0]
        self.change = change
        self.form = QFormLayout(self)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.editors: dict[tuple[str, str], FieldEditor] = {}
        self._advanced_rows: list[QWidget] = []
        self.build()
        self.message = QLabel()
        self.message.setObjectName("panelMessage")
        self.message.setWordWrap(True)
        self.message.hide()
        self.form.addRow(self.message)
        document.settings_changed.connect(self._on_changed)
        document.current_changed.connect(self._photo_changed)
        self.refresh()

    def build(self) -> None:
        for section, hide in self.parts:
            self.add_fields(section, hide)
        if self._advanced_rows:
            toggle = QToolButton()
            toggle.setObjectName("advancedToggle")
            toggle.setText("Advanced")
            toggle.setCheckable(True)
            toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            toggle.setArrowType(Qt.ArrowType.RightArrow)
            toggle.toggled.connect(self.show_advanced)
            self.advanced_toggle = toggle
            self.form.addRow(toggle)
            self.show_advanced(False)

    def add_fields(self, section: str, hide: tuple[str, ...] = ()) -> None:
        for name, fi in fields_of(type(self.document.sections[section])):
            if name in hide or any(name.startswith(h + ".") for h in hide):  # a nested section hides whole
                continue
            suggest = SUGGESTIONS.get((section, name))
            editor = FieldEditor(name, fi, tuple(suggest()) if suggest else ())
            editor.edited.connect(lambda n, v, s=section: self._edited(s, n, v))
            self.editors[(section, name)] = editor
            label = QLabel(fi.spec.label)
            label.setToolTip(editor.widget.toolTip())
            self.form.addRow(label, editor)
            if fi.spec.advanced:
                self._advanced_rows.append(editor)

    def show_advanced(self, on: bool) -> None:
        for editor in self._advanced_rows:
            self.form.setRowVisible(editor, on)
        if hasattr(self, "advanced_toggle"):
            self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def editor(self, name: str, section: str | None = None) -> FieldEditor:
        return self.editors[(section or self.section, name)]

    def _edited(self, section: str, name: str, value) -> None:
        error = self.change(section, name, value)
        self.show_message(error)
        if error:
            self.refresh()

    def show_message(self, text: str | None) -> None:
        self.message.setText(text or "")
        self.message.setVisible(bool(text))

    def refresh(self) -> None:
        for (section, name), editor in self.editors.items():
            editor.set_value(self.document.get(section, name))

    def _photo_changed(self, _index: int) -> None:
        """Another photo: only its own (per-photo) values change."""
        from depthstudio.app.document import PER_PHOTO

        for (section, name), editor in self.editors.items():
            if name in PER_PHOTO.get(section, ()):
                editor.set_value(self.document.get(section, name))

    def _on_changed(self, section: str, name: str, value) -> None:
        editor = self.editors.get((section, name))
        if editor is not None:
            editor.set_value(value)
            self.show_message(None)


class MappingPanel(SectionPanel):
    """Near/far apply to relative depth only; metric depth passes through in metres."""

    def show_kind(self, kind: str | None) -> None:
        metric = kind == "metric"
        for editor in self.editors.values():
            editor.setEnabled(not metric)
        self.setTitle("Depth mapping" + ("  (metric depth: metres, no mapping)" if metric else ""))


CAMERA_SOURCES = {"flags": "your settings", "exif-35mm": "EXIF (35 mm equivalent)",
                  "exif-sensor": "EXIF (focal length + sensor)", "model": "the model's estimate",
                  "default": "default (60° FoV)"}


class CameraPanel(SectionPanel):
    """Camera fields plus where the focal length came from; Auto fields show the resolved values."""

    NO_PHOTO = "Open a photo to see its camera"

    def build(self) -> None:
        super().build()
        self.source = QLabel(self.NO_PHOTO)
        self.source.setObjectName("cameraSource")
        self.source.setWordWrap(True)
        self.form.addRow("Source", self.source)

    def show_intrinsics(self, k) -> None:
        values = {}
        if k is None:
            self.source.setText(self.NO_PHOTO)
        else:
            self.source.setText(f"{CAMERA_SOURCES.get(k.source, k.source)}: {k.hfov_deg:.1f}° FoV, "
                                f"{k.focal_35mm:.0f} mm equiv., fx {k.fx:.0f} px")
            values = {"fov_deg": k.hfov_deg, "focal_mm": k.focal_35mm, "fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy}
        for (_section, name), editor in self.editors.items():
            editor.set_placeholder(values.get(name))


class DofPanel(SectionPanel):
    """Depth of field; the lens focal length on Auto shows the photo's."""

    def show_intrinsics(self, k) -> None:
        self.editor("focal_mm").set_placeholder(None if k is None else k.focal_35mm)


class ExportPanel(SectionPanel):
    """What Export writes; the formats on Auto show what Auto means for the mesh settings."""

    def refresh(self) -> None:
        super().refresh()
        editor = self.editors.get(("export", "formats"))
        if editor is not None and "mesh" in self.document.sections:
            editor.set_placeholder(self.document.sections["export"].resolved(self.document.sections["mesh"].points))

    def _on_changed(self, section: str, name: str, value) -> None:
        super()._on_changed(section, name, value)
        if section == "mesh" and name == "points":
            self.refresh()


class ModelPanel(SectionPanel):
    """The model catalogue with licences, the backend, input size, and the weights' state."""

    download_requested = Signal(str, str)  # model name, backend

    def build(self) -> None:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combo = ComboBox()
        self.combo.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.setMinimumContentsLength(12)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        for model in core.model_catalogue():
            self.combo.addItem(f"{model.name}  ({model.size_label}, {model.licence})", model.name)
            self.combo.setItemData(self.combo.count() - 1,
                                   f"{model.family}\noutputs: {', '.join(model.outputs)}; licence {model.licence}\n"
                                   f"input: {model.input_rule}\nbackends: {', '.join(model.backends)}; "
                                   f"weights: {model.hf_repo or model.onnx_repo}",
                                   Qt.ItemDataRole.ToolTipRole)
        self.combo.currentIndexChanged.connect(lambda i: self._edited("model", "model", self.combo.itemData(i)))
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Use a local model: a .onnx file or a transformers folder")
        browse.clicked.connect(self.browse)
        layout.addWidget(self.combo, 1)
        layout.addWidget(browse)
        model_info = info(type(self.document.sections["model"]), "model")
        label = QLabel(model_info.spec.label)
        label.setToolTip(model_info.spec.help)
        self.form.addRow(label, row)
        self.info = QLabel()
        self.info.setObjectName("modelInfo")
        self.info.setWordWrap(True)
        self.form.addRow("", self.info)
        super().build()
        status = QWidget()
        srow = QHBoxLayout(status)
        srow.setContentsMargins(0, 0, 0, 0)
        self.status = QLabel()
        self.download = QPushButton("Download")
        self.download.setToolTip("Fetch the weights into the local Hugging Face cache")
        self.download.clicked.connect(self._download)
        srow.addWidget(self.status, 1)
        srow.addWidget(self.download)
        self.form.addRow("Weights", status)

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model: an ONNX file", "", "ONNX models (*.onnx);;All files (*)")
        if not path:
            path = QFileDialog.getExistingDirectory(self, "…or a transformers folder (config.json + model.safetensors)")
        if path:
            self._edited("model", "model", path)

    def _download(self) -> None:
        self.download_requested.emit(self.document.get("model", "model"), self.document.get("model", "backend"))

    def set_downloading(self, busy: bool, message: str = "") -> None:
        self.download.setEnabled(not busy)
        if message:
            self.status.setText(message)

    def refresh(self) -> None:
        super().refresh()
        settings = self.document.sections["model"]
        name = settings.model  # type: ignore[attr-defined]
        self.combo.blockSignals(True)
        index = self.combo.findData(name)
        if index < 0:
            self.combo.addItem(f"{name}  (local)", name)
            index = self.combo.count() - 1
        self.combo.setCurrentIndex(index)
        self.combo.blockSignals(False)
        model = core.model_info(name)
        if model is None:
            self.info.setText("Local model file or folder; its licence is the one it came with.")
            self.status.setText("on disk")
            self.download.hide()
            return
        self.info.setText(f"{model.family} · {', '.join(model.outputs)} · licence <b>{model.licence}</b>")
        self.info.setToolTip(f"input: {model.input_rule}; backends: {', '.join(model.backends)}")
        have = core.weights_missing(settings) is None
        self.status.setText("downloaded" if have else "not downloaded")
        self.download.setVisible(not have)

    def _on_changed(self, section: str, name: str, value) -> None:
        if section == "model":
            self.refresh()
            self.show_message(None)


class DepthFilePanel(SectionPanel):
    """Depth the user brings for the current photo (phone depth, LiDAR, a render's Z pass) instead of the model."""

    choose_requested = Signal()
    clear_requested = Signal()

    def build(self) -> None:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        self.file_label = QLabel()
        self.file_label.setWordWrap(True)
        choose = QPushButton("Choose…")
        choose.setToolTip("Use a depth map (PNG, EXR, TIFF, NPY) for the current photo")
        choose.clicked.connect(self.choose_requested)
        self.clear = QPushButton("Use model")
        self.clear.clicked.connect(self.clear_requested)
        layout.addWidget(self.file_label, 1)
        layout.addWidget(choose)
        layout.addWidget(self.clear)
        spec = info(type(self.document.sections["depth"]), "depth").spec
        label = QLabel(spec.label)
        label.setToolTip(spec.help)
        self.form.addRow(label, row)
        super().build()

    def refresh(self) -> None:
        super().refresh()
        path = self.document.sections["depth"].depth  # type: ignore[attr-defined]
        spec = info(type(self.document.sections["depth"]), "depth").spec
        self.file_label.setText(path.name if path else f"none: {spec.auto}")
        self.file_label.setToolTip(str(path) if path else spec.help)
        self.clear.setEnabled(path is not None)

    def _on_changed(self, section: str, name: str, value) -> None:
        super()._on_changed(section, name, value)
        if section == "depth":
            self.refresh()

    def _photo_changed(self, index: int) -> None:
        self.refresh()


PANEL_CLASSES = {"model": ModelPanel, "depth": DepthFilePanel, "camera": CameraPanel, "mapping": MappingPanel,
                 "dof": DofPanel, "outputs": ExportPanel}


class SettingsPanels(QScrollArea):
    """All the panels, stacked in a scroll area (the right-hand dock); scrolls both ways when narrow."""

    def __init__(self, document: Document, change: Callable, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsPanels")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        body = QWidget()
        layout = QVBoxLayout(body)
        self.panels: dict[str, SectionPanel] = {}
        for title, parts in PANELS:
            first = parts[0][0]
            if first not in document.sections:
                continue
            panel = PANEL_CLASSES.get(first, SectionPanel)(document, title, parts, change)
            self.panels[first] = panel
            layout.addWidget(panel)
        layout.addStretch(1)
        self.setWidget(body)
        self.setMinimumWidth(240)

    def editor(self, section: str, name: str) -> FieldEditor:
        for panel in self.panels.values():
            if (section, name) in panel.editors:
                return panel.editors[(section, name)]
        raise KeyError(f"{section}.{name}")
