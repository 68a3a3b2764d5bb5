"""The add-on's engine (plugins/blender/engine.py) has no bpy: its routing is checked here, fast."""
from __future__ import annotations

import importlib.util
import json
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def engine():
    spec = importlib.util.spec_from_file_location("depthstudio_blender_engine", REPO / "plugins" / "blender" / "engine.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture
def hf_folder(tmp_path) -> Path:
    folder = tmp_path / "hf-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"depth_estimation_type": "metric"}))
    (folder / "model.safetensors").write_bytes(b"")
    return folder


@pytest.fixture
def fake_exe(tmp_path) -> Path:
    exe = tmp_path / "depthstudio"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


def test_routes(engine, hf_folder, fake_exe, tmp_path, monkeypatch):
    from depthstudio.source import ModelSettings

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no depthstudio on PATH
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")

    def Request(path, model="da2-small", **kw):  # the engine takes the core's settings objects
        return engine.Request(path, model=ModelSettings(model=str(model)), **kw)

    assert engine.choose_route(Request("a.jpg", model=str(onnx))) == "blender"
    assert engine.choose_route(Request("a.jpg", model="da2-small")) == "blender"  # has ONNX weights
    assert engine.choose_route(Request("a.jpg", model=str(hf_folder), executable=str(fake_exe))) == "external"
    assert engine.choose_route(Request("a.jpg", model=str(onnx), route="EXTERNAL", executable=str(fake_exe))) == "external"
    with pytest.raises(engine.AddonError, match="needs PyTorch"):
        engine.choose_route(Request("a.jpg", model=str(hf_folder), route="BLENDER"))
    with pytest.raises(engine.AddonError, match="needs PyTorch.*no `depthstudio` executable"):
        engine.choose_route(Request("a.jpg", model=str(hf_folder)))
    with pytest.raises(engine.AddonError, match="does not exist or is not executable"):
        engine.choose_route(Request("a.jpg", model=str(onnx), route="EXTERNAL", executable=str(tmp_path / "nope")))
    with pytest.raises(engine.AddonError, match="unknown inference route"):
        engine.choose_route(Request("a.jpg", route="GPU"))


def test_model_kind_without_loading(engine, hf_folder, tmp_path):
    assert engine.model_kind(str(hf_folder)) == "metric"
    assert engine.model_kind("da2-small") == "disparity"
    assert engine.model_kind("da2-metric-indoor-small") == "metric"
    assert engine.needs_torch(str(hf_folder)) and engine.needs_torch("da2-base")
    assert not engine.needs_torch("da2-small") and not engine.needs_torch(str(tmp_path / "x.onnx"))


def test_external_failure_is_one_clear_line(engine, tmp_path):
    from depthstudio.source import ModelSettings

    """A failing executable's last stderr line comes back, without the CLI's prefix."""
    exe = tmp_path / "depthstudio"
    exe.write_text("#!/bin/sh\necho 'depthstudio: error: photo.jpg: cannot read image' >&2\nexit 1\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(engine.AddonError, match=r"failed on photo\.jpg: photo\.jpg: cannot read image$"):
        engine.estimate_external(tmp_path / "photo.jpg", ModelSettings(model="da2-small"), str(exe))


def test_external_reads_the_written_depth(engine, tmp_path):
    from depthstudio.jobs import Job
    from depthstudio.source import ModelSettings

    """The external route runs `depthstudio depth IMAGE -o DIR --model M` and reads <stem>_depth.npy."""
    exe = tmp_path / "depthstudio"
    exe.write_text(
        "#!/bin/sh\n"
        "# args: depth IMAGE -o OUT --model M --input-size N\n"
        f"\"{sys.executable}\" -c \"import numpy as np, sys; "
        "np.save(sys.argv[1] + '/photo_depth.npy', np.full((4, 6), 2.5, np.float32))\" \"$4\"\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    seen = []
    job = Job(listener=lambda j: seen.append(j.fraction))
    depth = engine.estimate_external(tmp_path / "photo.jpg", ModelSettings(model="da2-metric-indoor-small"),
                                     str(exe), job)
    assert depth.shape == (4, 6) and np.all(depth.values == 2.5)
    assert depth.kind == "metric" and seen and all(0 <= f <= 1 for f in seen) and seen[-1] == 1.0


def test_build_from_core_settings_with_a_depth_folder_and_export(engine, tmp_path):
    """The engine takes the core's settings objects, pairs depth files through the core's DepthSource,
    reports through a Job, and exports with a settings file the core reads back as the same settings."""
    from PIL import Image

    from depthstudio.geometry.camera import CameraSettings
    from depthstudio.geometry.export import ExportSettings
    from depthstudio.geometry.mesh import MeshSettings
    from depthstudio.jobs import Job
    from depthstudio.settings import load_section, read_settings_file
    from depthstudio.source import DepthFileSettings, ModelSettings

    photos, depths = tmp_path / "photos", tmp_path / "depths"
    photos.mkdir(), depths.mkdir()
    for name, value in (("a", 2.0), ("b", 3.0)):
        Image.new("RGB", (12, 8), (10, 20, 30)).save(photos / f"{name}.png")
        np.save(depths / f"{name}.npy", np.full((8, 12), value, np.float32))
    files = DepthFileSettings(depth=depths, depth_kind="metric")
    camera = CameraSettings(fx=20.0, fy=22.0, cx=5.0, cy=3.5)
    request_a = engine.Request(str(photos / "a.png"), files=files, camera=camera, mesh=MeshSettings(edge_cut=None))
    source = engine.depth_source(request_a)
    seen = []
    result = engine.build(request_a, Job(listener=lambda j: seen.append(j.fraction)), source)
    assert result.route == "file" and seen == sorted(seen) and seen[-1] == pytest.approx(0.9)
    assert (result.intrinsics.fx, result.intrinsics.fy, result.intrinsics.cx, result.intrinsics.cy) == (20, 22, 5, 3.5)
    assert np.allclose(-result.geometry.vertices[:, 2], 2.0)
    result_b = engine.build(engine.Request(str(photos / "b.png"), files=files, camera=camera), None, source)
    assert np.allclose(-result_b.geometry.vertices[:, 2], 3.0)  # b's depth file, paired by stem
    written = engine.export(result, request_a, tmp_path / "out", ExportSettings(formats=("ply",)))
    assert {p.name for p in written} >= {"a.ply", "a.camera.json", "a.settings.json"}
    saved = read_settings_file(tmp_path / "out" / "a.settings.json")
    for settings in request_a.sections().values():
        assert load_section(type(settings), saved) == settings
    assert load_section(ModelSettings, saved) == ModelSettings()


def test_exr_fallback_reader_goes_through_the_core_checks(tmp_path, monkeypatch):
    """Without OpenEXR (Blender's Python) the core reads EXR through the reader the add-on registers
    (Blender's image loader), then applies its own checks: resize to the photo, aspect ratio."""
    from depthstudio.errors import InputError
    from depthstudio.geometry import depth as depth_module

    exr = tmp_path / "z.exr"
    exr.write_bytes(b"EXR pixels the fallback reads")
    monkeypatch.setitem(sys.modules, "OpenEXR", None)  # import OpenEXR raises ImportError
    monkeypatch.setattr(depth_module, "exr_fallback", lambda path: np.full((4, 6), 2.0, np.float32))
    read = depth_module.read_depth_file(exr, "metric", size=(12, 8))
    assert read.shape == (8, 12) and np.allclose(read.values, 2.0) and read.meta["depth_file"] == str(exr)
    with pytest.raises(InputError, match="aspect ratio"):
        depth_module.read_depth_file(exr, "metric", size=(8, 8))
    monkeypatch.setattr(depth_module, "exr_fallback", None)
    with pytest.raises(InputError, match="needs the OpenEXR package"):
        depth_module.read_depth_file(exr, "metric")
