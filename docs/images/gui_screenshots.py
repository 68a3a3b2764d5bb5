"""Take the screenshots in docs/images/gui-*.png of the real window (offscreen Qt, Mesa GL).

    python docs/images/gui_screenshots.py [../shared/scenes/room] [photos...]

Uses the room scene's true depth (no model weights needed), so what the views show is real geometry.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    from PySide6.QtCore import QEventLoop, QPoint, QSettings
    from PySide6.QtGui import QPainter

    from depthstudio.app import create_app, preload

    app = create_app()
    preload()
    from depthstudio.app.main_window import MainWindow

    room = Path(argv[0]) if argv else HERE.parents[2] / "shared" / "scenes" / "room"
    extra = [Path(p) for p in argv[1:]]
    tmp = Path(tempfile.mkdtemp())
    settings = QSettings(str(tmp / "shots.ini"), QSettings.Format.IniFormat)
    window = MainWindow(qsettings=settings)
    window.set_theme("dark")
    window.resize(1440, 900)
    window.show()

    def pump(seconds: float = 0.0, until=None, timeout: float = 60.0) -> None:
        end = time.time() + (timeout if until else seconds)
        while time.time() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 30)
            if until is not None and until():
                break
            time.sleep(0.01)

    def shot(name: str, widget=None) -> None:
        (widget or window).grab().save(str(HERE / f"gui-{name}.png"))
        print("wrote", HERE / f"gui-{name}.png")

    window.change_setting("source", "kind", "metric")
    window.change_setting("camera", "fov_deg", 54.43)
    window.open_paths([room / "rgb.png"], depth=room / "depth.npy")
    if extra:
        window.document.add_paths(extra)
        for item in window.document.items[1:]:
            window._load(item)
    pump(until=lambda: window.derived is not None and window.derived.sections["camera"].fov_deg == 54.43)
    pump(until=lambda: all(i.photo is not None for i in window.document.items), timeout=30)
    pump(1.0)
    window.show_tab(0)
    pump(0.5)
    shot("photo")

    window.show_tab(1)
    pump(0.5)
    view = window.depth_tab.view
    image_w = view.image().width()
    view._hover(image_w * 0.36, view.image().height() * 0.55)  # the cursor over the sphere
    window._on_depth_hover(image_w * 0.36, view.image().height() * 0.55)
    pump(0.3)
    shot("depth")

    window.show_tab(2)
    pump(until=lambda: window.viewport_tab.frames > 0)
    window.viewport_tab.orbit(-70, -35)
    window.viewport_tab.zoom(-2)
    pump(2.0)
    shot("3d")

    window.show_tab(3)
    pump(until=lambda: window.parallax_tab.frames > 3, timeout=60)
    pump(1.2)
    window.parallax_tab.play.setChecked(False)
    pump(1.0)
    shot("parallax")

    window.show_tab(4)
    pump(until=lambda: window.dof_tab.renders > 0)
    window.change_setting("dof", "f_number", 1.4)
    dof_view = window.dof_tab.view
    window.dof_tab.view.clicked.emit(dof_view.image().width() * 0.36, dof_view.image().height() * 0.55)
    pump(until=lambda: window.dof_tab.renders > 1)
    pump(2.0)
    shot("dof")

    # the export dialog, over the window as a user sees it
    window.change_setting("export", "formats", ("obj", "ply", "glb", "usdz"))
    out = tmp / "export"
    done = []
    window.export_finished.connect(done.append)
    window.export_items(list(window.document.items), folder=out, dialog=True)
    pump(until=lambda: "(" in window.export_dialog.labelText() and window.export_dialog.value() > 50, timeout=60)
    base = window.grab()
    dialog = window.export_dialog.grab()
    painter = QPainter(base)
    painter.drawPixmap(QPoint((base.width() - dialog.width()) // 2, (base.height() - dialog.height()) // 2), dialog)
    painter.end()
    base.save(str(HERE / "gui-export.png"))
    print("wrote", HERE / "gui-export.png")
    pump(until=lambda: bool(done), timeout=300)

    window.set_theme("light")
    window.show_tab(2)
    window.viewport_tab.mode.setCurrentIndex(2)
    window.viewport_tab.reset_view()
    window.viewport_tab.orbit(60, -20)
    pump(2.5)
    shot("light-wireframe")
    about = window.show_about()
    pump(0.5)
    shot("about", about)
    about.close()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
