"""The window's OpenGL views (3D viewport, parallax and stereo previews) drawn for real by the shared renderer.

CI runs this under Xvfb with Mesa; the views render offscreen through EGL (llvmpipe without a GPU),
so the tests skip only where no OpenGL 3.3 context can be made at all.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("moderngl")

from test_gui import make_depth, make_photo, model_runs, open_with_depth  # noqa: E402

pytestmark = [pytest.mark.gl, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def gl_available():
    from depthstudio.render.gl import RenderError, create_context

    try:
        ctx = create_context()
    except RenderError as exc:
        pytest.skip(f"no OpenGL context: {exc}")
    ctx.release()
    return True


@pytest.fixture
def window(qtbot, tmp_path, gl_available):
    from PySide6.QtCore import QSettings

    from depthstudio.app import create_app
    from depthstudio.app.main_window import MainWindow

    create_app()
    settings = QSettings(str(tmp_path / "gl.ini"), QSettings.Format.IniFormat)
    w = MainWindow(qsettings=settings)
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    yield w
    w.runner.cancel_all()
    w.runner.wait(20000)
    w.viewport_tab.shutdown()


def lit_fraction(frame: np.ndarray) -> float:
    """Share of pixels that differ from the viewport's background."""
    from depthstudio.app.gl_scene import VIEW_BACKGROUND

    bg = np.round(np.array(VIEW_BACKGROUND) * 255)
    return float((np.abs(frame.astype(int) - bg).sum(axis=2) > 12).mean())


def test_3d_view_renders_the_mesh_and_follows_the_mouse(qtbot, window, tmp_path):
    open_with_depth(qtbot, window, make_photo(tmp_path / "p.png"), make_depth(tmp_path / "p.npy"))
    frames = []
    window.render_service.frame_ready.connect(lambda key, frame, tag: key == "viewport" and frames.append(frame))
    window.show_tab(2)
    qtbot.waitUntil(lambda: len(frames) >= 1, timeout=60000)
    front = frames[-1]
    assert front.shape[0] > 100 and front.shape[1] > 100
    assert lit_fraction(front) > 0.3  # the photo's mesh fills most of the view from the photo's camera
    # the mesh is textured with the photo: the yellow box shows up
    yellow = (front[..., 0] > 180) & (front[..., 1] > 150) & (front[..., 2] < 100)
    assert yellow.mean() > 0.01

    # orbit with the mouse: the picture changes
    from PySide6.QtCore import QPoint, Qt

    view = window.viewport_tab.view
    n = len(frames)
    centre = view.rect().center()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(view, centre + QPoint(120, 40))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=centre + QPoint(120, 40))
    qtbot.waitUntil(lambda: len(frames) > n and window.viewport_tab.yaw != 0, timeout=60000)
    qtbot.waitUntil(lambda: not window.render_service.pending(), timeout=60000)
    qtbot.wait(300)
    orbited = frames[-1]
    assert orbited.shape == front.shape and np.abs(orbited.astype(int) - front).mean() > 5

    # wireframe and points show the same geometry with fewer lit pixels (a coarser grid: no moire)
    for index, mode in ((2, "wireframe"), (1, "points")):
        n = len(frames)
        window.viewport_tab.mode.setCurrentIndex(index)
        qtbot.waitUntil(lambda n=n: len(frames) > n, timeout=60000)
        qtbot.waitUntil(lambda: not window.render_service.pending(), timeout=60000)
        qtbot.wait(200)
        assert 0.01 < lit_fraction(frames[-1]) < lit_fraction(orbited) + 0.05, mode


def test_parallax_preview_plays_and_follows_its_settings(qtbot, window, tmp_path, tiny_onnx):
    runs = model_runs(window)
    window.change_setting("model", "model", str(tiny_onnx))
    open_with_depth(qtbot, window, make_photo(tmp_path / "q.png"))
    assert len(runs) == 1
    # the tiny model's depth in the 3D view: non-empty pixels
    views = []
    window.render_service.frame_ready.connect(lambda key, frame, tag: key == "viewport" and views.append(frame))
    window.show_tab(2)
    qtbot.waitUntil(lambda: len(views) >= 1, timeout=60000)
    assert lit_fraction(views[-1]) > 0.05
    frames = []
    window.render_service.frame_ready.connect(lambda key, frame, tag: key == "parallax" and frames.append(frame.copy()))
    window.show_tab(3)
    qtbot.waitUntil(lambda: len(frames) >= 3, timeout=60000)  # it plays
    assert any(np.abs(a.astype(int) - b).mean() > 0.5 for a, b in zip(frames, frames[1:]))
    assert frames[-1].mean() > 10

    # a new preset and intensity re-render the preview from the cached depth
    window.parallax_tab.play.setChecked(False)
    qtbot.waitUntil(lambda: not window.render_service.pending(), timeout=60000)
    window.change_setting("parallax", "path.preset", "zoom-in")
    window.change_setting("parallax", "path.intensity", 3.0)
    n = len(frames)
    qtbot.waitUntil(lambda: len(frames) > n, timeout=60000)
    assert "zoom-in" in window.parallax_tab.info.text()
    assert len(runs) == 1


def test_export_dof_still_and_parallax_video(qtbot, window, tmp_path):
    photo = make_photo(tmp_path / "fx.png")
    open_with_depth(qtbot, window, photo, make_depth(tmp_path / "fx.npy"))
    for section, name, value in (("export", "formats", ("glb",)), ("outputs", "depth", True),
                                 ("outputs", "dof_still", True), ("outputs", "parallax_video", True)):
        assert window.change_setting(section, name, value) is None
    window.change_setting("parallax", "path.duration", 1.0)
    out = tmp_path / "effects"
    with qtbot.waitSignal(window.export_finished, timeout=120000) as signal:
        window.export_items([window.document.current], folder=out, dialog=False)
    result = signal.args[0]
    assert result is not None and not result.failed, result and result.failed
    names = {p.name for p in out.iterdir()}
    assert {"fx.glb", "fx.camera.json", "fx_depth.png", "fx_dof.png", "fx_parallax.mp4", "fx.settings.json"} <= names
    from PIL import Image

    assert Image.open(out / "fx_dof.png").size == (160, 120)
    import av

    with av.open(str(out / "fx_parallax.mp4")) as clip:
        frames = sum(1 for _ in clip.decode(video=0))
    assert frames == 30  # 1 s at the default 30 fps


@pytest.mark.parametrize("view_size", [(420, 640), (1000, 360)])
def test_3d_view_fits_the_whole_photo(qtbot, window, tmp_path, view_size):
    """A narrow (or wide) viewport shows the whole photo at its own camera, and so does reset."""
    photo = make_photo(tmp_path / "fit.png", 320, 200)
    open_with_depth(qtbot, window, photo, make_depth(tmp_path / "fit.npy", 320, 200))
    frames = []
    window.render_service.frame_ready.connect(lambda key, frame, tag: key == "viewport" and frames.append(frame))
    window.show_tab(2)
    view = window.viewport_tab.view
    window.resize(window.width() + view_size[0] - view.width(), window.height() + view_size[1] - view.height())
    qtbot.waitUntil(lambda: len(frames) >= 1 and frames[-1].shape[1] == max(64, int(view.width() * view.devicePixelRatioF())),
                    timeout=60000)
    qtbot.waitUntil(lambda: not window.render_service.pending(), timeout=60000)
    qtbot.wait(200)
    frame = frames[-1]
    from depthstudio.app.gl_scene import VIEW_BACKGROUND

    lit = np.abs(frame.astype(int) - np.round(np.array(VIEW_BACKGROUND) * 255)).sum(axis=2) > 12
    rows, cols = np.nonzero(lit)
    h, w = frame.shape[:2]
    # the photo's 16:10 rectangle is fully inside the view: lit area's aspect is the photo's, and it touches
    # two opposite sides of the view (contain, not cover)
    aspect = (cols.max() - cols.min() + 1) / (rows.max() - rows.min() + 1)
    assert aspect == pytest.approx(320 / 200, rel=0.06)
    assert cols.min() <= 2 and cols.max() >= w - 3 or rows.min() <= 2 and rows.max() >= h - 3
    # orbit away and reset: the same framing again
    window.viewport_tab.orbit(80, 30)
    window.viewport_tab.reset_view()
    n = len(frames)
    qtbot.waitUntil(lambda: len(frames) > n, timeout=60000)
    qtbot.waitUntil(lambda: not window.render_service.pending(), timeout=60000)
    qtbot.wait(200)
    assert np.abs(frames[-1].astype(int) - frame).mean() < 2


# ---- the Stereo tab: the stereo settings' layout drawn by the core's StereoRenderer ----------------------
def show_stereo(qtbot, window, tmp_path, name: str = "st"):
    """Open a photo with depth, switch to the Stereo tab and wait for its first picture."""
    open_with_depth(qtbot, window, make_photo(tmp_path / f"{name}.png"), make_depth(tmp_path / f"{name}.npy"))
    tab = window.stereo_preview
    assert tab is not None
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.view.has_image(), timeout=60000)
    return tab


def shown(tab) -> np.ndarray:
    """The picture the tab shows (and the view's image has its size)."""
    image = tab.view.image()
    assert (image.width(), image.height()) == (tab.picture.shape[1], tab.picture.shape[0])
    return tab.picture


def test_stereo_tab_comes_after_depth_of_field_and_shows_two_different_eyes(qtbot, window, tmp_path):
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles.index("Stereo") == titles.index("Depth of field") + 1
    tab = show_stereo(qtbot, window, tmp_path)
    assert window.document.sections["stereo"].layout == "sbs"  # the core's default, never the app's
    picture = shown(tab)
    h, w = picture.shape[:2]
    assert w == 2 * 160 and h == 120  # two preview-sized eyes side by side
    left, right = picture[:, : w // 2].astype(int), picture[:, w // 2:].astype(int)
    # the box at 2 m shifts against the wall at 4 m between the eyes
    assert np.abs(left - right).mean() > 2.0
    assert "sbs" in tab.info.text() and "baseline" in tab.info.text()


def test_changing_the_stereo_layout_setting_redraws_the_preview(qtbot, window, tmp_path):
    tab = show_stereo(qtbot, window, tmp_path)
    sbs = shown(tab)
    renderer_calls = []
    window.views_updated.connect(lambda what: what == "stereo" and renderer_calls.append(what))
    assert window.change_setting("stereo", "layout", "anaglyph") is None
    qtbot.waitUntil(lambda: tab.view.has_image() and shown(tab).shape[1] == 160, timeout=60000)
    anaglyph = shown(tab)
    assert anaglyph.shape[:2] == (120, 160) and sbs.shape[:2] == (120, 320)
    # red-cyan: the red channel comes from the left eye, green / blue from the right; the box edges fringe
    assert np.abs(anaglyph[..., 0].astype(int) - anaglyph[..., 1].astype(int)).mean() > 5
    assert "anaglyph (dubois)" in tab.info.text()
    # one prepared renderer for the photo: the layout only updated it
    renderer = window.render_service.state["stereo"]
    assert renderer.preparations == 1 and renderer.settings.layout == "anaglyph"
    assert tab.layout_editor.widget.currentText() == "anaglyph"  # the tab's Layout follows the setting
    # undo brings side by side back
    window.undo_stack.undo()
    qtbot.waitUntil(lambda: shown(tab).shape[1] == 320, timeout=60000)
    assert window.render_service.state["stereo"] is renderer
    assert tab.layout_editor.widget.currentText() == "sbs"
    # the tab's own Layout box is the same undoable change as the panel's
    tab.layout_editor.widget.setCurrentText("tb")
    qtbot.waitUntil(lambda: shown(tab).shape[:2] == (240, 160), timeout=60000)
    assert window.document.sections["stereo"].layout == "tb"
    assert window.panels.panels["stereo"].editor("layout").widget.currentText() == "tb"


def test_stereo_settings_panel_is_made_from_the_settings_metadata(qtbot, window):
    from depthstudio.render.stereo import LAYOUTS

    panel = window.panels.panels["stereo"]
    assert panel.title() == "Stereo"
    names = {name for section, name in panel.editors if section == "stereo"}
    assert {"layout", "baseline", "divergence", "convergence", "anaglyph"} <= names
    assert not any(n.startswith("render.path") for n in names) and "render.fps" not in names
    combo = panel.editor("layout").widget
    assert [combo.itemData(i) or combo.itemText(i) for i in range(combo.count())] == list(LAYOUTS)


def test_export_writes_the_stereo_image(qtbot, window, tmp_path):
    photo = make_photo(tmp_path / "ex.png")
    open_with_depth(qtbot, window, photo, make_depth(tmp_path / "ex.npy"))
    for section, name, value in (("outputs", "stereo", True), ("outputs", "mesh", False), ("outputs", "depth", False),
                                 ("stereo", "layout", "anaglyph")):
        assert window.change_setting(section, name, value) is None
    out = tmp_path / "stereo-out"
    with qtbot.waitSignal(window.export_finished, timeout=120000) as signal:
        window.export_items([window.document.current], folder=out, dialog=False)
    result = signal.args[0]
    assert result is not None and not result.failed, result and result.failed
    assert {p.name for p in out.iterdir()} == {"ex_anaglyph.png", "ex.settings.json"}
    from PIL import Image

    written = np.asarray(Image.open(out / "ex_anaglyph.png").convert("RGB"))
    assert written.shape == (120, 160, 3)
    # the same picture as `depthstudio stereo` makes from the same photo, depth and settings
    from depthstudio.depthmap import DepthMap
    from depthstudio.render.stereo import render_stereo

    sections = window.document.sections
    depth = DepthMap(np.load(tmp_path / "ex.npy"), "metric")
    expected = render_stereo(photo, depth, settings=sections["stereo"], camera=sections["camera"],
                             mapping=sections["mapping"])["picture"]
    assert np.abs(written.astype(int) - expected.astype(int)).mean() < 1.0
