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
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no depthstudio on PATH
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    Request = engine.Request
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
    """A failing executable's last stderr line comes back, without the CLI's prefix."""
    exe = tmp_path / "depthstudio"
    exe.write_text("#!/bin/sh\necho 'depthstudio: error: photo.jpg: cannot read image' >&2\nexit 1\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(engine.AddonError, match=r"failed on photo\.jpg: photo\.jpg: cannot read image$"):
        engine.estimate_external(tmp_path / "photo.jpg", "da2-small", 518, str(exe), lambda f, m: None)


def test_external_reads_the_written_depth(engine, tmp_path):
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
    depth = engine.estimate_external(tmp_path / "photo.jpg", "da2-metric-indoor-small", 518, str(exe),
                                     lambda f, m: seen.append(f))
    assert depth.shape == (4, 6) and np.all(depth.values == 2.5)
    assert depth.kind == "metric" and seen and all(0 <= f <= 1 for f in seen)
