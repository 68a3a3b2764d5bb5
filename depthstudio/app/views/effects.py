"""Effect previews: depth of field (click to focus) and parallax (a live camera move)."""
from __future__ import annotations

import time

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from depthstudio.app import core, theme
from depthstudio.app.views.image_view import ImageView


class FocusImageView(ImageView):
    """The DoF preview; a ring marks where the user clicked to focus."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("The depth-of-field preview appears once depth is ready.\nClick the image to focus.", parent)
        self.focus_mark: tuple[float, float] | None = None  # fractions of width / height
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.clicked.connect(self._mark)

    def _mark(self, x: float, y: float) -> None:
        if self.has_image():
            self.focus_mark = (x / self._image.width(), y / self._image.height())
            self.update()

    def decorate(self, painter: QPainter, rect: QRectF) -> None:
        if self.focus_mark is None:
            return
        center = QPointF(rect.left() + self.focus_mark[0] * rect.width(), rect.top() + self.focus_mark[1] * rect.height())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for colour, width in ((QColor(0, 0, 0, 160), 4.0), (QColor(255, 214, 10), 2.0)):
            painter.setPen(QPen(colour, width))
            painter.drawEllipse(center, 12, 12)
            painter.drawLine(center + QPointF(-20, 0), center + QPointF(-14, 0))
            painter.drawLine(center + QPointF(14, 0), center + QPointF(20, 0))
            painter.drawLine(center + QPointF(0, -20), center + QPointF(0, -14))
            painter.drawLine(center + QPointF(0, 14), center + QPointF(0, 20))


def _same(a: tuple | None, b: tuple | None) -> bool:
    """Whether two (derived, settings) requests are the same objects: Derived holds numpy arrays,
    whose == does not give one truth value."""
    return a is not None and b is not None and all(x is y for x, y in zip(a, b))


class DofTab(QWidget):
    """Renders the DoF preview off the UI thread whenever the lens settings or the geometry change."""

    def __init__(self, window) -> None:
        super().__init__()
        self.window = window
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.setContentsMargins(8, 4, 8, 0)
        self.info = QLabel("Click the image to focus there")
        bar.addWidget(self.info)
        bar.addStretch(1)
        layout.addLayout(bar)
        self.view = FocusImageView()
        layout.addWidget(self.view, 1)
        self._generation = 0
        self.active = False
        self._wanted = None  # (derived, settings) not rendered yet because the tab was hidden
        self._shown = None

    def clear(self) -> None:
        self._generation += 1
        self._wanted = self._shown = None
        self.view.set_image(None)
        self.view.focus_mark = None

    def set_active(self, active: bool) -> None:
        self.active = active
        if active and self._wanted is not None and not _same(self._wanted, self._shown):
            self._render(*self._wanted)

    def request(self, derived, settings) -> None:
        """Render the preview now when the tab is visible, else when it is shown."""
        self._wanted = (derived, settings)
        if self.active:
            self._render(derived, settings)

    def _render(self, derived, settings) -> None:
        self._shown = (derived, settings)
        self._generation += 1
        generation = self._generation

        def done(frame):
            if generation != self._generation:
                return
            self.view.set_image(frame)
            self.info.setText(self._describe(derived, settings))
            self.window.views_updated.emit("dof")

        def failed(message, details):
            if generation == self._generation:
                self.info.setText(f"⚠ {message}")

        self.window.runner.run(core.dof_preview, derived, settings, channel="effects", name="Depth of field",
                               replace=True, on_done=done, on_failed=failed)

    @staticmethod
    def _describe(derived, settings) -> str:
        focus = settings.focus_distance
        where = f"focus {focus:.2f}" if focus is not None else "focus: image centre"
        units = " m" if derived.depth_view.kind == "metric" else " units"
        return f"f/{settings.f_number:g} · {where}{units if focus is not None else ''} · click the image to focus there"


class ParallaxTab(QWidget):
    """Plays the parallax camera move live through the shared renderer."""

    FPS = 24

    def __init__(self, window) -> None:
        super().__init__()
        self.window = window
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.setContentsMargins(8, 4, 8, 0)
        self.play = QToolButton()
        self.play.setCheckable(True)
        self.play.setChecked(True)
        self.play.setIcon(theme.icon("pause"))
        self.play.setToolTip("Play / pause the preview (Space)")
        self.play.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space is the window's Play / Pause action
        self.play.toggled.connect(self._toggle)
        self.info = QLabel()
        bar.addWidget(self.play)
        bar.addWidget(self.info)
        bar.addStretch(1)
        layout.addLayout(bar)
        self.view = ImageView("The parallax preview plays here once depth is ready.")
        layout.addWidget(self.view, 1)
        self.timer = QTimer(self, interval=int(1000 / self.FPS), timeout=self._tick)
        self.active = False
        self.derived = None
        self._t0 = time.monotonic()
        self._u = 0.0
        self._in_flight = False
        window.render_service.frame_ready.connect(self._frame)
        window.render_service.failed.connect(self._failed)

    def clear(self) -> None:
        self.derived = None
        self.view.set_image(None)
        self.timer.stop()

    def set_geometry(self, derived) -> None:
        self.derived = derived
        self.settings_changed()

    def settings_changed(self) -> None:
        # drawing holds Python's GIL inside the GL driver: only the visible preview draws
        if self.derived is None or not self.active:
            return
        self._update_timer()
        self._render()

    def set_active(self, active: bool) -> None:
        self.active = active
        self._update_timer()
        if active:
            self._render()

    def _update_timer(self) -> None:
        if self.active and self.play.isChecked() and self.derived is not None:
            if not self.timer.isActive():
                self._t0 = time.monotonic() - self._u * self._duration()
                self.timer.start()
        else:
            self.timer.stop()

    def _toggle(self, playing: bool) -> None:
        self.play.setIcon(theme.icon("pause" if playing else "play"))
        self._update_timer()

    def _duration(self) -> float:
        return float(self.window.document.sections["parallax"].path.duration)

    def _tick(self) -> None:
        self._u = ((time.monotonic() - self._t0) / self._duration()) % 1.0
        if not self._in_flight:  # never queue frames faster than the renderer draws them
            self._render()

    def _render(self) -> None:
        if self.derived is None or not self.active:
            return
        size = self.view.size()
        w, h = max(64, size.width()), max(64, size.height())
        settings = self.window.document.sections["parallax"]
        self._in_flight = True
        self.window.viewport_tab.render_parallax("parallax", self.derived, settings, self._u, (w, h))

    def _frame(self, key: str, frame, tag) -> None:
        if key != "parallax":
            return
        self._in_flight = False
        if self.derived is None:
            return
        self.view.set_image(frame)
        path = self.window.document.sections["parallax"].path
        h, w = frame.shape[:2]
        self.info.setText(f"{path.preset} · {self._duration():g} s · intensity {path.intensity:g} · {w}×{h} preview")
        self.window.views_updated.emit("parallax")

    def _failed(self, key: str, message: str) -> None:
        if key == "parallax":
            self._in_flight = False
            self.info.setText(f"⚠ {message.splitlines()[0]}")

    def shutdown(self) -> None:
        self.timer.stop()
