"""The compare view: any two views (photo, depth, depth of field, 3D, parallax) side by side or with a split slider."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QButtonGroup, QComboBox, QHBoxLayout, QLabel, QRadioButton, QVBoxLayout, QWidget

MODES = ("split", "side")


class CompareCanvas(QWidget):
    """Draws two images: left | right side by side, or one over the other cut by a draggable line."""

    split_moved = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(160, 120)
        self.images: list[QImage | None] = [None, None]
        self.mode = "split"
        self.split = 0.5  # fraction of the image's width shown from the left source
        self.setMouseTracking(True)
        self.setCursor(Qt.CursorShape.SplitHCursor)

    def set_images(self, left: QImage | None, right: QImage | None) -> None:
        self.images = [left, right]
        self.update()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.setCursor(Qt.CursorShape.SplitHCursor if mode == "split" else Qt.CursorShape.ArrowCursor)
        self.update()

    def _fit(self, image: QImage, area: QRectF) -> QRectF:
        scale = min(area.width() / image.width(), area.height() / image.height())
        w, h = image.width() * scale, image.height() * scale
        return QRectF(area.left() + (area.width() - w) / 2, area.top() + (area.height() - h) / 2, w, h)

    def image_rect(self) -> QRectF:
        image = self.images[0] or self.images[1]
        if image is None or image.isNull():
            return QRectF()
        return self._fit(image, QRectF(self.rect()).adjusted(8, 8, -8, -8))

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        area = QRectF(self.rect()).adjusted(8, 8, -8, -8)
        if not any(i is not None and not i.isNull() for i in self.images):
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Open a photo to compare its views.")
            return
        if self.mode == "side":
            half = area.width() / 2
            for i, image in enumerate(self.images):
                if image is not None and not image.isNull():
                    cell = QRectF(area.left() + i * half, area.top(), half - 4, area.height())
                    painter.drawImage(self._fit(image, cell), image)
            return
        rect = self.image_rect()
        cut = rect.left() + self.split * rect.width()
        for i, image in enumerate(self.images):
            if image is None or image.isNull():
                continue
            painter.save()
            painter.setClipRect(QRectF(rect.left(), rect.top(), cut - rect.left(), rect.height()) if i == 0
                                else QRectF(cut, rect.top(), rect.right() - cut, rect.height()))
            painter.drawImage(rect, image)
            painter.restore()
        painter.setPen(QPen(QColor(255, 255, 255, 220), 2))
        painter.drawLine(QPointF(cut, rect.top()), QPointF(cut, rect.bottom()))
        painter.setBrush(QColor(255, 255, 255, 220))
        painter.drawEllipse(QPointF(cut, rect.center().y()), 6, 6)

    def _move(self, x: float) -> None:
        rect = self.image_rect()
        if rect.width() > 0 and self.mode == "split":
            self.split = min(1.0, max(0.0, (x - rect.left()) / rect.width()))
            self.split_moved.emit(self.split)
            self.update()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self._move(event.position().x())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if event.buttons():
            self._move(event.position().x())


class CompareTab(QWidget):
    """Pick two views and how to show them; the images come from the other tabs' current pictures."""

    def __init__(self, sources: dict, parent: QWidget | None = None) -> None:
        """``sources``: {name: callable returning the QImage that view shows now (or None)}."""
        super().__init__(parent)
        self.sources = sources
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.setContentsMargins(8, 4, 8, 0)
        self.left = QComboBox()
        self.right = QComboBox()
        for combo, default in ((self.left, 0), (self.right, 1)):
            combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the wheel and Space stay with the window
            for name in sources:
                combo.addItem(name, name)
            combo.setCurrentIndex(min(default, combo.count() - 1))
            combo.currentIndexChanged.connect(lambda _=0: self.refresh())
        self.mode_group = QButtonGroup(self)
        self.mode_buttons = {}
        bar.addWidget(QLabel("Left"))
        bar.addWidget(self.left)
        bar.addWidget(QLabel("Right"))
        bar.addWidget(self.right)
        bar.addSpacing(16)
        for mode, label in (("split", "Split slider"), ("side", "Side by side")):
            button = QRadioButton(label)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.toggled.connect(lambda on, m=mode: on and self.set_mode(m))
            self.mode_group.addButton(button)
            self.mode_buttons[mode] = button
            bar.addWidget(button)
        bar.addStretch(1)
        layout.addLayout(bar)
        self.canvas = CompareCanvas()
        layout.addWidget(self.canvas, 1)
        self.mode_buttons["split"].setChecked(True)

    def set_mode(self, mode: str) -> None:
        self.mode_buttons[mode].setChecked(True)
        self.canvas.set_mode(mode)

    def refresh(self) -> None:
        left = self.sources.get(self.left.currentData(), lambda: None)()
        right = self.sources.get(self.right.currentData(), lambda: None)()
        self.canvas.set_images(left, right)
