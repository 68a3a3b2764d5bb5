"""Light and dark themes (following the system by default), the stylesheet, and tinted SVG icons."""
from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication

from depthstudio.paths import RESOURCES_DIR

ICONS_DIR = RESOURCES_DIR / "icons"
STYLES_DIR = RESOURCES_DIR / "styles"
THEMES = ("system", "light", "dark")


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is not None:
        value = scheme()
        if value == Qt.ColorScheme.Dark:
            return True
        if value == Qt.ColorScheme.Light:
            return False
    # unknown: judge by the window colour the platform gives
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def dark_palette() -> QPalette:
    p = QPalette()
    c = {
        QPalette.ColorRole.Window: "#202225", QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#17181a", QPalette.ColorRole.AlternateBase: "#26282b",
        QPalette.ColorRole.ToolTipBase: "#2b2d31", QPalette.ColorRole.ToolTipText: "#e6e6e6",
        QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#2b2d31",
        QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.BrightText: "#ff6b6b",
        QPalette.ColorRole.Highlight: "#3d7eff", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#6ea8ff", QPalette.ColorRole.Mid: "#3a3d42",
        QPalette.ColorRole.Dark: "#141517", QPalette.ColorRole.Light: "#3a3d42",
        QPalette.ColorRole.PlaceholderText: "#8b8f96",
    }
    for role, colour in c.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b6f76"))
    return p


def light_palette() -> QPalette:
    p = QPalette()
    c = {
        QPalette.ColorRole.Window: "#f3f3f4", QPalette.ColorRole.WindowText: "#1d1d1f",
        QPalette.ColorRole.Base: "#ffffff", QPalette.ColorRole.AlternateBase: "#f0f0f2",
        QPalette.ColorRole.ToolTipBase: "#ffffff", QPalette.ColorRole.ToolTipText: "#1d1d1f",
        QPalette.ColorRole.Text: "#1d1d1f", QPalette.ColorRole.Button: "#e9e9ec",
        QPalette.ColorRole.ButtonText: "#1d1d1f", QPalette.ColorRole.BrightText: "#d0021b",
        QPalette.ColorRole.Highlight: "#2f6fed", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#2f6fed", QPalette.ColorRole.Mid: "#c9c9ce",
        QPalette.ColorRole.Dark: "#a0a0a6", QPalette.ColorRole.Light: "#ffffff",
        QPalette.ColorRole.PlaceholderText: "#7a7a80",
    }
    for role, colour in c.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#a0a0a6"))
    return p


def resolve(theme: str) -> str:
    """'light' or 'dark' for a theme choice ('system' follows the platform)."""
    if theme in ("light", "dark"):
        return theme
    return "dark" if system_is_dark() else "light"


def apply_theme(app: QApplication, theme: str = "system") -> str:
    resolved = resolve(theme)
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if resolved == "dark" else light_palette())
    qss = STYLES_DIR / "app.qss"
    app.setStyleSheet(qss.read_text(encoding="utf-8") if qss.exists() else "")
    icon.cache_clear()
    return resolved


@lru_cache(maxsize=None)
def icon(name: str) -> QIcon:
    """An SVG icon from resources/icons, tinted with the palette's text colour, sharp at any DPI."""
    path = ICONS_DIR / f"{name}.svg"
    if not path.exists():
        return QIcon()
    from PySide6.QtSvg import QSvgRenderer

    app = QApplication.instance()
    colour = app.palette().color(QPalette.ColorRole.WindowText).name() if app else "#444444"
    data = path.read_text(encoding="utf-8").replace("#COLOR", colour)
    renderer = QSvgRenderer(QByteArray(data.encode("utf-8")))
    result = QIcon()
    for side in (16, 20, 24, 32, 48, 64, 128):
        pixmap = QPixmap(QSize(side, side))
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, QRectF(0, 0, side, side))
        painter.end()
        result.addPixmap(pixmap)
    return result


def pixmap_from(rgb) -> QPixmap:
    """A QPixmap of an RGB uint8 array."""
    from depthstudio.app.views.image_view import to_qimage

    return QPixmap.fromImage(to_qimage(rgb))
