"""What the window adds on top of the core calls it wraps (goal: <= 10 %).

    python benchmarks/bench_gui.py [--photo PATH]

1. Drop a 12-megapixel photo -> first depth view, against the bare core calls
   (load_image + Estimator.predict), with a random-weight ViT-S Depth Anything in ONNX
   (the real da2-small's architecture and cost; no weights are needed).
2. Frame time of the 3D viewport at 1920x1080 (request -> frame on screen) against the bare
   OffscreenRenderer.render of the same scene at the same size.
3. Frame time of the parallax preview (request -> frame on screen) against the bare
   ParallaxRenderer.frame of the same photo, depth and settings.
Runs offscreen (QT_QPA_PLATFORM=offscreen) with EGL; on a machine without a GPU that is llvmpipe.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def twelve_mp_photo(folder: Path, source: Path | None) -> Path:
    import numpy as np
    from PIL import Image

    if source is not None and source.exists():
        img = Image.open(source).convert("RGB").resize((4000, 3000), Image.BICUBIC)
    else:
        y, x = np.mgrid[0:3000, 0:4000]
        rgb = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)
        img = Image.fromarray(rgb)
    path = folder / "twelve_mp.jpg"
    img.save(path, quality=92)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=REPO.parent / "shared" / "samples" / "photos" / "demo01.jpg")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from PySide6.QtCore import QEventLoop, QSettings

    from depthstudio.app import create_app, preload
    from depthstudio.io.images import load_image
    from depthstudio.models.estimator import load_estimator
    from depthstudio.models.onnx_export import export_onnx
    from depthstudio.models.random_init import make_random_model

    work = Path(tempfile.mkdtemp(prefix="bench-gui-"))
    print("making a random-weight ViT-S model (the real model's size and cost)…", flush=True)
    onnx_path = export_onnx(make_random_model(work / "vits", size="vits"), work / "vits.onnx", check=False)
    photo_path = twelve_mp_photo(work, args.photo)

    _app = create_app()  # kept alive for the whole run
    preload()
    from depthstudio.app.main_window import MainWindow

    def pump(until, timeout=600.0):
        """Run the event loop (sleeping between events, as the app does) until ``until()``."""
        from PySide6.QtCore import QTimer

        if until():
            return
        loop = QEventLoop()
        end = time.perf_counter() + timeout
        timer = QTimer()
        timer.setInterval(2)
        timer.timeout.connect(lambda: (until() or time.perf_counter() > end) and loop.quit())
        timer.start()
        loop.exec()
        timer.stop()
        if not until():
            raise TimeoutError("the window did not finish in time")

    # ---- 1. drop -> first depth view -------------------------------------------------------------
    # The machine may be shared: bare and GUI runs alternate, and the ratio is the median of the
    # per-pair ratios, so load that comes and goes hits both sides alike.
    estimator = load_estimator(str(onnx_path), "auto", 518)  # the same cached estimator the window uses
    estimator.predict(load_image(photo_path))  # warm up the session
    bare, gui, ratios = [], [], []
    for rep in range(args.repeat):
        t = time.perf_counter()
        estimator.predict(load_image(photo_path))
        bare.append(time.perf_counter() - t)

        settings = QSettings(str(work / "bench.ini"), QSettings.Format.IniFormat)
        settings.clear()
        window = MainWindow(qsettings=settings)
        window.resize(1920, 1200)
        window.show()
        window.change_setting("model", "model", str(onnx_path))
        window.show_tab(1)
        t = time.perf_counter()
        window.open_paths([photo_path])
        pump(lambda window=window: window.depth_tab.view.has_image())
        window.depth_tab.view.repaint()  # on screen
        gui.append(time.perf_counter() - t)
        ratios.append(gui[-1] / bare[-1])
        pump(lambda window=window: window.derived is not None)
        if rep < args.repeat - 1:
            window.close()
            window.viewport_tab.shutdown()
    b, g = statistics.median(bare), statistics.median(gui)
    print(f"drop 12 MP photo -> depth view: GUI {g:.2f} s, bare load_image + predict {b:.2f} s, "
          f"ratio {statistics.median(ratios):.2f}x (median of {args.repeat} alternating pairs)")

    # ---- 2. 3D viewport frame at 1080p ------------------------------------------------------------
    from depthstudio.app import gl_scene
    from depthstudio.render.camera_path import fit_intrinsics
    from depthstudio.render.gl import offscreen_context
    from depthstudio.render.layers import MeshLayer
    from depthstudio.render.scene import OffscreenRenderer, Scene

    window.show_tab(2)
    view = window.viewport_tab.view
    window.resize(1920 + (window.width() - view.width()), 1080 + (window.height() - view.height()))
    pump(lambda: window.viewport_tab.frames > 0)
    pump(lambda: not window.render_service.pending())
    size = (view.width(), view.height())
    frames = []
    window.render_service.frame_ready.connect(lambda key, frame, tag: frames.append(frame))
    derived = window.derived
    ctx = offscreen_context()
    import dataclasses

    scene = Scene(ctx, [MeshLayer.from_mesh(dataclasses.replace(derived.view_mesh, texture=derived.preview_rgb))])
    target = OffscreenRenderer(ctx, size)
    k = fit_intrinsics(derived.preview_intrinsics, *size)
    gui_t, bare_t = [], []
    for _ in range(24):
        n = len(frames)
        t = time.perf_counter()
        window.viewport_tab.orbit(3.0, 1.0)
        pump(lambda n=n: len(frames) > n)
        view.repaint()
        gui_t.append(time.perf_counter() - t)
        pose = gl_scene.orbit_pose(derived, window.viewport_tab.yaw, window.viewport_tab.pitch, 1.0, (0.0, 0.0))
        t = time.perf_counter()
        target.render(scene, pose, k, gl_scene.VIEW_BACKGROUND)
        bare_t.append(time.perf_counter() - t)
    ratios = [g / b for g, b in zip(gui_t[4:], bare_t[4:])]
    print(f"3D viewport frame at {size[0]}x{size[1]}: GUI {statistics.median(gui_t[4:]) * 1000:.1f} ms, bare "
          f"OffscreenRenderer.render {statistics.median(bare_t[4:]) * 1000:.1f} ms, ratio {statistics.median(ratios):.2f}x")
    target.release()
    scene.release()

    # ---- 3. parallax preview frame ----------------------------------------------------------------
    from depthstudio.io.images import Photo
    from depthstudio.render.parallax import ParallaxRenderer

    window.show_tab(3)
    window.parallax_tab.play.setChecked(False)
    pump(lambda: window.parallax_tab.frames > 0)
    pump(lambda: not window.render_service.pending())
    settings = window.document.sections["parallax"]
    renderer = ParallaxRenderer(Photo(rgb=derived.preview_rgb), (derived.preview_z, derived.preview_valid),
                                dataclasses.replace(settings, size=None), intrinsics=derived.preview_intrinsics, ctx=ctx)
    gui_t, bare_t = [], []
    for i in range(24):
        n = window.parallax_tab.frames
        t = time.perf_counter()
        window.viewport_tab.render_parallax("parallax", derived, settings, i / 24.0, size)
        window.parallax_tab._in_flight = True
        pump(lambda n=n: window.parallax_tab.frames > n)
        window.parallax_tab.view.repaint()
        gui_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        renderer.frame(i / 24.0)
        bare_t.append(time.perf_counter() - t)
    ratios = [g / b for g, b in zip(gui_t[4:], bare_t[4:])]
    gui_par, bare_par = statistics.median(gui_t[4:]), statistics.median(bare_t[4:])
    w, h = renderer.size
    print(f"parallax preview frame ({w}x{h} preview in a {size[0]}x{size[1]} view): GUI {gui_par * 1000:.1f} ms, "
          f"bare ParallaxRenderer.frame {bare_par * 1000:.1f} ms, ratio {statistics.median(ratios):.2f}x")
    renderer.release()
    window.close()
    window.viewport_tab.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
