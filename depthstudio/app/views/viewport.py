"""The 3D view: the shared renderer's scene, orbited with the mouse.

Left drag orbits around the steady point, right (or middle) drag pans, the wheel zooms; the mode
switch shows the textured mesh, its points, or its wireframe (where the cut edges show as gaps).
Drawing happens on the render thread (depthstudio.app.render_service) into an offscreen
framebuffer of the widget's size; this widget only shows the frames.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from depthstudio.app import theme
from depthstudio.app.views.image_view import ImageView

MODES = ("mesh", "points", "wireframe")


class OrbitView(ImageView):
    """Shows rendered frames and turns mouse drags into orbit / pan / zoom."""

    def __init__(self, tab: ViewportTab) -> None:
        super().__init__("The 3D view appears once depth is ready.\nDrag to orbit, right-drag to pan, wheel to zoom.")
        self.tab = tab
        self._last: QPointF | None = None
        self._button = None

    def mousePressEvent(self, event) -> None:
        self._last = event.position()
        self._button = event.button()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._last is not None and event.buttons():
            delta = event.position() - self._last
            self._last = event.position()
            if self._button == Qt.MouseButton.LeftButton:
                self.tab.orbit(delta.x(), delta.y())
            else:
                self.tab.pan(delta.x(), delta.y())
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        self._last = None
        super().mouseReleaseEvent(event)

    def wheelEvent(self, event) -> None:
        self.tab.zoom(event.angleDelta().y() / 120.0)

    def mouseDoubleClickEvent(self, event) -> None:
        self.tab.reset_view()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.tab.request()


class ViewportTab(QWidget):
    def __init__(self, window) -> None:
        super().__init__()
        self.window = window
        from depthstudio.app.render_service import RenderService

        window.render_service = RenderService(window)
        self.service = window.render_service
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.setContentsMargins(8, 4, 8, 0)
        self.mode = QComboBox()
        for mode in MODES:
            self.mode.addItem(mode.capitalize(), mode)
        self.mode.setToolTip("Textured mesh, its points, or its wireframe (cut edges show as gaps)")
        self.mode.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys (Space, arrows) stay with the window
        self.mode.currentIndexChanged.connect(lambda _: self.request())
        reset = QToolButton()
        reset.setIcon(theme.icon("reset"))
        reset.setToolTip("Back to the photo's camera (double-click the view)")
        reset.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        reset.clicked.connect(self.reset_view)
        self.info = QLabel()
        bar.addWidget(QLabel("Show"))
        bar.addWidget(self.mode)
        bar.addWidget(reset)
        bar.addStretch(1)
        bar.addWidget(self.info)
        layout.addLayout(bar)
        self.view = OrbitView(self)
        layout.addWidget(self.view, 1)
        self.derived = None
        self.active = False
        self.yaw = self.pitch = 0.0
        self.distance_scale = 1.0
        self.pan_xy = (0.0, 0.0)
        self._geometry_id = 0
        self._uploaded = None
        self.service.frame_ready.connect(self._frame)
        self.service.failed.connect(self._failed)

    # ---- state ----------------------------------------------------------------------------------
    def clear(self) -> None:
        self.derived = None
        self.view.set_image(None)
        self.info.setText("")

    def set_geometry(self, derived) -> None:
        self.derived = derived
        self._uploaded = None
        if derived.stats.get("points") and self.mode.currentData() == "mesh":
            self.mode.blockSignals(True)
            self.mode.setCurrentIndex(MODES.index("points"))
            self.mode.blockSignals(False)
        faces = derived.stats.get("faces", 0)
        n = len(getattr(derived.view_mesh, "vertices", getattr(derived.view_mesh, "points", [])))
        self.info.setText(f"{n:,} vertices" + (f", {faces:,} faces" if faces else "") + " (preview)")
        self.request()

    def set_active(self, active: bool) -> None:
        self.active = active
        if active:
            self.request()

    def reset_view(self) -> None:
        self.yaw = self.pitch = 0.0
        self.distance_scale = 1.0
        self.pan_xy = (0.0, 0.0)
        self.request()

    def orbit(self, dx: float, dy: float) -> None:
        self.yaw = max(-80.0, min(80.0, self.yaw - dx * 0.3))
        self.pitch = max(-80.0, min(80.0, self.pitch - dy * 0.3))
        self.request()

    def pan(self, dx: float, dy: float) -> None:
        scale = 1.0 / max(1, self.view.width())
        self.pan_xy = (self.pan_xy[0] - dx * scale, self.pan_xy[1] + dy * scale)
        self.request()

    def zoom(self, steps: float) -> None:
        self.distance_scale = max(0.05, min(20.0, self.distance_scale * math.pow(0.9, steps)))
        self.request()

    # ---- rendering ------------------------------------------------------------------------------
    def upload(self, derived) -> None:
        """Send new geometry to the render thread (once per geometry, shared with the parallax tab)."""
        self._geometry_id += 1
        gid = self._geometry_id

        def load(state):
            from depthstudio.app import gl_scene

            gl_scene.set_geometry(state, gid, derived)
            return None

        self.service.submit("geometry", load)

    def request(self) -> None:
        # drawing holds Python's GIL inside the GL driver: only a visible view draws
        if self.derived is None or not self.active:
            return
        if self._uploaded is not self.derived:
            self._uploaded = self.derived
            self.upload(self.derived)
        dpr = self.view.devicePixelRatioF()  # sharp on high-DPI screens: render device pixels
        size = (max(64, int(self.view.width() * dpr)), max(64, int(self.view.height() * dpr)))
        view = (self.yaw, self.pitch, self.distance_scale, self.pan_xy)
        mode = self.mode.currentData()
        derived = self.derived

        def draw(state):
            from depthstudio.app import gl_scene

            return gl_scene.draw_orbit(state, derived, view, mode, size)

        self.service.submit("viewport", draw)

    def render_parallax(self, key: str, derived, settings, u: float, size) -> None:
        def draw(state):
            from depthstudio.app import gl_scene

            return gl_scene.draw_parallax(state, derived, settings, u, size)

        self.service.submit(key, draw)

    def _frame(self, key: str, frame, tag) -> None:
        if key == "viewport" and self.derived is not None:
            self.view.set_image(frame)
            self.window.views_updated.emit("3d")

    def _failed(self, key: str, message: str) -> None:
        if key in ("viewport", "geometry"):
            self.view.set_image(None)
            self.view.set_placeholder(f"The 3D view cannot draw here:\n{message.splitlines()[0]}")

    def shutdown(self) -> None:
        self.service.shutdown()
