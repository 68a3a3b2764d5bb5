"""Small widgets of the main window: the photo and depth tabs, an eliding status line, the About box."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QMessageBox, QSizePolicy, QVBoxLayout, QWidget

from depthstudio import __version__
from depthstudio.app import core, theme
from depthstudio.app.views.depth_view import DepthImageView
from depthstudio.app.views.image_view import ImageView


class ElidedLabel(QLabel):
    """A status line that shortens long text with "…" (the whole text is its tooltip)."""

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._full = ""
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self._full = text
        self.setToolTip(text if len(text) > 60 else "")
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        super().setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle, max(40, self.width())))


class PhotoTab(QWidget):
    """The photo, with the mesh's cut edges drawn over it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.view = ImageView("Open a photo: File ▸ Open, drop one here, or pick one from the list.")
        bar = QHBoxLayout()
        bar.setContentsMargins(8, 4, 8, 0)
        self.show_cuts = QCheckBox("Show cut edges")
        self.show_cuts.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.show_cuts.setToolTip("Where the mesh is cut at depth discontinuities (red), live as you change Edge cut")
        self.show_cuts.setChecked(True)
        self.show_cuts.toggled.connect(self._toggle)
        self.info = QLabel()
        bar.addWidget(self.show_cuts)
        bar.addStretch(1)
        bar.addWidget(self.info)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)

    def _toggle(self, on: bool) -> None:
        self.view.overlay_visible = on
        self.view.update()


class DepthTab(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.view = DepthImageView()
        layout.addWidget(self.view, 1)


def about_box(parent) -> QMessageBox:
    """DepthStudio's version and the models with their licences (non-modal)."""
    rows = "".join(f"<tr><td nowrap>{m.name}</td><td nowrap>{m.family}</td><td nowrap>{', '.join(m.outputs)}</td>"
                   f"<td nowrap>{m.licence}</td></tr>" for m in core.model_catalogue())
    text = (f"<h3>DepthStudio {__version__}</h3>"
            "<p>Monocular depth from photos: depth maps, meshes, point clouds, parallax and depth of field.</p>"
            "<p>Models: Depth Anything (V1, V2, metric V2), Distill-Any-Depth, Prompt Depth Anything, Depth Pro "
            "and MoGe-2. Each model's weights carry their own licence; CC-BY-NC-4.0 models are for non-commercial "
            "use only.</p>"
            f"<table cellspacing='6'><tr><th align='left'>Model</th><th align='left'>Family</th>"
            f"<th align='left'>Outputs</th><th align='left'>Licence</th></tr>{rows}</table>")
    box = QMessageBox(parent)
    box.setObjectName("aboutDialog")
    box.setStyleSheet("QLabel#qt_msgbox_label { min-width: 620px; }")
    box.setWindowTitle("About DepthStudio")
    box.setIconPixmap(theme.icon("app").pixmap(64, 64))
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(text)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
