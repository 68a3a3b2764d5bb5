"""The DepthStudio desktop app (PySide6). The only package that imports Qt.

``launch()`` is the ``depthstudio-gui`` entry point; ``depthstudio gui [IMAGE]`` calls it too.
"""
from __future__ import annotations

import importlib
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


def guard_none_refcount() -> bool:
    """Work around PySide6 builds that drop a reference to None on every call of a void method.

    PySide6 6.12 on Python 3.11 does this (on 3.12+ None is immortal, so it is harmless there):
    None's reference count falls by one per ``update()``, ``setText()`` or ``processEvents()``
    call and the interpreter aborts ("deallocating None") once it reaches zero, i.e. after a few
    minutes of a live preview. When the leak is measured here, None's count is raised so far that
    it cannot reach zero, which is what Python 3.12 does for every interpreter. Returns True when
    the guard was needed.
    """
    if sys.version_info >= (3, 12):
        return False
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(64):
        probe.setObjectName("probe")  # a void method
    if before - sys.getrefcount(None) < 64:
        return False
    import ctypes

    # ob_refcnt is the first field of every object in release builds of CPython
    ctypes.c_ssize_t.from_address(id(None)).value += 1 << 48
    return True


#: Libraries Qt's X11 (xcb) platform plugin loads, and the Debian/Ubuntu packages that hold them.
XCB_LIBRARIES = {"xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1", "xcb-cursor": "libxcb-cursor0",
                 "xkbcommon-x11": "libxkbcommon-x11-0"}


def missing_xcb_libraries() -> list[str]:
    """The Debian packages whose libraries Qt's xcb plugin needs and this system lacks."""
    import ctypes.util

    return [package for lib, package in XCB_LIBRARIES.items() if ctypes.util.find_library(lib) is None]


def check_platform() -> None:
    """One clear line instead of Qt's abort when the X11 platform plugin cannot load."""
    from depthstudio.errors import DepthStudioError

    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or platform not in ("", "xcb") or not os.environ.get("DISPLAY"):
        return
    if not platform and os.environ.get("WAYLAND_DISPLAY"):
        return
    missing = missing_xcb_libraries()
    if missing:
        raise DepthStudioError(f"the window needs the X11 libraries {', '.join(missing)}; install them "
                               f"(Debian/Ubuntu: sudo apt-get install {' '.join(missing)})")


def create_app(argv: list[str] | None = None):
    """The QApplication (created once), with DepthStudio's names, icon and theme."""
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    guard_none_refcount()
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
    """Open the main window with the photos named in ``argv`` (default: the command line).

    The ``depthstudio-gui`` entry point: problems a user can act on (no display, PySide6 missing)
    are one line on stderr and exit status 1, never a traceback.
    """
    from depthstudio.errors import DepthStudioError

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _launch(args)
    except DepthStudioError as exc:
        print(f"depthstudio gui: error: {exc}", file=sys.stderr)
        return 1


def _launch(args: list[str]) -> int:
    from depthstudio.errors import DepthStudioError

    try:
        importlib.import_module("PySide6")
    except ImportError:
        raise DepthStudioError("the desktop app needs PySide6: pip install 'depthstudio[gui]'") from None
    if sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise DepthStudioError("no display to open the window on (DISPLAY is not set); run it in a desktop "
                               "session, or under xvfb-run for a headless check")
    check_platform()
    app = create_app()
    preload()
    from depthstudio.workers import shared_inference

    shared_inference().start()  # the model process imports its libraries while the window opens
    from depthstudio.app.main_window import MainWindow

    window = MainWindow()
    window.show()
    paths = [a for a in args if not a.startswith("-")]
    if paths:
        window.open_paths(paths)
    return int(app.exec())
