"""Models beyond Depth Anything: Depth Pro (metric + field of view), MoGe-2 (point map, mask,
normals, focal from its published ONNX interface), Prompt Depth Anything / Distill-Any-Depth in the
catalogue; the model's focal length as the camera source "model"; clear refusals of foreign models."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from depthstudio.errors import ModelError

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
F = torch.nn.functional


# ---- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def depth_pro_dir(tmp_path_factory):
    from depthstudio.models.random_init import make_random_depth_pro

    return make_random_depth_pro(tmp_path_factory.mktemp("models") / "tiny-depth-pro")


@pytest.fixture(scope="module")
def depth_pro_onnx(depth_pro_dir, tmp_path_factory):
    from depthstudio.models.onnx_export import export_onnx

    return export_onnx(depth_pro_dir, tmp_path_factory.mktemp("onnx") / "tiny-depth-pro.onnx")


@pytest.fixture(scope="module")
def photos(request):
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:300, 0:400]
    images = [np.stack([(xx * 0.6) % 256, (yy * 0.9) % 256, ((xx - yy) * 0.4) % 256], -1).astype(np.uint8),
              rng.integers(0, 256, (233, 177, 3), np.uint8)]
    try:
        paths = request.getfixturevalue("sample_photos")[:2]
    except pytest.skip.Exception:
        paths = []
    from PIL import Image

    for path in paths:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((800, 800))
            images.append(np.asarray(img))
    return images


def rel_l1(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - b).mean() / np.abs(b).mean())


# ---- Depth Pro ---------------------------------------------------------------------------------
def depth_pro_reference(model, rgb: np.ndarray, side: int):
    """transformers' DepthProImageProcessor where it imports (it needs torchvision), else its
    documented steps: RGB / 255, mean / std 0.5, bilinear resize without antialiasing to the square
    input; inverse depth = prediction * W / f with f = W / 2 / tan(fov / 2), bilinear back to the
    photo, depth = 1 / clamp(inverse depth, 1e-4, 1e4)."""
    h, w = rgb.shape[:2]
    try:
        from transformers import DepthProImageProcessor

        processor = DepthProImageProcessor(size={"height": side, "width": side})
        inputs = processor(images=rgb, return_tensors="pt")
        with torch.inference_mode():
            out = model(**inputs)
        result = processor.post_process_depth_estimation(out, target_sizes=[(h, w)])[0]
        return result["predicted_depth"].numpy(), float(result["focal_length"]), "DepthProImageProcessor"
    except ImportError:
        pass
    x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255.0
    x = (x - 0.5) / 0.5
    x = F.interpolate(x, (side, side), mode="bilinear", align_corners=False, antialias=False)
    with torch.inference_mode():
        out = model(pixel_values=x)
        fov = out.field_of_view[0].double()
        focal = 0.5 * w / torch.tan(0.5 * torch.deg2rad(fov))
        inverse = out.predicted_depth[0].double() * w / focal
        inverse = F.interpolate(inverse[None, None], (h, w), mode="bilinear", align_corners=False)[0, 0]
        depth = 1.0 / torch.clamp(inverse, 1e-4, 1e4)
    return depth.numpy(), float(focal), "documented steps (torchvision is not installed)"


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_depth_pro_matches_the_reference_processing(backend, depth_pro_dir, depth_pro_onnx, photos):
    from depthstudio.models.estimator import load_estimator
    from depthstudio.models.torch_backend import load_transformers_model

    model = load_transformers_model(depth_pro_dir)
    est = load_estimator(str(depth_pro_onnx if backend == "onnx" else depth_pro_dir), backend)
    assert est.arch == "depth-pro" and est.kind == "metric" and est.backend.fixed_size == (128, 128)
    for rgb in photos:
        depth = est.predict(rgb)
        reference, focal, how = depth_pro_reference(model, rgb, 128)
        assert reference.std() > 1e-4 * reference.mean(), how
        assert depth.values.shape == reference.shape
        assert rel_l1(depth.values, reference) <= 0.01, how
        assert depth.focal_px == pytest.approx(focal, rel=0.005), how
        assert depth.meta["model_focal_px"] == pytest.approx(focal, rel=0.005)


def test_depth_pro_export_is_checked_on_several_inputs(depth_pro_dir, depth_pro_onnx):
    import onnxruntime as ort

    from depthstudio.models.onnx_export import check_depth_pro_export
    from depthstudio.models.torch_backend import load_transformers_model

    worst = check_depth_pro_export(load_transformers_model(depth_pro_dir), depth_pro_onnx, 128)
    assert worst["depth"] < 1e-4 and worst["fov"] < 1e-4
    session = ort.InferenceSession(str(depth_pro_onnx), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 128, 128]  # the fixed size is part of the file
    assert [o.name for o in session.get_outputs()] == ["predicted_depth", "field_of_view"]


def test_depth_pro_focal_is_the_camera_source_model(depth_pro_dir, photos):
    from depthstudio.geometry.camera import CameraSettings
    from depthstudio.geometry.pipeline import build_mesh
    from depthstudio.io.images import Photo
    from depthstudio.models.estimator import load_estimator

    rgb = photos[0]
    depth = load_estimator(str(depth_pro_dir), "torch").predict(rgb)
    _, k, meta = build_mesh(Photo(rgb=rgb), depth)
    assert k.source == "model" and meta["focal_source"] == "model"
    assert k.fx == pytest.approx(depth.focal_px) and k.fx != pytest.approx(0.5 * rgb.shape[1] / math.tan(math.radians(30)))
    assert meta["depth"]["model_focal_px"] == pytest.approx(depth.focal_px)
    # flags and EXIF still win
    _, k, _ = build_mesh(Photo(rgb=rgb), depth, CameraSettings(fov_deg=70))
    assert k.source == "flags" and k.hfov_deg == pytest.approx(70)
    _, k, _ = build_mesh(Photo(rgb=rgb, exif={"focal_length_35mm": 28.0}), depth)
    assert k.source == "exif-35mm"
    # the focal follows the depth map when it is resized to another photo size
    from depthstudio.geometry.depth import resize_depth

    half = resize_depth(depth, (rgb.shape[1] // 2, rgb.shape[0] // 2))
    assert half.focal_px == pytest.approx(depth.focal_px * (rgb.shape[1] // 2) / rgb.shape[1])


def test_model_focal_reaches_camera_json_and_mesh_through_the_cli(depth_pro_dir, tmp_path, capsys):
    from PIL import Image

    from depthstudio.cli import main
    from depthstudio.models.estimator import load_estimator

    rgb = np.random.default_rng(2).integers(0, 256, (90, 120, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "p.png")
    expected = load_estimator(str(depth_pro_dir), "torch").predict(rgb).focal_px
    assert main(["mesh", str(tmp_path / "p.png"), "-o", str(tmp_path / "out"), "--model", str(depth_pro_dir),
                 "--backend", "torch", "--format", "obj"]) == 0
    meta = json.loads((tmp_path / "out" / "p.camera.json").read_text())
    assert meta["focal_source"] == "model" and meta["intrinsics"]["fx"] == pytest.approx(expected)
    assert meta["depth"]["kind"] == "metric"
    assert main(["mesh", str(tmp_path / "p.png"), "-o", str(tmp_path / "out2"), "--model", str(depth_pro_dir),
                 "--backend", "torch", "--format", "obj", "--fov", "50"]) == 0
    meta = json.loads((tmp_path / "out2" / "p.camera.json").read_text())
    assert meta["focal_source"] == "flags"


# ---- MoGe-2 through its published ONNX interface ------------------------------------------------
#: The synthetic scene the tiny graph "sees": a plane n . X = d (OpenCV camera frame), a camera
#: whose focal length is F_HD half-diagonals, an affine point map with shift T and scale 1 / S.
F_HD, T, S = 1.3, 0.7, 2.5
PLANE_N = np.array([0.2, -0.5, -0.84]) / np.linalg.norm([0.2, -0.5, -0.84])
PLANE_D = -3.0


def make_moge_onnx(path, scale_name="metric_scale"):
    """A graph with MoGe-2's published interface: inputs image (N, 3, H, W) in [0, 1] and num_tokens
    (int64 scalar); outputs points (N, H, W, 3), normal (N, H, W, 3), mask (N, H, W) in [0, 1] and
    metric_scale (N,). Its point map is the plane above, seen through the camera above, divided by
    S with its z shifted by -T; the top-left quarter is "sky" (mask 0)."""
    import warnings

    class TinyMoGe(torch.nn.Module):
        def forward(self, image, num_tokens):
            n, _, h, w = image.shape
            hd = torch.sqrt((h * h + w * w).float() if torch.is_tensor(h) else torch.tensor(float(h * h + w * w))) / 2
            u = (torch.arange(w).float() + 0.5 - w / 2) / hd
            v = (torch.arange(h).float() + 0.5 - h / 2) / hd
            vv, uu = torch.meshgrid(v, u, indexing="ij")
            ray = torch.stack([uu / F_HD, vv / F_HD, torch.ones_like(uu)], -1)
            normal = torch.tensor(PLANE_N, dtype=torch.float32)
            z = PLANE_D / (ray * normal).sum(-1)
            points = ray * z[..., None]
            points = torch.stack([points[..., 0], points[..., 1], points[..., 2] - T], -1) / S
            points = points[None].expand(n, -1, -1, -1) + 0 * image.mean()
            mask = 1.0 - ((uu < 0) & (vv < 0)).float()
            mask = mask[None].expand(n, -1, -1)
            normals = normal.expand(n, h, w, 3) * 1.0
            scale = S * torch.ones(n) + 0 * num_tokens.float()
            return points, normals, mask, scale

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TinyMoGe(), (torch.rand(1, 3, 70, 98), torch.tensor(1800)), str(path),
                          input_names=["image", "num_tokens"], output_names=["points", "normal", "mask", scale_name],
                          dynamic_axes={"image": {0: "batch_size", 2: "height", 3: "width"}}, opset_version=17, dynamo=False)
    return path


@pytest.mark.parametrize("scale_name", ["metric_scale", "scale"])
def test_moge2_point_map_becomes_metric_depth_focal_mask_and_normals(tmp_path, scale_name):
    from depthstudio.models.estimator import load_estimator

    path = make_moge_onnx(tmp_path / "moge.onnx", scale_name)
    est = load_estimator(str(path), "onnx")
    assert est.arch == "moge-2" and est.kind == "metric" and est.backend.num_tokens == 1369
    w, h = 160, 120
    depth = est.predict(np.zeros((h, w, 3), np.uint8))
    # truth at the photo's pixel centres
    hd = math.hypot(w, h) / 2
    u = (np.arange(w) + 0.5 - w / 2) / hd
    v = (np.arange(h) + 0.5 - h / 2) / hd
    uu, vv = np.meshgrid(u, v)
    z_true = PLANE_D / (uu / F_HD * PLANE_N[0] + vv / F_HD * PLANE_N[1] + PLANE_N[2])
    sky = (uu < 0) & (vv < 0)
    assert depth.focal_px == pytest.approx(F_HD * hd, rel=0.005)
    assert not depth.valid[sky].any() and depth.valid[~sky].mean() > 0.97
    ok = depth.valid
    assert rel_l1(depth.values[ok], z_true[ok]) < 0.01
    expected_normal = PLANE_N * np.array([1, -1, -1])  # OpenCV -> x right, y up, facing the camera
    np.testing.assert_allclose(depth.normals[ok].mean(0), expected_normal, atol=1e-3)
    assert depth.normals[ok][:, 2].min() > 0


def test_moge2_refuses_photos_outside_its_aspect_range(tmp_path):
    from depthstudio.models.estimator import load_estimator

    est = load_estimator(str(make_moge_onnx(tmp_path / "moge.onnx")), "onnx")
    with pytest.raises(ModelError, match="1:2 and 2:1"):
        est.predict(np.zeros((50, 200, 3), np.uint8))


def test_recover_focal_shift_on_noisy_points():
    from depthstudio.models.families import moge_uv, recover_focal_shift

    w, h = 200, 150
    uv = moge_uv(w, h)
    rng = np.random.default_rng(0)
    z = 2.0 + rng.random((h, w))  # any depths
    xy = uv / 0.9 * z[..., None]
    points = np.dstack([xy, z - 1.7]) * (1 + 1e-3 * rng.standard_normal((h, w, 1)))
    f, t = recover_focal_shift(points, np.ones((h, w), bool))
    assert f == pytest.approx(0.9, rel=0.01) and t == pytest.approx(1.7, rel=0.02)


# ---- refusals -----------------------------------------------------------------------------------
def test_onnx_with_a_multi_channel_output_is_refused_naming_its_shape(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from depthstudio.models.estimator import load_estimator

    node = helper.make_node("Identity", ["x"], ["rgb"])
    graph = helper.make_graph([node], "image2image", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["N", 3, "H", "W"])])
    path = tmp_path / "image2image.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    with pytest.raises(ModelError, match=r"\(N, 3, H, W\).*3 channels, not one depth") as info:
        load_estimator(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unsupported_transformers_folder_is_refused_naming_what_is_supported(tmp_path):
    from depthstudio.models.estimator import load_estimator

    folder = tmp_path / "glpn"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "glpn", "architectures": ["GLPNForDepthEstimation"]}))
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError) as info:
        load_estimator(str(folder), "torch")
    message = str(info.value)
    assert "glpn" in message and "GLPNForDepthEstimation" in message
    for supported in ("depth_anything", "depth_pro", "prompt_depth_anything"):
        assert supported in message


def test_prompt_depth_anything_runs_through_the_depth_anything_path(tmp_path):
    from depthstudio.models.estimator import load_estimator
    from depthstudio.models.random_init import make_random_prompt_depth_anything

    folder = make_random_prompt_depth_anything(tmp_path / "pda")
    est = load_estimator(str(folder), "torch")
    depth = est.predict(np.random.default_rng(0).integers(0, 256, (60, 80, 3), np.uint8))
    assert est.arch == "prompt-depth-anything" and depth.kind == "metric" and depth.values.shape == (60, 80)
    assert depth.focal_px is None


# ---- the catalogue ------------------------------------------------------------------------------
NEW_MODELS = ["depth-pro", "distill-any-depth-small", "distill-any-depth-large", "prompt-da-vits", "prompt-da-vitl",
              "moge-2-vits", "moge-2-vitb", "moge-2-vitl"]


def test_catalogue_entries_state_outputs_licence_input_rule_backends(capsys):
    from depthstudio.cli import main
    from depthstudio.models.catalogue import CATALOGUE

    assert CATALOGUE["depth-pro"].licence == "Apple sample code licence"
    assert CATALOGUE["depth-pro"].outputs == ["metric", "focal"] and "1536" in CATALOGUE["depth-pro"].input_rule
    assert set(CATALOGUE["moge-2-vits"].outputs) >= {"metric", "focal", "normals", "mask"}
    assert CATALOGUE["moge-2-vits"].backends == ("onnx",) and CATALOGUE["depth-pro"].backends == ("torch",)
    assert CATALOGUE["distill-any-depth-small"].outputs == ["disparity"]
    for name in NEW_MODELS:
        assert main(["models", "info", name]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["licence"] and data["outputs"] and data["input_size_rule"] and data["backends"]
        assert data["files"] and all(data["files"].values())


@pytest.mark.parametrize("name", NEW_MODELS)
def test_offline_message_names_the_files_of_each_new_model(name, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from depthstudio.models.catalogue import CATALOGUE
    from depthstudio.models.weights import resolve

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    info = CATALOGUE[name]
    with pytest.raises(ModelError) as caught:
        resolve(name, "auto")
    message = str(caught.value)
    assert name in message and "offline" in message and "--model" in message and "\n" not in message
    for file in info.files_needed(info.backends[0]):
        assert file in message


def test_onnx_only_model_on_torch_is_a_clear_error():
    from depthstudio.models.weights import resolve

    with pytest.raises(ModelError, match="ONNX only.*--backend onnx"):
        resolve("moge-2-vits", "torch")


@pytest.mark.parametrize("points", [False, True])
def test_model_normals_replace_computed_ones_in_the_mesh(points):
    from depthstudio.depthmap import DepthMap
    from depthstudio.geometry.mesh import MeshSettings
    from depthstudio.geometry.pipeline import build_mesh
    from depthstudio.io.images import Photo

    h, w = 40, 60
    normals = np.zeros((h, w, 3), np.float32)
    normals[:] = [0.6, 0.0, 0.8]  # not what the flat depth below implies: (0, 0, 1)
    depth = DepthMap(np.full((h, w), 2.0, np.float32), "metric", normals=normals, focal_px=50.0)
    obj, k, meta = build_mesh(Photo(rgb=np.zeros((h * 2, w * 2, 3), np.uint8)), depth, mesh=MeshSettings(points=points))
    assert k.source == "model" and k.fx == pytest.approx(100.0)  # the focal scaled to the photo
    np.testing.assert_allclose(obj.normals, np.broadcast_to([0.6, 0.0, 0.8], obj.normals.shape), atol=1e-4)
    assert meta["mesh"]["normals_from"] == "model"
    plain = DepthMap(np.full((h, w), 2.0, np.float32), "metric")
    obj, _, meta = build_mesh(Photo(rgb=np.zeros((h, w, 3), np.uint8)), plain)
    assert meta["mesh"]["normals_from"] == "depth" and abs(float(obj.normals[:, 2].mean()) - 1.0) < 1e-3


def test_depth_command_keeps_the_focal_for_later_meshes(depth_pro_dir, tmp_path, capsys):
    """`depthstudio depth` writes <stem>_depth.json beside the depth of a focal-estimating model;
    `depthstudio mesh --depth` on that folder keeps the camera source "model"."""
    from PIL import Image

    from depthstudio.cli import main

    rgb = np.random.default_rng(4).integers(0, 256, (90, 120, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "p.png")
    assert main(["depth", str(tmp_path / "p.png"), "-o", str(tmp_path / "d"), "--model", str(depth_pro_dir),
                 "--backend", "torch"]) == 0
    sidecar = json.loads((tmp_path / "d" / "p_depth.json").read_text())
    assert sidecar["kind"] == "metric" and sidecar["focal_px"] > 0 and sidecar["width"] == 120
    assert main(["mesh", str(tmp_path / "p.png"), "-o", str(tmp_path / "m"), "--depth", str(tmp_path / "d"),
                 "--depth-kind", "metric", "--format", "obj"]) == 0
    meta = json.loads((tmp_path / "m" / "p.camera.json").read_text())
    assert meta["focal_source"] == "model" and meta["intrinsics"]["fx"] == pytest.approx(sidecar["focal_px"], rel=1e-6)


def test_gui_camera_panel_gets_the_model_focal(depth_pro_dir, photos):
    """The GUI's derived views (camera panel, 3D view, DoF preview) come from app.core.derive."""
    from depthstudio.app import core
    from depthstudio.geometry.camera import CameraSettings
    from depthstudio.geometry.depth import DepthMapping
    from depthstudio.geometry.mesh import MeshSettings
    from depthstudio.io.images import Photo
    from depthstudio.models.estimator import load_estimator

    depth = load_estimator(str(depth_pro_dir), "torch").predict(photos[0])
    sections = {"mapping": DepthMapping(), "mesh": MeshSettings(), "camera": CameraSettings()}
    derived = core.derive(None, Photo(rgb=photos[0]), depth, sections)
    assert derived.intrinsics.source == "model" and derived.intrinsics.fx == pytest.approx(depth.focal_px)
    sections["camera"] = CameraSettings(fov_deg=40)
    assert core.derive(None, Photo(rgb=photos[0]), depth, sections).intrinsics.source == "flags"


def test_blender_external_route_gets_the_model_focal(depth_pro_dir, tmp_path):
    """The add-on's external route (a separate `depthstudio depth` process) brings the focal back:
    the mesh and the Blender camera it builds have the camera source "model"."""
    import importlib.util
    import stat
    import sys
    from pathlib import Path

    from PIL import Image

    repo = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("depthstudio_blender_engine_focal", repo / "plugins" / "blender" / "engine.py")
    engine = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = engine
    try:
        spec.loader.exec_module(engine)
        exe = tmp_path / "depthstudio"
        exe.write_text(f"#!/bin/sh\nPYTHONPATH=\"{repo}\" exec \"{sys.executable}\" -m depthstudio \"$@\"\n")
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
        rgb = np.random.default_rng(6).integers(0, 256, (60, 80, 3), np.uint8)
        Image.fromarray(rgb).save(tmp_path / "photo.png")
        from depthstudio.source import ModelSettings

        model = ModelSettings(model=str(depth_pro_dir))
        depth = engine.estimate_external(tmp_path / "photo.png", model, str(exe))
        assert depth.kind == "metric" and depth.focal_px and depth.focal_px > 0
        request = engine.Request(filepath=str(tmp_path / "photo.png"), model=model, executable=str(exe), route="EXTERNAL")
        result = engine.build(request)
        assert result.intrinsics.source == "model" and result.intrinsics.fx == pytest.approx(depth.focal_px, rel=1e-5)
    finally:
        sys.modules.pop(spec.name, None)
