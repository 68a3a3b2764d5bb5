"""The depth tab: colour-mapped depth with a legend and a readout of the depth under the cursor."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QFont, QImage, QPainter, QPalette
from PySide6.QtWidgets import QWidget

from depthstudio.app.views.image_view import ImageView, to_qimage

LEGEND_HEIGHT = 44


class DepthImageView(ImageView):
    """Shows a core.DepthView; hover reports distance (and the raw value) at the cursor."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Depth appears here once it has been estimated.", parent)
        self.data = None
        self._bar: QImage | None = None
        self.readout = ""
        self.hovered.connect(self._hover)

    def set_depth(self, data, bar: np.ndarray | None = None) -> None:
        self.data = data
        if bar is not None:
            self._bar = to_qimage(bar)
        self.set_image(None if data is None else data.color)

    def bottom_margin(self) -> int:
        return LEGEND_HEIGHT if self.data is not None else 0

    def value_at(self, x: float, y: float) -> tuple[float, float] | None:
        """(distance, raw value) at image pixel (x, y) of the full-resolution depth, or None."""
        d = self.data
        if d is None or x < 0:
            return None
        h, w = d.z.shape
        # the displayed colour image may be a downscaled copy: map display pixels to depth pixels
        col = int(x / self._image.width() * w)
        row = int(y / self._image.height() * h)
        if not (0 <= col < w and 0 <= row < h) or not d.valid[row, col]:
            return None
        return float(d.z[row, col]), float(d.values[row, col])

    def _hover(self, x: float, y: float) -> None:
        hit = self.value_at(x, y)
        if hit is None:
            self.readout = ""
        else:
            z, raw = hit
            units = "m" if self.data.kind == "metric" else "units"
            self.readout = f"{z:.3f} {units}" + ("" if self.data.kind == "metric" else f"  (disparity {raw:.4g})")
        self.update()

    def decorate(self, painter: QPainter, rect: QRectF) -> None:
        if self.data is None or self._bar is None:
            return
        pal = self.palette()
        bar_w = min(360.0, max(160.0, rect.width() * 0.6))
        top = rect.bottom() + 10
        bar = QRectF(rect.center().x() - bar_w / 2, top, bar_w, 10)
        painter.drawImage(bar, self._bar)
        painter.setPen(pal.color(QPalette.ColorRole.Mid))
        painter.drawRect(bar)
        painter.setPen(pal.color(QPalette.ColorRole.WindowText))
        font = QFont(painter.font())
        font.setPointSizeF(max(7.5, font.pointSizeF() - 1))
        painter.setFont(font)
        lo, hi = self.data.z_range
        units = "m" if self.data.kind == "metric" else ""
        label_far = QRectF(bar.left() - 110, bar.top() - 4, 104, 18)
        label_near = QRectF(bar.right() + 6, bar.top() - 4, 110, 18)
        painter.drawText(label_far, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"far {hi:.2f}{units}")
        painter.drawText(label_near, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{lo:.2f}{units} near")
        if self.readout:
            painter.drawText(QRectF(bar.left(), bar.bottom() + 2, bar.width(), 18), Qt.AlignmentFlag.AlignCenter,
                             self.readout)
