"""The desktop app, driven like a user would (pytest-qt, offscreen; the GL viewport is in test_gui_gl.py)."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

pytestmark = pytest.mark.timeout(180)


# ---- helpers ---------------------------------------------------------------------------------------
def make_photo(path: Path, w: int = 160, h: int = 120) -> Path:
    """A photo with a bright box in front of a gradient wall (enough structure for edges)."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    rgb[h // 4: h // 2, w // 4: w // 2] = (230, 200, 40)
    Image.fromarray(rgb).save(path)
    return path


def make_depth(path: Path, w: int = 160, h: int = 120) -> Path:
    """Metric depth: a wall at 4 m with a box at 2 m (a real discontinuity for the edge cut)."""
    z = np.full((h, w), 4.0, np.float32)
    z[h // 4: h // 2, w // 4: w // 2] = 2.0
    np.save(path, z)
    return path


@pytest.fixture
def qsettings(tmp_path) -> QSettings:
    s = QSettings(str(tmp_path / "depthstudio.ini"), QSettings.Format.IniFormat)
    s.clear()
    return s


@pytest.fixture
def make_window(qtbot, qsettings):
    from depthstudio.app import create_app, preload
    from depthstudio.app.main_window import MainWindow

    create_app()
    preload()  # as launch() does before the window shows
    windows = []

    def factory(settings: QSettings | None = None):
        window = MainWindow(qsettings=settings or qsettings)
        qtbot.addWidget(window)
        window.resize(1100, 720)
        window.show()
        windows.append(window)
        return window

    yield factory
    for window in windows:
        window.runner.cancel_all()
        window.runner.wait(20000)
        window.viewport_tab.shutdown()


def open_with_depth(qtbot, window, photo: Path, depth: Path | None = None, timeout: int = 60000):
    if depth is not None:
        window.change_setting("source", "kind", "metric")
    window.open_paths([photo], depth=depth)
    qtbot.waitUntil(lambda: window.derived is not None, timeout=timeout)
    return window.derived


def close_dialogs():
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QMessageBox) and widget.isVisible():
            widget.close()


# ---- the pipeline ----------------------------------------------------------------------------------
def test_photo_to_depth_and_previews_without_reinference(qtbot, make_window, tiny_onnx, tmp_path):
    window = make_window()
    assert window.change_setting("model", "model", str(tiny_onnx)) is None
    photo = make_photo(tmp_path / "wall.png")
    derived = open_with_depth(qtbot, window, photo)

    # the depth appears (colour-mapped, with a readout) and came from one model run
    assert window.inference_runs == 1
    assert window.depth_tab.view.has_image()
    assert derived.depth_view.z.shape == (120, 160)
    assert window.photo_tab.view.has_image()
    depth_view = window.depth_tab.view
    rect = depth_view.image_rect()
    z, raw = depth_view.value_at(80.0, 100.0)
    assert 1.0 <= z <= 10.0  # inside the default near/far mapping
    assert window.panels.panels["camera"].source.text().startswith("default")

    # DoF preview updates when its settings change, without inference
    window.show_tab(4)
    qtbot.waitUntil(lambda: window.dof_tab.renders >= 1, timeout=60000)
    before = window.dof_tab.renders
    window.change_setting("dof", "f_number", 1.4)
    qtbot.waitUntil(lambda: window.dof_tab.renders > before, timeout=60000)

    # a mesh setting rebuilds the geometry from the cached depth, without inference
    old = window.derived
    window.change_setting("mesh", "edge_cut", 0.5)
    qtbot.waitUntil(lambda: window.derived is not old, timeout=60000)
    assert window.derived.sections["mesh"].edge_cut == 0.5

    # near/far change the mapped depth, still without inference
    old = window.derived
    window.change_setting("mapping", "far", 40.0)
    qtbot.waitUntil(lambda: window.derived is not old, timeout=60000)
    assert window.derived.depth_view.z_range[1] > old.depth_view.z_range[1]
    assert window.inference_runs == 1

    # only a model setting runs the model again
    window.change_setting("model", "input_size", 266)
    qtbot.waitUntil(lambda: window.inference_runs == 2, timeout=60000)
    assert rect.isValid()


def test_camera_panel_and_click_to_focus(qtbot, make_window, tmp_path):
    window = make_window()
    photo = make_photo(tmp_path / "box.png")
    open_with_depth(qtbot, window, photo, make_depth(tmp_path / "box_depth.npy"))
    assert window.inference_runs == 0  # the user's own depth: no model ran
    assert window.derived.depth_view.kind == "metric"

    window.change_setting("camera", "fov_deg", 45.0)
    qtbot.waitUntil(lambda: window.derived.sections["camera"].fov_deg == 45.0, timeout=30000)
    assert abs(window.derived.intrinsics.hfov_deg - 45.0) < 1e-6
    assert "your settings" in window.panels.panels["camera"].source.text()

    # click the box (2 m) in the DoF preview: focus moves there, as an undoable change
    window.show_tab(4)
    qtbot.waitUntil(lambda: window.dof_tab.view.has_image(), timeout=60000)
    view = window.dof_tab.view
    rect = view.image_rect()
    target = QPointF(rect.left() + rect.width() * 0.375, rect.top() + rect.height() * 0.375)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=target.toPoint())
    assert window.document.get("dof", "focus_distance") == pytest.approx(2.0, abs=0.05)
    window.undo_stack.undo()
    assert window.document.get("dof", "focus_distance") is None
    window.undo_stack.redo()
    assert window.document.get("dof", "focus_distance") == pytest.approx(2.0, abs=0.05)


def test_undo_redo_and_bad_settings(qtbot, make_window):
    window = make_window()
    doc = window.document
    window.change_setting("mapping", "near", 2.0)
    window.change_setting("mapping", "near", 2.5)  # merges with the previous step
    assert doc.get("mapping", "near") == 2.5
    window.undo_stack.undo()
    assert doc.get("mapping", "near") == 1.0
    window.undo_stack.redo()
    assert doc.get("mapping", "near") == 2.5
    # an impossible value is refused with a message and never enters the undo stack
    count = window.undo_stack.count()
    error = window.change_setting("mapping", "far", 1.0)
    assert error and "near" in error
    assert doc.get("mapping", "far") == 10.0 and window.undo_stack.count() == count
    # the panel shows what the document holds
    editor = window.panels.panels["mapping"].editors["near"]
    assert editor.widget.value() == pytest.approx(2.5)
    # editing a panel widget goes through the same path
    editor.widget.setValue(3.0)
    assert doc.get("mapping", "near") == 3.0


# ---- export ---------------------------------------------------------------------------------------
def test_export_writes_what_the_cli_writes(qtbot, make_window, tmp_path):
    from depthstudio.cli import main as cli_main

    photo = make_photo(tmp_path / "scene.png")
    depth = make_depth(tmp_path / "scene_depth.npy")
    window = make_window()
    open_with_depth(qtbot, window, photo, depth)
    window.change_setting("export", "formats", ("obj", "ply", "glb"))
    window.change_setting("export", "depth_png", False)
    window.change_setting("mesh", "edge_cut", 0.1)
    gui_out = tmp_path / "gui"
    with qtbot.waitSignal(window.export_finished, timeout=120000) as signal:
        window.export_items([window.document.current], folder=gui_out, dialog=True)
    result = signal.args[0]
    assert result is not None and not result.failed

    cli_out = tmp_path / "cli"
    code = cli_main(["mesh", str(photo), "-o", str(cli_out), "--depth", str(depth), "--depth-kind", "metric",
                     "--format", "obj,ply,glb", "--edge-cut", "0.1"])
    assert code == 0
    cli_files = sorted(p.name for p in cli_out.iterdir())
    gui_files = sorted(p.name for p in gui_out.iterdir() if p.name != "depthstudio-settings.json")
    assert gui_files == cli_files
    for name in cli_files:
        a, b = (gui_out / name).read_bytes(), (cli_out / name).read_bytes()
        if name.endswith(".camera.json"):
            ja, jb = json.loads(a), json.loads(b)
            assert ja["intrinsics"] == jb["intrinsics"] and ja["geometry"] == jb["geometry"]
            assert ja["depth"]["kind"] == jb["depth"]["kind"] == "metric"
        else:
            assert a == b, name
    saved = json.loads((gui_out / "depthstudio-settings.json").read_text())
    assert saved["settings"]["mesh"]["edge_cut"] == 0.1
    assert not [p for p in gui_out.iterdir() if p.name.startswith(".")]


def test_batch_export_cancel_leaves_no_partial_files(qtbot, make_window, tmp_path):
    window = make_window()
    photos = [make_photo(tmp_path / f"p{i}.png", 640, 480) for i in range(6)]
    depth_dir = tmp_path / "depth"
    depth_dir.mkdir()
    for p in photos:
        make_depth(depth_dir / f"{p.stem}.npy", 640, 480)
    window.change_setting("source", "kind", "metric")
    window.open_paths(photos, depth=depth_dir)
    window.change_setting("export", "formats", ("obj", "ply", "glb"))
    out = tmp_path / "out"
    seen = []

    def on_progress(fraction, message):
        seen.append(fraction)
        if len(seen) == 2:
            window.cancel_work()

    task = window.export_items(list(window.document.items), folder=out, dialog=False)
    task.signals.progress.connect(on_progress)
    with qtbot.waitSignal(window.export_finished, timeout=120000) as signal:
        pass
    assert signal.args[0] is None  # cancelled
    assert task.state == "cancelled"
    leftovers = [p.name for p in out.iterdir()] if out.exists() else []
    # whole photos only: every photo that has any file has all of them, and nothing half-written
    assert not [n for n in leftovers if n.startswith(".") or ".part" in n]
    started = []
    for photo in photos:
        stem = photo.stem
        mine = {n for n in leftovers if n.split(".")[0] in (stem, f"{stem}_texture", f"{stem}_depth")}
        if mine:
            started.append(stem)
            assert {f"{stem}.obj", f"{stem}.mtl", f"{stem}_texture.png", f"{stem}.ply", f"{stem}.glb",
                    f"{stem}.camera.json"} <= mine
    assert len(started) < len(photos)


# ---- bad input ------------------------------------------------------------------------------------
def test_corrupt_photo_shows_a_dialog_and_keeps_the_work(qtbot, make_window, tmp_path):
    window = make_window()
    good = make_photo(tmp_path / "good.png")
    open_with_depth(qtbot, window, good, make_depth(tmp_path / "good_depth.npy"))
    derived = window.derived
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with qtbot.waitSignal(window.error_shown, timeout=30000) as signal:
        window.open_paths([bad])
    assert "broken.jpg" in signal.args[0]
    assert window.error_dialog.isVisible()
    close_dialogs()
    # the good photo and its depth are still there
    window.document.set_current(0)
    assert window.document.items[0].depth is not None
    qtbot.waitUntil(lambda: window.derived is not None, timeout=30000)
    assert window.derived.depth_view.z.shape == derived.depth_view.z.shape


def test_missing_model_offline_shows_a_dialog(qtbot, make_window, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    try:
        import huggingface_hub.constants as hc

        monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True, raising=False)
        monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty-cache"), raising=False)
    except ImportError:
        pass
    from depthstudio.models import estimator

    estimator._cached.cache_clear()
    window = make_window()
    window.change_setting("model", "model", "da2-base")
    with qtbot.waitSignal(window.error_shown, timeout=60000) as signal:
        window.open_paths([make_photo(tmp_path / "offline.png")])
    message = signal.args[0]
    assert "da2-base" in message and "--model" in message
    close_dialogs()
    # the photo stays open and usable: the user's own depth still works
    assert window.document.current.photo is not None
    window.change_setting("source", "kind", "metric")
    window.use_depth_file(make_depth(tmp_path / "offline_depth.npy"))
    qtbot.waitUntil(lambda: window.derived is not None, timeout=30000)


def test_missing_photo_and_bad_model_file(qtbot, make_window, tmp_path):
    window = make_window()
    with qtbot.waitSignal(window.error_shown, timeout=30000) as signal:
        window.open_paths([tmp_path / "nope.jpg"])
    assert "nope.jpg" in signal.args[0]
    close_dialogs()
    not_a_model = tmp_path / "weights.bin"
    not_a_model.write_bytes(b"pickle")
    window.change_setting("model", "model", str(not_a_model))
    with qtbot.waitSignal(window.error_shown, timeout=30000) as signal:
        window.open_paths([make_photo(tmp_path / "x.png")])
    assert "weights.bin" in signal.args[0]
    close_dialogs()
    assert window.isVisible()


# ---- desktop habits -------------------------------------------------------------------------------
def test_drag_and_drop_opens_photos(qtbot, make_window, tmp_path):
    window = make_window()
    photo = make_photo(tmp_path / "dropped.png")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    pos = QPointF(window.width() / 2, window.height() / 2)
    # what the platform sends: enter, then drop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    event = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)
    assert [i.path for i in window.document.items] == [photo]
    qtbot.waitUntil(lambda: window.photo_tab.view.has_image(), timeout=30000)
    # non-images are refused
    text = tmp_path / "notes.md"
    text.write_text("hello")
    mime2 = QMimeData()
    mime2.setUrls([QUrl.fromLocalFile(str(text))])
    assert window._dropped_paths(mime2) == []


def test_recent_files_and_settings_survive_a_restart(qtbot, make_window, qsettings, tmp_path):
    window = make_window()
    a, b = make_photo(tmp_path / "a.png"), make_photo(tmp_path / "b.png")
    window.open_paths([a])
    window.open_paths([b])
    window.change_setting("mapping", "far", 25.0)
    window.change_setting("mesh", "points", True)
    window.set_theme("dark")
    window.show_tab(1)
    window.resize(1000, 650)
    window.close()

    again = make_window(qsettings)
    assert again.recent_files()[:2] == [str(b.resolve()), str(a.resolve())]
    actions = [act for act in again.recent_menu.actions() if act.data()]
    assert [Path(act.data()).name for act in actions[:2]] == ["b.png", "a.png"]
    assert again.document.get("mapping", "far") == 25.0
    assert again.document.get("mesh", "points") is True
    assert again.panels.panels["mapping"].editors["far"].widget.value() == 25.0
    assert again.theme_choice == "dark"
    assert again.tabs.currentIndex() == 1
    # opening from the recent menu works
    actions[1].trigger()
    assert again.document.current.path == a


def test_about_box_lists_model_licences(qtbot, make_window):
    window = make_window()
    box = window.show_about()
    text = box.text()
    assert "da2-small" in text and "Apache-2.0" in text and "CC-BY-NC-4.0" in text
    assert "depth-pro" in text and "Apple sample code licence" in text and "metric, focal" in text
    box.close()
    model_panel = window.panels.panels["model"]
    assert "Apache-2.0" in model_panel.combo.itemText(model_panel.combo.findData("da2-small"))


def test_gui_command_reports_missing_file(capsys):
    from depthstudio.cli import main as cli_main

    assert cli_main(["gui", "/nonexistent/photo.jpg"]) == 1
    assert "photo.jpg" in capsys.readouterr().err


def test_document_has_no_qt():
    import subprocess
    import sys

    code = ("import sys, depthstudio.app.document, depthstudio.app.core, depthstudio.app.events; "
            "print(any(m.startswith('PySide6') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- responsiveness -------------------------------------------------------------------------------
def test_event_loop_keeps_answering_during_inference_and_export(qtbot, make_window, tiny_onnx, tmp_path):
    """A 10 ms timer probe runs while the model and an export work: the UI thread never stalls > 100 ms."""
    import time

    from PySide6.QtCore import QTimer

    window = make_window()
    window.change_setting("model", "model", str(tiny_onnx))
    window.change_setting("export", "formats", ("obj", "ply", "glb"))
    photo = make_photo(tmp_path / "big.png", 1000, 750)
    stamps: list[float] = []
    probe = QTimer()
    probe.setInterval(10)
    probe.timeout.connect(lambda: stamps.append(time.perf_counter()))
    probe.start()
    qtbot.wait(50)
    window.open_paths([photo])
    qtbot.waitUntil(lambda: window.derived is not None, timeout=120000)
    assert window.inference_runs == 1
    with qtbot.waitSignal(window.export_finished, timeout=180000) as signal:
        window.export_items([window.document.current], folder=tmp_path / "out", dialog=True)
    probe.stop()
    assert signal.args[0] is not None and not signal.args[0].failed
    gaps = np.diff(stamps)
    assert len(gaps) > 50
    print(f"probe: {len(gaps)} ticks, longest gap {gaps.max() * 1000:.0f} ms at tick {gaps.argmax()}")
    assert gaps.max() < 0.100, f"the UI thread stalled for {gaps.max() * 1000:.0f} ms"


def test_long_sessions_do_not_exhaust_none():
    """PySide6 6.12 on Python 3.11 drops a reference to None per void call; the app must survive
    a long session (here 300k calls, more than None's own reference count) without aborting."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from depthstudio.app import create_app\n"
        "app = create_app()\n"
        "from PySide6.QtWidgets import QLabel\n"
        "label = QLabel()\n"
        "for i in range(300_000):\n"
        "    label.setText('x')\n"
        "print('alive', sys.getrefcount(None) > 1_000_000)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "alive True" in out.stdout


def test_gui_command_opens_the_photo(tmp_path):
    """`depthstudio gui PHOTO` opens the window with the photo; a timer in the child process reports
    what the window holds and closes it (run apart: the command runs its own event loop)."""
    import subprocess
    import sys

    photo = make_photo(tmp_path / "cli.png")
    code = f"""
import os, sys
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
from depthstudio.app import create_app
from depthstudio.app.main_window import MainWindow
from depthstudio.cli import main

create_app()
QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, {str(tmp_path / "config")!r})

def check():
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, MainWindow) and widget.isVisible():
            print("OPEN", [i.path.name for i in widget.document.items], widget.windowTitle(), flush=True)
            widget.close()
    QApplication.quit()

QTimer.singleShot(500, check)
code = main(["gui", {str(photo)!r}])
print("EXIT", code, flush=True)
os._exit(code)
"""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OPEN ['cli.png'] cli.png — DepthStudio" in out.stdout
    assert "EXIT 0" in out.stdout


def test_download_button_offline_shows_a_dialog(qtbot, make_window, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        import huggingface_hub.constants as hc

        monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True, raising=False)
        monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty-cache"), raising=False)
    except ImportError:
        pass
    window = make_window()
    panel = window.panels.panels["model"]
    window.change_setting("model", "model", "da1-small")
    assert panel.download.isVisible() and "not downloaded" in panel.status.text()
    assert "Apache-2.0" in panel.info.text()
    with qtbot.waitSignal(window.error_shown, timeout=60000) as signal:
        qtbot.mouseClick(panel.download, Qt.MouseButton.LeftButton)
    assert "da1-small" in signal.args[0]
    close_dialogs()
    assert panel.download.isEnabled() and not panel.progress.isVisible()
