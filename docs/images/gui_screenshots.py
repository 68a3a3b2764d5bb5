"""Take the screenshots in docs/images/gui-*.png from the real window on a real X server.

    xvfb-run -a -s "-screen 0 1920x1080x24" bash scripts/xvfb-session.sh \
        python docs/images/gui_screenshots.py [../shared/scenes/room] [photos...]

Qt's xcb platform under Xvfb with a window manager (openbox); each shot is the window as X has it
(``xwd -id WINDOW | convert xwd:- png:OUT``); a dialog over the window is read the same way and put
where it sits. Uses the room scene's true depth (no model weights needed), so what the views show is
real geometry; the first-launch shot has an empty model cache, as a new install does.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    if not os.environ.get("DISPLAY"):
        print("needs an X display: run it under xvfb-run (see the docstring)", file=sys.stderr)
        return 1
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    tmp = Path(tempfile.mkdtemp())
    os.environ["HF_HUB_CACHE"] = str(tmp / "empty-cache")  # a new install: no weights yet
    os.environ["HF_HUB_OFFLINE"] = "1"
    from PySide6.QtCore import QEventLoop, QSettings

    from depthstudio.app import create_app, preload

    app = create_app()
    preload()
    from depthstudio.app.main_window import MainWindow

    room = Path(argv[0]) if argv else HERE.parents[2] / "shared" / "scenes" / "room"
    extra = [Path(p) for p in argv[1:]]
    settings = QSettings(str(tmp / "shots.ini"), QSettings.Format.IniFormat)
    window = MainWindow(qsettings=settings)
    window.set_theme("dark")
    window.resize(1440, 900)
    window.move(40, 30)
    window.show()
    window.raise_()
    window.activateWindow()

    def pump(seconds: float = 0.0, until=None, timeout: float = 60.0) -> None:
        end = time.time() + (timeout if until else seconds)
        while time.time() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 30)
            if until is not None and until():
                break
            time.sleep(0.01)

    def grab_window(widget, target: Path) -> None:
        """``xwd -id WINDOW | convert xwd:- png:target``: the window as X has it."""
        xwd = subprocess.run(["xwd", "-id", str(int(widget.winId())), "-silent"],
                             capture_output=True, check=True).stdout
        subprocess.run(["convert", "xwd:-", f"png:{target}"], input=xwd, check=True)

    def shot(name: str, widget=None, over=None) -> None:
        """The window (default: the main one); ``over``: a dialog drawn where it sits on top of it.

        Dialogs are separate X windows (Qt may give them another visual, which ``xwd -root`` shows
        black), so each window is read on its own and the dialog composited at its place.
        """
        widget = widget or window
        pump(0.3)
        target = HERE / f"gui-{name}.png"
        grab_window(widget, target)
        if over is not None:
            part = tmp / "dialog.png"
            grab_window(over, part)
            dx = over.geometry().x() - widget.geometry().x()
            dy = over.geometry().y() - widget.geometry().y()
            subprocess.run(["convert", str(target), str(part), "-geometry", f"+{dx}+{dy}", "-composite",
                            f"png:{target}"], check=True)
        print("wrote", target)

    shown: list[str] = []
    window.views_updated.connect(shown.append)
    frames: dict[str, int] = {}
    window.render_service.frame_ready.connect(lambda key, frame, tag: frames.__setitem__(key, frames.get(key, 0) + 1))

    # first launch: no weights; the banner says what to do, nothing blocks
    window.open_paths([room / "rgb.png"])
    pump(until=lambda: window.document.current.photo is not None and window.photo_tab.view.has_image())
    pump(1.0)
    shot("first-launch")

    window.use_depth_file(room / "depth.npy", kind="metric")
    window.change_setting("camera", "fov_deg", 54.43)
    if extra:
        window.open_paths(extra)
        window.document.set_current(0)
    pump(until=lambda: window.derived is not None and window.derived.sections["camera"].fov_deg == 54.43)
    pump(1.0)
    window.show_tab(0)
    shot("photo")

    window.show_tab(1)
    pump(0.5)
    view = window.depth_tab.view
    image_w = view.image().width()
    view._hover(image_w * 0.36, view.image().height() * 0.55)  # the cursor over the sphere
    window._on_depth_hover(image_w * 0.36, view.image().height() * 0.55)
    shot("depth")

    window.show_tab(2)
    pump(until=lambda: frames.get("viewport", 0) > 0)
    pump(1.0)
    shot("3d-fit")  # the photo's own camera: the whole photo fits the view
    window.viewport_tab.orbit(-70, -35)
    window.viewport_tab.zoom(-2)
    pump(2.0)
    shot("3d")

    window.show_tab(3)
    pump(until=lambda: frames.get("parallax", 0) > 3, timeout=60)
    pump(1.2)
    window.parallax_tab.play.setChecked(False)
    pump(1.0)
    shot("parallax")

    window.show_tab(4)
    pump(until=lambda: "dof" in shown)
    window.change_setting("dof", "f_number", 1.4)
    dof_view = window.dof_tab.view
    n = shown.count("dof")
    dof_view.clicked.emit(dof_view.image().width() * 0.36, dof_view.image().height() * 0.55)
    pump(until=lambda: shown.count("dof") > n)
    pump(1.5)
    shot("dof")

    if window.stereo_preview is not None:  # red-cyan anaglyph, the Stereo settings beside it
        window.tabs.setCurrentWidget(window.stereo_preview)
        n = shown.count("stereo")
        window.change_setting("stereo", "layout", "anaglyph")
        pump(until=lambda: shown.count("stereo") > n and "anaglyph" in window.stereo_preview.info.text())
        window.panels.ensureWidgetVisible(window.panels.panels["stereo"], 0, 0)
        pump(1.0)
        shot("stereo")
        window.change_setting("stereo", "layout", "sbs")

    window.tabs.setCurrentWidget(window.compare_tab)
    window.compare_tab.left.setCurrentIndex(0)
    window.compare_tab.right.setCurrentIndex(1)
    window.compare_tab.canvas.split = 0.45
    window.compare_tab.refresh()
    shot("compare")

    if window.video_tab is not None:
        from depthstudio.video.synthetic import scene_frames, write_clip

        clip = write_clip(tmp / "walk.mp4", (rgb for rgb, _ in scene_frames(480, 270, 48)), fps=24, audio=False)
        window.tabs.setCurrentWidget(window.video_tab)
        window.video_tab.open(clip)
        pump(until=lambda: window.video_tab.frame_view.has_image())
        window.video_tab.slider.setValue(window.video_tab.slider.maximum() // 2)
        pump(1.5)
        shot("video")

    # the export dialog, over the window as a user sees it
    window.show_tab(0)
    window.change_setting("export", "formats", ("obj", "ply", "glb", "usdz"))
    out = tmp / "export"
    done: list = []
    window.export_finished.connect(done.append)
    window.change_setting("outputs", "parallax_video", True)  # a few seconds of frames: time to see the dialog
    window.export_items([window.document.current], folder=out, dialog=True)
    pump(until=lambda: getattr(window, "export_dialog", None) is not None and window.export_dialog.isVisible()
         and "parallax" in window.export_dialog.labelText(), timeout=120)
    pump(1.0)
    shot("export", over=window.export_dialog)
    pump(until=lambda: bool(done), timeout=300)
    pump(0.5)
    shot("exported")

    window.set_theme("light")
    window.show_tab(2)
    window.viewport_tab.mode.setCurrentIndex(2)
    window.viewport_tab.reset_view()
    window.viewport_tab.orbit(60, -20)
    pump(2.5)
    shot("light-wireframe")
    about = window.show_about()
    pump(0.8)
    shot("about", about)
    about.close()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
