"""Every export format re-loads (trimesh, Open3D, usd-core) with the same counts and texture;
the GLB passes the Khronos glTF validator; writes are atomic; camera.json says what made the file."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from depthstudio.depthmap import DepthMap
from depthstudio.errors import OutputError, SettingsError
from depthstudio.geometry.camera import CameraSettings
from depthstudio.geometry.export import export, is_complete, output_paths, parse_formats, vertex_colors
from depthstudio.geometry.mesh import MeshSettings
from depthstudio.geometry.pipeline import build_mesh

trimesh = pytest.importorskip("trimesh")

H, W = 96, 128


def synthetic_photo_and_depth():
    rng = np.random.default_rng(7)
    photo = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    cols, rows = np.meshgrid(np.arange(W), np.arange(H))
    z = 6.0 - 0.01 * rows  # a wall leaning back
    disc = (cols - 45) ** 2 + (rows - 50) ** 2 < 25**2
    z = np.where(disc, 2.5, z).astype(np.float32)  # a disc in front of it
    z[:5, :5] = 0  # no surface
    return photo, DepthMap(z, "metric", model_id="synthetic")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("pxr", reason="the export fixture writes every format, USDZ included (usd-core)")
    out = tmp_path_factory.mktemp("export")
    photo, depth = synthetic_photo_and_depth()
    mesh, k, meta = build_mesh(photo, depth, CameraSettings(fov_deg=55))
    paths = export(mesh, out, "scene", ("obj", "ply", "glb", "usdz"), meta)
    return out, mesh, photo, paths


def test_files_written_and_nothing_half_done(exported):
    out, mesh, _, paths = exported
    names = sorted(p.name for p in paths)
    assert names == sorted(["scene.obj", "scene.mtl", "scene_texture.png", "scene.ply", "scene.glb", "scene.usdz",
                            "scene.camera.json"])
    assert sorted(p.name for p in out.iterdir()) == names  # no temporary files left behind
    assert is_complete(out, "scene", "obj,ply,glb,usdz")
    assert output_paths(out, "scene", ["glb"]) == [out / "scene.glb", out / "scene.camera.json"]


def test_camera_json(exported):
    out, mesh, _, _ = exported
    meta = json.loads((out / "scene.camera.json").read_text())
    assert meta["intrinsics"]["source"] == "flags" == meta["focal_source"]
    assert meta["intrinsics"]["hfov_deg"] == pytest.approx(55.0)
    assert meta["intrinsics"]["width"] == W and meta["image"]["height"] == H
    assert meta["depth"]["kind"] == "metric" and meta["depth"]["model_id"] == "synthetic"
    assert meta["geometry"]["faces"] == mesh.face_count
    assert "scene.glb" in meta["files"]


def test_obj_reloads_with_texture(exported):
    out, mesh, photo, _ = exported
    loaded = trimesh.load(out / "scene.obj", process=False, force="mesh")
    assert loaded.vertices.shape == mesh.vertices.shape and loaded.faces.shape == mesh.faces.shape
    np.testing.assert_allclose(loaded.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_allclose(loaded.visual.uv, mesh.uvs, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(loaded.visual.material.image.convert("RGB")), photo)
    assert "map_Kd scene_texture.png" in (out / "scene.mtl").read_text()


def test_ply_reloads_with_colours(exported):
    out, mesh, _, _ = exported
    assert (out / "scene.ply").read_bytes()[:60].count(b"binary_little_endian") == 1
    loaded = trimesh.load(out / "scene.ply", process=False)
    assert loaded.vertices.shape == mesh.vertices.shape and loaded.faces.shape == mesh.faces.shape
    np.testing.assert_array_equal(loaded.visual.vertex_colors[:, :3], vertex_colors(mesh))


def test_glb_reloads_with_texture(exported):
    out, mesh, photo, _ = exported
    loaded = trimesh.load(out / "scene.glb", process=False, force="mesh")
    assert loaded.vertices.shape == mesh.vertices.shape and loaded.faces.shape == mesh.faces.shape
    np.testing.assert_allclose(loaded.visual.uv, mesh.uvs, atol=1e-6)
    texture = loaded.visual.material.baseColorTexture
    np.testing.assert_array_equal(np.asarray(texture.convert("RGB")), photo)


def test_open3d_reads_every_mesh_format(exported):
    o3d = pytest.importorskip("open3d")
    out, mesh, photo, _ = exported
    for name, textured in (("scene.obj", True), ("scene.glb", True), ("scene.ply", False)):
        m = o3d.io.read_triangle_mesh(str(out / name), enable_post_processing=False)
        assert len(m.vertices) == len(mesh.vertices) and len(m.triangles) == mesh.face_count, name
        if textured:
            assert m.has_triangle_uvs()
            assert any(np.asarray(t).shape == photo.shape for t in m.textures), name
        else:
            assert m.has_vertex_colors()


def test_usdz_reloads_with_texture(exported):
    pytest.importorskip("pxr")
    from pxr import Usd, UsdGeom, UsdShade

    out, mesh, _, _ = exported
    with zipfile.ZipFile(out / "scene.usdz") as z:
        names = z.namelist()
    assert names[0].endswith(".usdc") and any(n.endswith("scene_texture.png") for n in names)
    stage = Usd.Stage.Open(str(out / "scene.usdz"))
    assert UsdGeom.GetStageUpAxis(stage) == "Y" and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    prims = [UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh)]
    assert len(prims) == 1
    usd_mesh = prims[0]
    assert len(usd_mesh.GetPointsAttr().Get()) == len(mesh.vertices)
    assert len(usd_mesh.GetFaceVertexCountsAttr().Get()) == mesh.face_count
    st = UsdGeom.PrimvarsAPI(usd_mesh).GetPrimvar("st")
    np.testing.assert_allclose(np.array(st.Get()), mesh.uvs, atol=1e-6)
    material = UsdShade.MaterialBindingAPI(usd_mesh.GetPrim()).ComputeBoundMaterial()[0]
    textures = [p for p in Usd.PrimRange(material.GetPrim()) if p.GetAttribute("info:id").Get() == "UsdUVTexture"]
    asset = textures[0].GetAttribute("inputs:file").Get()
    assert asset.path.endswith("scene_texture.png") and asset.resolvedPath  # packaged and found


def test_point_cloud_formats(tmp_path):
    photo, depth = synthetic_photo_and_depth()
    cloud, _, meta = build_mesh(photo, depth, None, None, MeshSettings(points=True))
    usd = ("usdz",) if importlib.util.find_spec("pxr") else ()  # USDZ needs usd-core
    paths = export(cloud, tmp_path, "pts", ("ply", "glb", *usd, "obj"), meta)
    assert {p.name for p in paths} == {"pts.ply", "pts.glb", "pts.obj", "pts.camera.json"} | {f"pts.{u}" for u in usd}
    loaded = trimesh.load(tmp_path / "pts.ply")
    assert isinstance(loaded, trimesh.PointCloud) and len(loaded.vertices) == depth.valid.sum()
    np.testing.assert_array_equal(loaded.colors[:, :3], cloud.colors)
    assert b"element face" not in (tmp_path / "pts.ply").read_bytes()[:400]
    glb = trimesh.load(tmp_path / "pts.glb")
    assert sum(len(g.vertices) for g in glb.geometry.values()) == len(cloud)
    o3d = pytest.importorskip("open3d")
    pc = o3d.io.read_point_cloud(str(tmp_path / "pts.ply"))
    assert len(pc.points) == len(cloud) and pc.has_colors()


def test_formats_parse_and_reject():
    assert parse_formats("GLB, obj,.ply,glb") == ("glb", "obj", "ply")
    with pytest.raises(SettingsError, match="fbx"):
        parse_formats("obj,fbx")


def test_unwritable_output_is_a_clear_error(tmp_path):
    photo, depth = synthetic_photo_and_depth()
    mesh, _, meta = build_mesh(photo, depth)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(OutputError, match="not-a-folder"):
        export(mesh, blocker / "out", "x", ("glb",), meta)


def test_failed_export_leaves_no_file(tmp_path, monkeypatch):
    import depthstudio.geometry.export as ex

    photo, depth = synthetic_photo_and_depth()
    mesh, _, meta = build_mesh(photo, depth)

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trimesh.exchange.gltf, "export_glb", broken)
    with pytest.raises(OutputError, match="No space left"):
        ex.export(mesh, tmp_path, "x", ("ply", "glb"), meta)
    assert not (tmp_path / "x.glb").exists() and not (tmp_path / "x.camera.json").exists()
    assert not is_complete(tmp_path, "x", ("ply", "glb"))
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


# --- the Khronos glTF validator (npm: gltf-validator) -----------------------------------------------

VALIDATOR_DIR = Path(os.environ.get("GLTF_VALIDATOR_DIR", Path.home() / ".cache" / "depthstudio" / "gltf-validator"))
VALIDATE_JS = """
const fs = require('fs');
const validator = require('gltf-validator');
validator.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2])))
  .then((report) => { console.log(JSON.stringify(report.issues)); })
  .catch((error) => { console.error(error); process.exit(2); });
"""


@pytest.fixture(scope="session")
def gltf_validator():
    """node + the gltf-validator package; installed once into VALIDATOR_DIR with npm, or skip."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node:
        pytest.skip("node is not installed (needed for the Khronos glTF validator)")
    if not (VALIDATOR_DIR / "node_modules" / "gltf-validator").is_dir():
        if not npm:
            pytest.skip("npm is not installed (needed to install gltf-validator)")
        VALIDATOR_DIR.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(VALIDATOR_DIR),
                                 "gltf-validator"], capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            pytest.skip(f"cannot install gltf-validator from npm: {result.stderr.strip()[-200:]}")
    script = VALIDATOR_DIR / "validate.js"
    script.write_text(VALIDATE_JS)
    return node, script


def validate_glb(gltf_validator, path: Path) -> dict:
    node, script = gltf_validator
    result = subprocess.run([node, str(script), str(path)], capture_output=True, text=True, timeout=120,
                            cwd=VALIDATOR_DIR)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_glb_passes_the_khronos_validator(exported, gltf_validator, tmp_path):
    out, _, _, _ = exported
    issues = validate_glb(gltf_validator, out / "scene.glb")
    assert issues["numErrors"] == 0, [m for m in issues["messages"] if m["severity"] == 0][:5]
    photo, depth = synthetic_photo_and_depth()
    cloud, _, meta = build_mesh(photo, depth, mesh=MeshSettings(points=True))
    export(cloud, tmp_path, "pts", ("glb",), meta)
    assert validate_glb(gltf_validator, tmp_path / "pts.glb")["numErrors"] == 0
    # the validator does find errors: a truncated file fails
    broken = tmp_path / "broken.glb"
    broken.write_bytes((out / "scene.glb").read_bytes()[:2000])
    assert validate_glb(gltf_validator, broken)["numErrors"] > 0


def test_usdz_texture_is_capped_for_ar_quick_look(tmp_path, monkeypatch):
    pytest.importorskip("pxr")
    import io

    from PIL import Image

    import depthstudio.geometry.export as ex

    monkeypatch.setattr(ex, "USDZ_MAX_TEXTURE", 64)
    photo, depth = synthetic_photo_and_depth()  # 128 x 96
    mesh, _, meta = build_mesh(photo, depth)
    ex.export(mesh, tmp_path, "cap", ("usdz",), meta)
    with zipfile.ZipFile(tmp_path / "cap.usdz") as z:
        name = next(n for n in z.namelist() if n.endswith(".png"))
        assert Image.open(io.BytesIO(z.read(name))).size == (64, 48)
