"""The depth engine: preprocessing, both backends, ONNX export, the catalogue and weights on disk."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from depthstudio.errors import ModelError
from depthstudio.models.estimator import Estimator, load_estimator
from depthstudio.models.preprocess import network_size, prepare, resize_prediction


@pytest.fixture(scope="module")
def photo_rgb():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (12, 16, 3)).astype(np.uint8)
    return np.kron(base, np.ones((25, 25, 1), np.uint8))  # 300 x 400, blocky texture


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (1700, 1133), (100, 100), (33, 517), (2, 2), (4000, 30)])
def test_network_size_follows_the_reference(size):
    w, h = network_size(*size, input_size=518)
    assert w % 14 == 0 and h % 14 == 0
    if max(size) / min(size) <= 4:
        assert min(w, h) >= 518 and min(w, h) < 518 + 14
        # the aspect ratio is kept up to the rounding to 14 px
        assert abs(w / h - size[0] / size[1]) <= 14 / min(w, h) * (size[0] / size[1]) + 1e-9
    else:
        assert max(w, h) <= 4 * 518  # extreme strips are capped, not blown up


def test_prepare_normalises_with_imagenet_statistics():
    rgb = np.full((50, 70, 3), 255, np.uint8)
    x = prepare(rgb, input_size=56)
    assert x.shape == (1, 3, 56, 84) and x.dtype == np.float32
    expected = (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(x[0, :, 10, 10], expected, rtol=1e-5)


def test_resize_prediction_is_bilinear_with_aligned_corners():
    pred = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)
    out = resize_prediction(pred, 4, 2)
    assert out.shape == (2, 4)
    np.testing.assert_allclose(out[0], [0.0, 1 / 3, 2 / 3, 1.0], atol=1e-6)  # as F.interpolate(align_corners=True)
    torch = pytest.importorskip("torch")
    pred = np.random.default_rng(0).standard_normal((37, 50)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(pred)[None, None], (301, 99), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(resize_prediction(pred, 99, 301), expected[0, 0].numpy(), atol=1e-5)


def test_backends_agree(tiny_model_dir, tiny_onnx, photo_rgb):
    onnx = load_estimator(str(tiny_onnx), "onnx").predict(photo_rgb)
    torch = load_estimator(str(tiny_model_dir), "torch").predict(photo_rgb)
    assert onnx.values.shape == torch.values.shape == (300, 400)
    assert onnx.values.std() > 1e-3  # the tiny model is not constant: the comparison means something
    np.testing.assert_allclose(onnx.values, torch.values, rtol=1e-4, atol=1e-5 * float(np.abs(torch.values).max()))
    assert onnx.kind == torch.kind == "disparity"
    assert onnx.meta["backend"] == "onnx" and torch.meta["backend"] == "torch"


def test_export_is_dynamic_in_height_and_width(tiny_onnx, tiny_model_dir):
    est = load_estimator(str(tiny_onnx), "onnx")
    for h, w in ((98, 154), (266, 182), (518, 700)):
        out = est.forward(np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32))
        assert out.shape == (1, h, w)
    assert est.backend.metadata["depth_kind"] == "disparity"


def test_plain_export_freezes_the_output_size(tiny_model_dir, tmp_path):
    """The pitfall our exporter avoids: transformers' head turns the traced size into Python ints."""
    import onnxruntime as ort
    import torch

    from depthstudio.models.torch_backend import load_transformers_model

    model = load_transformers_model(tiny_model_dir)

    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, x):
            return self.m(pixel_values=x).predicted_depth

    path = tmp_path / "plain.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Plain().eval(), (torch.randn(1, 3, 98, 98),), str(path), input_names=["x"],
                          dynamic_axes={"x": {2: "h", 3: "w"}}, opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": np.zeros((1, 3, 140, 196), np.float32)})[0]
    assert out.shape[-2:] == (98, 98)  # frozen: which is why export_onnx does not do this


def test_fixed_size_onnx_gets_its_fixed_size(tiny_model_dir, tmp_path, photo_rgb):
    import torch

    from depthstudio.models.onnx_export import _wrapper
    from depthstudio.models.torch_backend import load_transformers_model

    path = tmp_path / "fixed.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_wrapper(load_transformers_model(tiny_model_dir)), (torch.randn(1, 3, 196, 252),), str(path),
                          input_names=["image"], opset_version=17, dynamo=False)
    est = load_estimator(str(path), "onnx")
    assert est.backend.fixed_size == (252, 196)
    depth = est.predict(photo_rgb)
    assert depth.values.shape == (300, 400) and np.isfinite(depth.values).all()


def test_metric_model_reports_metric(tiny_metric_model_dir, photo_rgb):
    depth = load_estimator(str(tiny_metric_model_dir), "torch").predict(photo_rgb)
    assert depth.kind == "metric" and (depth.values > 0).all()


def test_batch_matches_single(tiny_onnx, photo_rgb):
    est = load_estimator(str(tiny_onnx), "onnx")
    frames = [photo_rgb, photo_rgb[::-1].copy()]
    batch = est.predict_batch(frames)
    np.testing.assert_allclose(batch[1].values, est.predict(frames[1]).values, rtol=1e-4, atol=1e-6)


def test_alpha_becomes_the_mask(tiny_onnx, photo_rgb):
    rgba = np.dstack([photo_rgb, np.full(photo_rgb.shape[:2], 255, np.uint8)])
    rgba[:100, :, 3] = 0
    depth = load_estimator(str(tiny_onnx)).predict(rgba)
    assert not depth.valid[:100].any() and depth.valid[100:].all()


def test_corrupt_and_foreign_onnx_are_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 50)
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        load_estimator(str(corrupt))
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "classifier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])])
    foreign = tmp_path / "classifier.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(foreign))
    with pytest.raises(ModelError, match="not a depth model"):
        load_estimator(str(foreign))


def test_pickled_weights_are_never_loaded(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelError, match="model.safetensors"):
        load_estimator(str(folder))


def test_unknown_model_names_the_catalogue():
    with pytest.raises(ModelError, match="da2-small"):
        load_estimator("da9-gigantic")


def _cli(args, env_extra, cwd):
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "depthstudio", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def test_offline_and_not_cached_gives_one_clear_message(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 30), (90, 120, 150)).save(tmp_path / "a.png")
    result = _cli(["depth", str(tmp_path / "a.png"), "-o", str(tmp_path / "out")],
                  {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.count("\n") == 0, message
    for words in ("da2-small", "onnx-community/depth-anything-v2-small/onnx/model.onnx", "--model", "offline"):
        assert words in message
    assert not (tmp_path / "out" / "a_depth.npy").exists()


def test_model_placed_in_the_cache_loads_offline(tmp_path, tiny_onnx):
    """A copy in the Hugging Face cache layout is found with no network (HF_HUB_OFFLINE=1)."""
    from PIL import Image

    snapshot = tmp_path / "hub" / "models--onnx-community--depth-anything-v2-small" / "snapshots" / ("0" * 40)
    (snapshot / "onnx").mkdir(parents=True)
    (snapshot / "onnx" / "model.onnx").write_bytes(Path(tiny_onnx).read_bytes())
    refs = snapshot.parents[1] / "refs"
    refs.mkdir()
    (refs / "main").write_text("0" * 40)
    Image.new("RGB", (40, 30), (90, 120, 150)).save(tmp_path / "a.png")
    result = _cli(["depth", str(tmp_path / "a.png"), "-o", str(tmp_path / "out")],
                  {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "out" / "a_depth.npy").shape == (30, 40)


def test_estimator_rejects_tiny_input_size(tiny_onnx):
    from depthstudio.models.onnx_backend import OnnxBackend
    from depthstudio.models.weights import resolve

    source = resolve(str(tiny_onnx))
    with pytest.raises(ModelError, match="input size"):
        Estimator(OnnxBackend(source.path), source, input_size=7)


def test_unreachable_hub_is_reported_as_such(tmp_path):
    """No offline switch, but the hub cannot be reached (a closed port on loopback)."""
    from PIL import Image

    Image.new("RGB", (40, 30), (90, 120, 150)).save(tmp_path / "a.png")
    result = _cli(["depth", str(tmp_path / "a.png"), "-o", str(tmp_path / "out")],
                  {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0"}, tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no route to 127.0.0.1" in result.stderr and "da2-small" in result.stderr
