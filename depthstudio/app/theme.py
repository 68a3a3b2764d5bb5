"""Light and dark themes (following the system by default), the stylesheet, and tinted SVG icons."""
from __future__ import annotations

from functools import cache

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


_ROLES = ("Window", "WindowText", "Base", "AlternateBase", "ToolTipBase", "ToolTipText", "Text", "Button",
          "ButtonText", "BrightText", "Highlight", "HighlightedText", "Link", "Mid", "Dark", "Light",
          "PlaceholderText")
#: Colours per role, in _ROLES order, then the disabled text colour.
_DARK = ("#202225", "#e6e6e6", "#17181a", "#26282b", "#2b2d31", "#e6e6e6", "#e6e6e6", "#2b2d31",
         "#e6e6e6", "#ff6b6b", "#3d7eff", "#ffffff", "#6ea8ff", "#3a3d42", "#141517", "#3a3d42",
         "#8b8f96", "#6b6f76")
_LIGHT = ("#f3f3f4", "#1d1d1f", "#ffffff", "#f0f0f2", "#ffffff", "#1d1d1f", "#1d1d1f", "#e9e9ec",
          "#1d1d1f", "#d0021b", "#2f6fed", "#ffffff", "#2f6fed", "#c9c9ce", "#a0a0a6", "#ffffff",
          "#7a7a80", "#a0a0a6")


def _palette(colours: tuple[str, ...]) -> QPalette:
    p = QPalette()
    for role, colour in zip(_ROLES, colours):
        p.setColor(getattr(QPalette.ColorRole, role), QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(colours[-1]))
    return p


def dark_palette() -> QPalette:
    return _palette(_DARK)


def light_palette() -> QPalette:
    return _palette(_LIGHT)


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


@cache
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
