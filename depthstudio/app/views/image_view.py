"""A widget that shows an image fitted to its size, with an optional overlay, hover and click."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget


def to_qimage(array: np.ndarray) -> QImage:
    """An (H, W, 3|4) uint8 or (H, W) uint8 array as a QImage that owns its pixels."""
    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    if array.ndim == 2:
        fmt, channels = QImage.Format.Format_Grayscale8, 1
    elif array.shape[2] == 4:
        fmt, channels = QImage.Format.Format_RGBA8888, 4
    else:
        fmt, channels = QImage.Format.Format_RGB888, 3
    image = QImage(array.data, w, h, w * channels, fmt)
    return image.copy()  # detach from the numpy buffer


class ImageView(QWidget):
    """Fits an image into the widget (never upscaled past 4x), keeps its aspect, centres it."""

    hovered = Signal(float, float)  # image pixel coordinates; (-1, -1) when the cursor leaves the image
    clicked = Signal(float, float)

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.placeholder = placeholder
        self._image: QImage | None = None
        self._overlay: QImage | None = None
        self._cache: tuple[QSize, QPixmap | None, QPixmap | None] | None = None
        self.overlay_visible = True

    # ---- content ------------------------------------------------------------------------------
    def set_image(self, image) -> None:
        """An RGB array, a QImage, or None to show the placeholder."""
        self._image = to_qimage(image) if isinstance(image, np.ndarray) else image
        self._cache = None
        self.update()

    def set_overlay(self, rgba) -> None:
        self._overlay = to_qimage(rgba) if isinstance(rgba, np.ndarray) else rgba
        self._cache = None
        self.update()

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        self.update()

    def image(self) -> QImage | None:
        return self._image

    def has_image(self) -> bool:
        return self._image is not None and not self._image.isNull()

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    # ---- geometry -----------------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        """Where the image is drawn, in widget coordinates."""
        if not self.has_image():
            return QRectF()
        iw, ih = self._image.width(), self._image.height()
        margin = 8
        avail_w, avail_h = max(1, self.width() - 2 * margin), max(1, self.height() - 2 * margin - self.bottom_margin())
        scale = min(avail_w / iw, avail_h / ih, 4.0)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, margin + (avail_h - h) / 2, w, h)

    def bottom_margin(self) -> int:
        """Room left under the image for a legend (subclasses)."""
        return 0

    def to_image(self, pos: QPointF) -> tuple[float, float] | None:
        rect = self.image_rect()
        if rect.isEmpty() or not rect.contains(pos):
            return None
        x = (pos.x() - rect.left()) / rect.width() * self._image.width()
        y = (pos.y() - rect.top()) / rect.height() * self._image.height()
        return x, y

    # ---- events -------------------------------------------------------------------------------
    def mouseMoveEvent(self, event) -> None:
        hit = self.to_image(event.position())
        self.hovered.emit(*(hit if hit else (-1.0, -1.0)))
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:
        self.hovered.emit(-1.0, -1.0)
        super().leaveEvent(event)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            hit = self.to_image(event.position())
            if hit:
                self.clicked.emit(*hit)
        super().mousePressEvent(event)

    def _scaled(self, rect: QRectF) -> tuple[QPixmap | None, QPixmap | None]:
        size = rect.size().toSize()
        if self._cache is None or self._cache[0] != size:
            dpr = self.devicePixelRatioF()
            target = QSize(max(1, int(size.width() * dpr)), max(1, int(size.height() * dpr)))

            def scale(img: QImage | None) -> QPixmap | None:
                if img is None or img.isNull():
                    return None
                pix = QPixmap.fromImage(img.scaled(target, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                   Qt.TransformationMode.SmoothTransformation))
                pix.setDevicePixelRatio(dpr)
                return pix

            self._cache = (size, scale(self._image), scale(self._overlay))
        return self._cache[1], self._cache[2]

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Base))
        if not self.has_image():
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            painter.end()
            return
        rect = self.image_rect()
        pixmap, overlay = self._scaled(rect)
        painter.drawPixmap(rect.topLeft(), pixmap)
        if overlay is not None and self.overlay_visible:
            painter.drawPixmap(rect.topLeft(), overlay)
        self.decorate(painter, rect)
        painter.end()

    def decorate(self, painter: QPainter, rect: QRectF) -> None:
        """Draw extras over the image (legend, focus marker); subclasses override."""


def status_text_color(widget: QWidget) -> QColor:
    return widget.palette().color(QPalette.ColorRole.WindowText)
