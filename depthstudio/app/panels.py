"""The settings panels: one group per stage of the core, bound to the document's settings objects."""
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
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from depthstudio.app import core
from depthstudio.app.document import EXPORT_FORMATS, Document
from depthstudio.app.fields import FieldEditor, FieldSpec, FormatsEditor, specs_for

TITLES = {
    "model": "Model",
    "source": "Depth file",
    "camera": "Camera",
    "mapping": "Depth mapping",
    "mesh": "Mesh",
    "parallax": "Parallax",
    "dof": "Depth of field",
    "export": "Export",
}

#: Ranges, labels and tooltips the dataclasses cannot say themselves.
HINTS: dict[str, dict[str, dict]] = {
    "camera": {
        "fov_deg": dict(label="Horizontal FoV", minimum=1.0, maximum=179.0, step=1.0, decimals=1, suffix=" °",
                        tooltip="Horizontal field of view. Auto: from EXIF, the model, or 60°"),
        "focal_mm": dict(label="Focal length", minimum=1.0, maximum=2000.0, step=1.0, decimals=1, suffix=" mm",
                         tooltip="35 mm-equivalent focal length"),
        "fx": dict(label="fx", minimum=1.0, maximum=1e6, step=10.0, decimals=1, suffix=" px"),
        "fy": dict(label="fy", minimum=1.0, maximum=1e6, step=10.0, decimals=1, suffix=" px"),
        "cx": dict(label="Principal x", minimum=-1e5, maximum=1e5, step=1.0, decimals=1, suffix=" px"),
        "cy": dict(label="Principal y", minimum=-1e5, maximum=1e5, step=1.0, decimals=1, suffix=" px"),
    },
    "mapping": {
        "near": dict(label="Near", minimum=0.001, maximum=1e4, step=0.1, decimals=3,
                     tooltip="Distance of the nearest point (relative depth only)"),
        "far": dict(label="Far", minimum=0.002, maximum=1e5, step=0.5, decimals=3,
                    tooltip="Distance of the farthest point (relative depth only)"),
    },
    "mesh": {
        "edge_cut": dict(label="Edge cut", minimum=0.0, maximum=5.0, step=0.01, decimals=3, auto_text="Off",
                         tooltip="Cut mesh edges whose relative depth change |ln(z1/z2)| exceeds this (Off: never cut)"),
        "max_faces": dict(label="Max faces", kind="int", minimum=1000, maximum=50_000_000, step=10000, auto_text="All",
                          tooltip="Decimate to at most this many faces"),
        "stride": dict(label="Grid stride", minimum=1, maximum=64, step=1, suffix=" px",
                       tooltip="Use every n-th pixel (lower resolution, smaller files)"),
        "points": dict(label="Point cloud", tooltip="Export points instead of a mesh"),
    },
    "model": {
        "input_size": dict(label="Input size", minimum=14, maximum=2044, step=14, suffix=" px",
                           tooltip="Shorter side the model sees (multiples of 14); larger is slower and sharper"),
    },
    "export": {
        "folder": dict(kind="folder", label="Folder", tooltip="Where exports go (empty: next to each photo)"),
        "depth_png": dict(label="Depth PNG (16-bit)"),
        "depth_exr": dict(label="Depth EXR"),
        "parallax_video": dict(label="Parallax video"),
        "dof_still": dict(label="Depth-of-field still"),
    },
    "parallax": {
        "path.preset": dict(label="Preset", tooltip="The camera move"),
        "path.intensity": dict(label="Intensity", minimum=0.0, maximum=20.0, step=0.1,
                               tooltip="Multiplies the preset's camera travel"),
        "path.duration": dict(label="Duration", minimum=0.5, maximum=3600.0, step=0.5, suffix=" s"),
        "path.loop": dict(label="Loop"),
        "path.easing": dict(label="Easing"),
        "path.steady": dict(label="Steady depth", minimum=0.0, maximum=1.0, step=0.05,
                            tooltip="Which depth stays still: 0 = the far end of the scene, 1 = the near end"),
        "path.steady_depth": dict(label="Steady distance", minimum=0.001, maximum=1e5, step=0.1, decimals=3,
                                  auto_text="From steady depth",
                                  tooltip="Or an explicit distance that stays still (overrides Steady depth)"),
        "fps": dict(label="Frame rate", minimum=1.0, maximum=240.0, step=1.0, decimals=0, suffix=" fps"),
        "edge_cut": dict(label="Edge cut", minimum=0.0, maximum=5.0, step=0.01, decimals=3),
        "max_vertices": dict(label="Mesh resolution", minimum=1000, maximum=20_000_000, step=50_000, suffix=" vertices"),
        "samples": dict(label="Anti-aliasing", minimum=0, maximum=16, step=1, suffix="× MSAA"),
        "quality": dict(label="Video quality", minimum=0.0, maximum=100.0, step=5.0, decimals=0),
        "fill.enabled": dict(label="Fill revealed areas"),
        "fill.band_px": dict(label="Fill band", minimum=0.0, maximum=5000.0, step=1.0, suffix=" px",
                             tooltip="Widest reveal in photo pixels (Auto: from the camera path)"),
        "fill.inpaint_radius": dict(label="Inpaint radius", minimum=1, maximum=50, step=1, suffix=" px"),
        "fill.max_vertices": dict(label="Fill resolution", minimum=1000, maximum=10_000_000, step=10_000,
                                  suffix=" vertices"),
    },
    "dof": {
        "f_number": dict(label="f-number", minimum=0.7, maximum=64.0, step=0.1, decimals=1),
        "focal_mm": dict(label="Lens focal length", minimum=1.0, maximum=2000.0, step=1.0, suffix=" mm",
                         auto_text="Camera's"),
        "focus_distance": dict(label="Focus distance", minimum=0.001, maximum=1e5, step=0.1, decimals=3,
                               auto_text="Centre", tooltip="Click the depth-of-field preview to focus there"),
        "sensor_width_mm": dict(label="Sensor width", minimum=1.0, maximum=100.0, step=1.0, suffix=" mm"),
        "max_blur_px": dict(label="Max blur", minimum=0.0, maximum=1000.0, step=1.0, suffix=" px"),
        "max_blur_fraction": dict(label="Max blur (fraction)", minimum=0.0, maximum=1.0, step=0.01, decimals=3),
        "blades": dict(label="Aperture blades", minimum=0, maximum=16, step=1, tooltip="0: round; 5-9: polygonal bokeh"),
        "blade_rotation_deg": dict(label="Blade rotation", minimum=0.0, maximum=360.0, step=5.0, suffix=" °"),
        "highlight_boost": dict(minimum=0.0, maximum=100.0, step=0.5),
        "highlight_threshold": dict(minimum=0.01, maximum=0.99, step=0.05),
        "preview_size": dict(label="Preview size", minimum=16, maximum=8192, step=64, suffix=" px"),
    },
}


class SectionPanel(QGroupBox):
    """A group of field editors for one settings section."""

    def __init__(self, document: Document, section: str, change: Callable, parent: QWidget | None = None) -> None:
        super().__init__(TITLES.get(section, section.capitalize()), parent)
        self.document = document
        self.section = section
        self.change = change
        self.form = QFormLayout(self)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.editors: dict[str, QWidget] = {}
        self.build()
        self.message = QLabel()
        self.message.setObjectName("panelMessage")
        self.message.setWordWrap(True)
        self.message.hide()
        self.form.addRow(self.message)
        document.settings_changed.connect(self._on_changed)
        self.refresh()

    def specs(self) -> list[FieldSpec]:
        skip = ("formats",) if self.section == "export" else ()
        hints = {k: dict(v) for k, v in HINTS.get(self.section, {}).items()}
        if self.section == "parallax":
            try:
                choices = core.parallax_choices()
            except ImportError:
                choices = {}
            for name, values in choices.items():
                hints.setdefault(name, {}).update(kind="choice", choices=values, auto_text="Preset's")
                if "path" in type(self.document.sections["parallax"]).__dataclass_fields__:
                    hints.setdefault("path." + name, {}).update(kind="choice", choices=values, auto_text="Preset's")
        return specs_for(type(self.document.sections[self.section]), hints, skip=skip)

    def build(self) -> None:
        if self.section == "export":
            editor = FormatsEditor("formats", EXPORT_FORMATS)
            editor.edited.connect(self._edited)
            self.editors["formats"] = editor
            self.form.addRow("3D formats", editor)
        for spec in self.specs():
            editor = FieldEditor(spec)
            editor.edited.connect(self._edited)
            self.editors[spec.name] = editor
            label = QLabel(spec.label)
            label.setToolTip(spec.tooltip)
            self.form.addRow(label, editor)

    def _edited(self, name: str, value) -> None:
        error = self.change(self.section, name, value)
        self.show_message(error)
        if error:
            self.refresh()

    def show_message(self, text: str | None) -> None:
        self.message.setText(text or "")
        self.message.setVisible(bool(text))

    def refresh(self) -> None:
        for name, editor in self.editors.items():
            editor.set_value(self.document.get(self.section, name))

    def _on_changed(self, section: str, name: str, value) -> None:
        if section == self.section and name in self.editors:
            self.editors[name].set_value(value)
            self.show_message(None)


class MappingPanel(SectionPanel):
    """Near/far apply to relative depth only; metric depth passes through in metres."""

    def show_kind(self, kind: str) -> None:
        metric = kind == "metric"
        for editor in self.editors.values():
            editor.setEnabled(not metric)
        self.show_message(None)
        self.setTitle("Depth mapping" + ("  (metric depth: metres, no mapping)" if metric else ""))


class CameraPanel(SectionPanel):
    """Camera fields plus where the focal length came from."""

    def build(self) -> None:
        super().build()
        self.source = QLabel("Open a photo to see its camera")
        self.source.setObjectName("cameraSource")
        self.source.setWordWrap(True)
        self.form.addRow("Source", self.source)

    def show_intrinsics(self, k) -> None:
        if k is None:
            self.source.setText("Open a photo to see its camera")
            return
        names = {"flags": "your settings", "exif-35mm": "EXIF (35 mm equivalent)", "exif-sensor": "EXIF (focal length + sensor)",
                 "model": "the model's estimate", "default": "default (60° FoV)"}
        self.source.setText(f"{names.get(k.source, k.source)}: {k.hfov_deg:.1f}° FoV, "
                            f"{k.focal_35mm:.0f} mm equiv., fx {k.fx:.0f} px")
        placeholders = {"fov_deg": k.hfov_deg, "focal_mm": k.focal_35mm, "fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy}
        for name, value in placeholders.items():
            editor = self.editors.get(name)
            if isinstance(editor, FieldEditor):
                editor.set_auto_placeholder(value)


class ModelPanel(SectionPanel):
    """The model catalogue with licences, the backend, input size, and the download button."""

    download_requested = Signal(str, str)  # model name, backend
    browse_requested = Signal()

    def specs(self) -> list[FieldSpec]:
        specs = [s for s in super().specs() if s.name != "model"]
        for s in specs:
            if s.name == "backend":
                s.kind, s.choices, s.optional = "choice", ("auto", "onnx", "torch"), False
        return specs

    def build(self) -> None:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        for info in core.model_catalogue():
            self.combo.addItem(f"{info.name}  ({info.size_label}, {info.licence})", info.name)
            self.combo.setItemData(self.combo.count() - 1,
                                   f"{info.family}\noutputs: {', '.join(info.outputs)}; licence {info.licence}\n"
                                   f"input: {info.input_rule}\nbackends: {', '.join(info.backends)}; "
                                   f"weights: {info.hf_repo or info.onnx_repo}",
                                   Qt.ItemDataRole.ToolTipRole)
        self.combo.currentIndexChanged.connect(lambda i: self._edited("model", self.combo.itemData(i)))
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Use a local model: a .onnx file or a transformers folder")
        browse.clicked.connect(self._browse)
        layout.addWidget(self.combo, 1)
        layout.addWidget(browse)
        self.editors["model"] = row
        self.form.addRow("Model", row)
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
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.hide()
        self.form.addRow("", self.progress)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose an ONNX model", "", "ONNX models (*.onnx);;All files (*)")
        if not path:
            folder = QFileDialog.getExistingDirectory(self, "…or a transformers folder (config.json + model.safetensors)")
            path = folder
        if path:
            self._edited("model", path)

    def _download(self) -> None:
        self.download_requested.emit(self.document.get("model", "model"), self.document.get("model", "backend"))

    def set_downloading(self, busy: bool, message: str = "") -> None:
        self.progress.setVisible(busy)
        self.download.setEnabled(not busy)
        if message:
            self.status.setText(message)

    def refresh(self) -> None:
        settings = self.document.sections["model"]
        for name, editor in self.editors.items():
            if isinstance(editor, FieldEditor):
                editor.set_value(self.document.get(self.section, name))
        name = settings.model
        self.combo.blockSignals(True)
        index = self.combo.findData(name)
        if index < 0:
            self.combo.addItem(f"{name}  (local)", name)
            index = self.combo.count() - 1
        self.combo.setCurrentIndex(index)
        self.combo.blockSignals(False)
        info = core.model_info(name)
        if info is None:
            self.info.setText("Local model file or folder; its licence is the one it came with.")
            self.status.setText("on disk")
            self.download.hide()
            return
        self.info.setText(f"{info.family} · {', '.join(info.outputs)} · licence <b>{info.licence}</b>")
        self.info.setToolTip(f"input: {info.input_rule}; backends: {', '.join(info.backends)}")
        cached = core.model_cached(name)
        backend = settings.backend if settings.backend != "auto" else ("onnx" if info.onnx_repo else "torch")
        have = cached.get(backend, False)
        self.status.setText("downloaded" if have else "not downloaded")
        self.download.setVisible(not have)

    def _on_changed(self, section: str, name: str, value) -> None:
        if section == "model":
            self.refresh()
            self.show_message(None)


class SourcePanel(SectionPanel):
    """Depth the user brings (phone portrait depth, LiDAR, a render's Z pass) instead of the model."""

    choose_requested = Signal()
    clear_requested = Signal()

    def build(self) -> None:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        self.file_label = QLabel("none: the model estimates depth")
        self.file_label.setWordWrap(True)
        choose = QPushButton("Choose…")
        choose.setToolTip("Use a depth map (PNG, EXR, TIFF, NPY) for the current photo")
        choose.clicked.connect(self.choose_requested)
        self.clear = QPushButton("Use model")
        self.clear.clicked.connect(self.clear_requested)
        layout.addWidget(self.file_label, 1)
        layout.addWidget(choose)
        layout.addWidget(self.clear)
        self.form.addRow("File", row)
        super().build()

    def show_item(self, item) -> None:
        path = getattr(item, "depth_file", None)
        self.file_label.setText(path.name if path else "none: the model estimates depth")
        self.file_label.setToolTip(str(path) if path else "")
        self.clear.setEnabled(path is not None)


class SettingsPanels(QScrollArea):
    """All the panels, stacked in a scroll area (the right-hand dock)."""

    def __init__(self, document: Document, change: Callable, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        layout = QVBoxLayout(body)
        self.panels: dict[str, SectionPanel] = {}
        classes = {"model": ModelPanel, "camera": CameraPanel, "source": SourcePanel, "mapping": MappingPanel}
        for section in TITLES:
            if section not in document.sections:
                continue
            panel = classes.get(section, SectionPanel)(document, section, change)
            self.panels[section] = panel
            layout.addWidget(panel)
        layout.addStretch(1)
        self._labels = {(sec, name): getattr(ed, "spec", None) and ed.spec.label
                        for sec, panel in self.panels.items() for name, ed in panel.editors.items()}
        self.setWidget(body)
        self.setMinimumWidth(330)

    def label_for(self, section: str, name: str) -> str:
        label = self._labels.get((section, name)) or name.split(".")[-1].replace("_", " ")
        if section in ("dof", "parallax", "export"):
            return f"{TITLES.get(section, section).lower()} {label.lower()}"
        return label.lower()
