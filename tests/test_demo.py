"""`depthstudio demo`: the bundled sample, the fallback to its own depth, and the script that makes it."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from depthstudio.paths import RESOURCES_DIR

REPO = RESOURCES_DIR.parent
SAMPLE = RESOURCES_DIR / "sample"


def run_cli(*args, timeout=300):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # no hub here: fail fast instead of waiting on the network
    return subprocess.run([sys.executable, "-m", "depthstudio", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def test_bundled_sample_is_consistent():
    from depthstudio.io.images import load_image

    cam = json.loads((SAMPLE / "camera.json").read_text())
    photo = load_image(SAMPLE / "image.png")
    depth = np.load(SAMPLE / "depth.npy")
    assert (photo.width, photo.height) == (cam["width"], cam["height"]) == (depth.shape[1], depth.shape[0])
    assert depth.dtype == np.float32 and (depth > 0).all()
    assert depth.min() == pytest.approx(cam["depth_min"]) and depth.max() == pytest.approx(cam["depth_max"])
    assert sum(p.stat().st_size for p in SAMPLE.iterdir()) < 1_000_000


def test_sample_script_reproduces_the_sample(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "make_sample_scene.py"), "-o", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "depth.npy"), np.load(SAMPLE / "depth.npy"), rtol=1e-6)
    assert json.loads((tmp_path / "camera.json").read_text())["fx"] == pytest.approx(
        json.loads((SAMPLE / "camera.json").read_text())["fx"])


def test_demo_without_a_model_uses_the_sample_depth(tmp_path):
    out = tmp_path / "demo"
    result = run_cli("demo", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "sample's own exact depth" in result.stdout and "Traceback" not in result.stderr
    names = ["sample.obj", "sample.mtl", "sample_texture.png", "sample.ply", "sample.glb", "sample.camera.json",
             "sample_depth.png", "sample_points.ply"]
    if importlib.util.find_spec("pxr"):  # USDZ needs usd-core; without it the demo says so and goes on
        names.append("sample.usdz")
    else:
        assert "no USDZ" in result.stdout
    if importlib.util.find_spec("moderngl") and importlib.util.find_spec("cv2"):
        names += ["sample_parallax.gif", "sample_anaglyph.png"]
    for name in names:
        assert (out / name).is_file(), name
    import trimesh

    mesh = trimesh.load(out / "sample.glb", process=False, force="mesh")
    cam = json.loads((SAMPLE / "camera.json").read_text())
    depth = np.load(SAMPLE / "depth.npy")
    # the exported mesh lies exactly on the sample's true depth
    x = cam["cx"] + cam["fx"] * mesh.vertices[:, 0] / -mesh.vertices[:, 2]
    y = cam["cy"] - cam["fy"] * mesh.vertices[:, 1] / -mesh.vertices[:, 2]
    truth = depth[np.floor(y).astype(int), np.floor(x).astype(int)]
    np.testing.assert_allclose(-mesh.vertices[:, 2], truth, rtol=1e-5)
    meta = json.loads((out / "sample.camera.json").read_text())
    assert meta["depth"]["model_id"] == "sample ground truth" and meta["focal_source"] == "flags"


def test_demo_with_a_model(tmp_path, tiny_onnx):
    out = tmp_path / "demo"
    result = run_cli("demo", "-o", str(out), "--model", str(tiny_onnx), "--steps", "mesh")
    assert result.returncode == 0, result.stderr
    assert f"estimated with {tiny_onnx.name}" in result.stdout
    meta = json.loads((out / "sample.camera.json").read_text())
    assert meta["depth"]["kind"] == "disparity" and meta["depth"]["model_id"] == tiny_onnx.name


def test_demo_is_a_list_of_steps():
    from depthstudio.commands import demo
    from depthstudio.errors import SettingsError

    assert demo.STEPS[:2] == [demo.step_depth, demo.step_mesh]
    assert all(callable(step) and step.__name__.startswith("step_") for step in demo.STEPS)
    assert demo.selected_steps("mesh") == [demo.step_depth, demo.step_mesh]
    assert demo.selected_steps(None) == demo.STEPS
    with pytest.raises(SettingsError, match="nope"):
        demo.selected_steps("mesh,nope")
