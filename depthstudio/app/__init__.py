"""The DepthStudio desktop app (PySide6). The only package that imports Qt.

``launch()`` is the ``depthstudio-gui`` entry point; ``depthstudio gui [IMAGE]`` calls it too.
"""
from __future__ import annotations

import os
import sys

__all__ = ["launch", "create_app", "preload"]

#: Extension modules whose first import holds Python's GIL for a noticeable time: imported before
#: the window shows, so that a first inference or export never stutters the UI.
PRELOAD = ("numpy", "PIL.Image", "cv2", "onnxruntime", "trimesh", "moderngl",
           "depthstudio.geometry.pipeline", "depthstudio.geometry.export", "depthstudio.models.estimator",
           "depthstudio.render.scene", "depthstudio.render.parallax", "depthstudio.render.dof",
           "depthstudio.io.depthfiles")


def preload() -> list[str]:
    """Import the heavy modules now; returns the ones that are not installed (their features are off)."""
    import importlib

    missing = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def create_app(argv: list[str] | None = None):
    """The QApplication (created once), with DepthStudio's names, icon and theme."""
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    QCoreApplication.setOrganizationName("DepthStudio")
    QCoreApplication.setApplicationName("DepthStudio")
    from depthstudio import __version__
    from depthstudio.app import theme

    QCoreApplication.setApplicationVersion(__version__)
    app.setWindowIcon(theme.icon("app"))
    app.setDesktopFileName("depthstudio")
    return app


def launch(argv: list[str] | None = None) -> int:
    """Open the main window with the photos named in ``argv`` (default: the command line)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        import PySide6  # noqa: F401
    except ImportError:
        from depthstudio.errors import DepthStudioError

        raise DepthStudioError("the desktop app needs PySide6: pip install 'depthstudio[gui]'") from None
    if sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        from depthstudio.errors import DepthStudioError

        raise DepthStudioError("no display to open the window on (DISPLAY is not set); run it in a desktop "
                               "session, or under xvfb-run for a headless check")
    app = create_app()
    preload()
    from depthstudio.app.main_window import MainWindow

    window = MainWindow()
    window.show()
    paths = [a for a in args if not a.startswith("-")]
    if paths:
        window.open_paths(paths)
    return int(app.exec())
