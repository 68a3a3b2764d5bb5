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


class RecordingJob:
    """The depthstudio.jobs protocol as the writers use it: start, advance, check (cancel)."""

    class Cancelled(Exception):
        pass

    def __init__(self, cancel_after: int | None = None):
        self.total, self.done, self.messages, self.cancel_after = 0, 0, [], cancel_after

    def start(self, total, message=""):
        self.total = total
        self.messages.append(message)

    def advance(self, n=1):
        self.done += n

    def check(self):
        if self.cancel_after is not None and self.done >= self.cancel_after:
            raise self.Cancelled()


def test_progress_and_cancel_between_chunks(tmp_path, monkeypatch):
    import depthstudio.geometry.export as ex

    monkeypatch.setattr(ex, "CHUNK", 1000)  # the synthetic mesh is ~12k vertices: several chunks per array
    photo, depth = synthetic_photo_and_depth()
    mesh, _, meta = build_mesh(photo, depth)
    job = RecordingJob()
    ex.export(mesh, tmp_path / "all", "x", ("obj", "ply", "glb", "splat"), meta, job=job)
    assert job.total > 20 and job.done == job.total and "OBJ" in job.messages[0]
    cancel = RecordingJob(cancel_after=30)  # in the middle of the second format
    with pytest.raises(RecordingJob.Cancelled):
        ex.export(mesh, tmp_path / "cancelled", "x", ("obj", "ply", "glb"), meta, job=cancel)
    assert list((tmp_path / "cancelled").iterdir()) == []  # the finished OBJ removed too, no temporaries


def test_disk_full_mid_write_is_one_message_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    import depthstudio.geometry.export as ex

    photo, depth = synthetic_photo_and_depth()
    mesh, _, meta = build_mesh(photo, depth)
    monkeypatch.setattr(ex, "CHUNK", 1000)
    real_step = ex._Progress.step
    calls = []

    def full_disk(self, n=1):
        calls.append(n)
        if len(calls) == 45:  # in the middle of the GLB (the PLY takes ~37 chunks)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_step(self, n)

    monkeypatch.setattr(ex._Progress, "step", full_disk)
    with pytest.raises(OutputError, match=r"x\.glb: No space left on device \(about .* needed, .* free in "):
        ex.export(mesh, tmp_path, "x", ("ply", "glb"), meta)
    assert list(tmp_path.iterdir()) == []


def test_not_enough_space_is_found_before_writing(tmp_path, monkeypatch):
    import depthstudio.geometry.export as ex

    photo, depth = synthetic_photo_and_depth()
    mesh, _, meta = build_mesh(photo, depth)
    ply = ex.estimate_size(mesh, "ply")
    monkeypatch.setattr(ex, "_free_space", lambda folder: ply + 10)
    with pytest.raises(OutputError, match=r"x\.glb: No space left on device \(about"):
        ex.export(mesh, tmp_path, "x", ("ply", "glb"), meta)
    assert list(tmp_path.iterdir()) == []
    ex.export(mesh, tmp_path, "y", ("ply",), meta)  # that one fits
    assert (tmp_path / "y.ply").stat().st_size == ply  # the PLY estimate is exact


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 300 kB tmpfs mounted for the test (root only), unmounted after."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.parametrize("fmt", ["obj", "ply", "glb", "usdz", "splat"])
def test_full_tmpfs_every_writer(small_tmpfs, fmt, monkeypatch, capsys):
    """A real full disk: the up-front check off, so each writer meets ENOSPC itself."""
    import depthstudio.geometry.export as ex

    if fmt == "usdz":
        pytest.importorskip("pxr")
    photo, depth = synthetic_photo_and_depth()
    mesh, _, meta = build_mesh(photo, depth)
    monkeypatch.setattr(ex, "_check_space", lambda *a, **k: None)
    (small_tmpfs / "filler").write_bytes(b"\0" * 150_000)  # the mesh needs more than the ~150 kB left
    with pytest.raises(OutputError) as info:
        ex.export(mesh, small_tmpfs / "out", "x", (fmt,), meta)
    message = str(info.value)
    assert str(small_tmpfs / "out" / f"x{ex.SUFFIX[fmt]}") in message or "x_texture.png" in message
    assert "No space left on device (about" in message and " free in " in message and "\n" not in message
    assert list((small_tmpfs / "out").iterdir()) == []


def test_read_only_destination(small_tmpfs, capsys):
    photo, depth = synthetic_photo_and_depth()
    out = small_tmpfs / "out"
    out.mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    mesh, _, meta = build_mesh(photo, depth)
    with pytest.raises(OutputError, match=r"x\.glb: the destination is read-only"):
        export(mesh, out, "x", ("glb", "ply"), meta)
    from depthstudio.cli import main

    Image = pytest.importorskip("PIL.Image")
    src = small_tmpfs.parent / "in"
    src.mkdir()
    Image.fromarray(photo).save(src / "p.png")
    np.save(src / "p.npy", depth.values)
    assert main(["mesh", str(src / "p.png"), "--depth", str(src / "p.npy"), "--depth-kind", "metric",
                 "-o", str(out), "--format", "ply"]) == 1
    err = capsys.readouterr().err  # the command checks its output folder once, before any input
    assert err.count("\n") == 1 and str(out) in err and "not writable" in err
    assert list(out.iterdir()) == []


def test_export_memory_stays_near_the_mesh_arrays(tmp_path, monkeypatch):
    """Peak Python/numpy allocation of each streaming writer: under 0.3x the mesh arrays + texture."""
    import tracemalloc

    import depthstudio.geometry.export as ex
    from depthstudio.geometry.camera import Intrinsics
    from depthstudio.geometry.mesh import depth_mesh

    monkeypatch.setattr(ex, "CHUNK", 4096)
    h, w = 300, 400
    rows, cols = np.mgrid[0:h, 0:w]
    z = (4.0 + 0.5 * np.sin(cols / 30.0) + 0.002 * rows).astype(np.float32)
    rgb = np.stack([cols % 256, rows % 256, (cols * rows) % 256], -1).astype(np.uint8)
    mesh = depth_mesh(z, z > 0, Intrinsics.from_fov(w, h, 60), rgb, MeshSettings(max_faces=0))
    size = sum(a.nbytes for a in (mesh.vertices, mesh.faces, mesh.uvs, mesh.normals, mesh.texture))
    for fmt in ("ply", "glb", "obj", "splat"):
        tracemalloc.start()
        ex.export(mesh, tmp_path, fmt, (fmt,), {})
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 0.3 * size, (fmt, peak / size)


# --- cameras, unlit, splats ------------------------------------------------------------------------

def read_glb(path: Path) -> tuple[dict, bytes]:
    import struct

    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF" and version == 2 and length == len(data)
    json_len, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    gltf = json.loads(data[20:20 + json_len])
    bin_len, kind = struct.unpack_from("<I4s", data, 20 + json_len)
    assert kind == b"BIN\0"
    return gltf, data[28 + json_len:28 + json_len + bin_len]


def gltf_project(camera: dict, points: np.ndarray) -> np.ndarray:
    """NDC (x, y) of camera-frame points through a glTF perspective camera."""
    p = camera["perspective"]
    t = np.tan(p["yfov"] / 2)
    d = -points[:, 2]
    return np.stack([points[:, 0] / d / (p["aspectRatio"] * t), points[:, 1] / d / t], 1)


@pytest.mark.parametrize("cx, cy", [(None, None), (40.0, 60.0)], ids=["centred", "off-centre"])
def test_glb_camera_matches_the_photo(tmp_path, cx, cy):
    photo, depth = synthetic_photo_and_depth()
    mesh, k, meta = build_mesh(photo, depth, CameraSettings(fov_deg=55, fy=None, cx=cx, cy=cy))
    export(mesh, tmp_path, "cam", ("glb",), meta)
    gltf, _ = read_glb(tmp_path / "cam.glb")
    (node,) = [n for n in gltf["nodes"] if "camera" in n]
    assert "matrix" not in node and "rotation" not in node and "translation" not in node  # at the origin
    camera = gltf["cameras"][node["camera"]]
    assert camera["extras"]["intrinsics"]["fx"] == pytest.approx(k.fx) and camera["extras"]["intrinsics_source"] == "flags"
    window = camera["extras"]["view_window_px"]
    assert window["cropped"] == (cx is not None)
    # every vertex lands where its pixel is, inside the window the camera shows
    px = np.stack([mesh.uvs[:, 0] * W, (1 - mesh.uvs[:, 1]) * H], 1)
    ndc = gltf_project(camera, mesh.vertices)
    expect_x = (px[:, 0] - (window["x0"] + window["x1"]) / 2) / ((window["x1"] - window["x0"]) / 2)
    expect_y = ((window["y0"] + window["y1"]) / 2 - px[:, 1]) / ((window["y1"] - window["y0"]) / 2)
    np.testing.assert_allclose(ndc[:, 0], expect_x, atol=1e-4)
    np.testing.assert_allclose(ndc[:, 1], expect_y, atol=1e-4)
    if cx is None:
        assert camera["perspective"]["aspectRatio"] == pytest.approx(W / H)
        assert np.abs(ndc).max() <= 1.0 + 1e-6


def test_glb_unlit_and_accessors(tmp_path):
    photo, depth = synthetic_photo_and_depth()
    mesh, _, meta = build_mesh(photo, depth)
    from depthstudio.geometry.export import ExportSettings

    export(mesh, tmp_path / "lit", "m", ("glb",), meta, ExportSettings(unlit=False))
    export(mesh, tmp_path / "unlit", "m", ("glb",), meta)
    lit, _ = read_glb(tmp_path / "lit" / "m.glb")
    unlit, binary = read_glb(tmp_path / "unlit" / "m.glb")
    assert "KHR_materials_unlit" in unlit["extensionsUsed"]
    assert unlit["materials"][0]["extensions"] == {"KHR_materials_unlit": {}}
    assert "extensionsUsed" not in lit and "extensions" not in lit["materials"][0]
    position = unlit["accessors"][unlit["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    np.testing.assert_allclose(position["min"], mesh.vertices.min(0), rtol=1e-6)
    np.testing.assert_allclose(position["max"], mesh.vertices.max(0), rtol=1e-6)
    view = unlit["bufferViews"][position["bufferView"]]
    stored = np.frombuffer(binary, np.float32, len(mesh.vertices) * 3, view["byteOffset"]).reshape(-1, 3)
    np.testing.assert_array_equal(stored, mesh.vertices)


def test_usdz_camera_and_unlit_surface(tmp_path):
    pytest.importorskip("pxr")
    from pxr import Gf, Usd, UsdGeom, UsdShade

    from depthstudio.geometry.export import ExportSettings

    photo, depth = synthetic_photo_and_depth()
    mesh, k, meta = build_mesh(photo, depth, CameraSettings(fov_deg=50, cx=70.0, cy=40.0))
    export(mesh, tmp_path, "u", ("usdz",), meta)
    stage = Usd.Stage.Open(str(tmp_path / "u.usdz"))
    (prim,) = [p for p in stage.Traverse() if p.IsA(UsdGeom.Camera)]
    camera = UsdGeom.Camera(prim)
    assert prim.GetCustomDataByKey("depthstudio")["intrinsics_source"] == "flags"
    frustum = camera.GetCamera(Usd.TimeCode.Default()).frustum
    projection = frustum.ComputeProjectionMatrix()
    for i in range(0, len(mesh.vertices), 997):
        ndc = projection.Transform(Gf.Vec3d(*map(float, mesh.vertices[i])))
        x = (ndc[0] + 1) / 2 * W
        y = (1 - ndc[1]) / 2 * H
        assert x == pytest.approx(mesh.uvs[i, 0] * W, abs=1e-3) and y == pytest.approx((1 - mesh.uvs[i, 1]) * H, abs=1e-3)
    surface = UsdShade.Shader.Get(stage, "/Root/Materials/Photo/Surface")
    assert surface.GetInput("emissiveColor").HasConnectedSource()
    assert tuple(surface.GetInput("diffuseColor").Get()) == (0, 0, 0)
    export(mesh, tmp_path / "lit", "u", ("usdz",), meta, ExportSettings(unlit=False))
    lit = Usd.Stage.Open(str(tmp_path / "lit" / "u.usdz"))
    surface = UsdShade.Shader.Get(lit, "/Root/Materials/Photo/Surface")
    assert surface.GetInput("diffuseColor").HasConnectedSource() and not surface.GetInput("emissiveColor")


def smooth_photo_and_depth(h=H, w=W):
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    photo = np.stack([128 + 100 * np.sin(cols / 9.0), 128 + 100 * np.cos(rows / 7.0),
                      128 + 60 * np.sin((cols + rows) / 13.0)], -1).astype(np.uint8)
    z = (6.0 - 0.01 * rows).astype(np.float32)
    z[(cols - 45) ** 2 + (rows - 50) ** 2 < 25**2] = 2.5
    return photo, DepthMap(z, "metric", model_id="synthetic")


def read_splats(path: Path) -> dict:
    plyfile = pytest.importorskip("plyfile")
    vertex = plyfile.PlyData.read(str(path))["vertex"]
    return {name: np.asarray(vertex[name]) for name in vertex.data.dtype.names}


def render_splats(s: dict, k, h: int, w: int, dilation: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """A reference 3DGS rasteriser (SH degree 0, EWA projection, front-to-back alpha blending) in numpy.

    Returns the (h, w, 3) image in 0..1 and the accumulated opacity."""
    xyz = np.stack([s["x"], s["y"], s["z"]], 1).astype(np.float64)
    color = 0.5 + 0.28209479177387814 * np.stack([s["f_dc_0"], s["f_dc_1"], s["f_dc_2"]], 1)
    opacity = 1 / (1 + np.exp(-s["opacity"].astype(np.float64)))
    scale = np.exp(np.stack([s["scale_0"], s["scale_1"], s["scale_2"]], 1).astype(np.float64))
    q = np.stack([s["rot_0"], s["rot_1"], s["rot_2"], s["rot_3"]], 1).astype(np.float64)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    r, x, y, z = q.T
    R = np.stack([np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - r * z), 2 * (x * z + r * y)], 1),
                  np.stack([2 * (x * y + r * z), 1 - 2 * (x * x + z * z), 2 * (y * z - r * x)], 1),
                  np.stack([2 * (x * z - r * y), 2 * (y * z + r * x), 1 - 2 * (x * x + y * y)], 1)], 1)
    M = R * scale[:, None, :]
    cov = M @ M.transpose(0, 2, 1)
    d = -xyz[:, 2]
    u = k.fx * xyz[:, 0] / d + k.cx
    v = k.cy - k.fy * xyz[:, 1] / d
    J = np.zeros((len(d), 2, 3))
    J[:, 0, 0] = k.fx / d
    J[:, 0, 2] = k.fx * xyz[:, 0] / d**2
    J[:, 1, 1] = -k.fy / d
    J[:, 1, 2] = -k.fy * xyz[:, 1] / d**2
    cov2 = J @ cov @ J.transpose(0, 2, 1) + dilation * np.eye(2)
    inv = np.linalg.inv(cov2)
    offsets = np.stack(np.meshgrid(np.arange(-3, 4), np.arange(-3, 4)), -1).reshape(-1, 2)  # 7x7 window
    px = np.floor(u)[:, None] + offsets[None, :, 0]
    py = np.floor(v)[:, None] + offsets[None, :, 1]
    dx, dy = px + 0.5 - u[:, None], py + 0.5 - v[:, None]
    power = -0.5 * (inv[:, 0, 0, None] * dx * dx + 2 * inv[:, 0, 1, None] * dx * dy + inv[:, 1, 1, None] * dy * dy)
    alpha = np.minimum(0.99, opacity[:, None] * np.exp(power))
    ok = (alpha > 1 / 255) & (px >= 0) & (px < w) & (py >= 0) & (py < h)
    gid = np.broadcast_to(np.arange(len(d))[:, None], ok.shape)[ok]
    pix = (py[ok] * w + px[ok]).astype(np.int64)
    a = alpha[ok]
    order = np.lexsort((d[gid], pix))  # by pixel, then front to back
    pix, gid, a = pix[order], gid[order], a[order]
    log_t = np.log1p(-a)
    csum = np.cumsum(log_t)
    first = np.r_[True, pix[1:] != pix[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(pix)), 0))
    before = csum - log_t - np.where(start > 0, csum[start - 1], 0.0)  # log T before this splat
    weight = np.exp(before) * a
    image = np.zeros((h * w, 3))
    for c in range(3):
        image[:, c] = np.bincount(pix, weights=weight * color[gid, c], minlength=h * w)
    coverage = np.bincount(pix, weights=weight, minlength=h * w)
    return image.reshape(h, w, 3), coverage.reshape(h, w)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


@pytest.mark.parametrize("max_faces", [0, 4000], ids=["full", "decimated"])
def test_splats_load_in_the_3dgs_layout_and_render_the_photo(tmp_path, max_faces):
    from depthstudio.geometry.export import SPLAT_FIELDS
    from depthstudio.geometry.pipeline import splat_source

    photo, depth = smooth_photo_and_depth()
    settings = MeshSettings(max_faces=max_faces)
    mesh, k, meta = build_mesh(photo, depth, CameraSettings(fov_deg=60), mesh=settings)
    if max_faces:  # one Gaussian per cell of an even grid, as `depthstudio mesh` does for a decimated mesh
        assert mesh.decimated
        mesh = splat_source(photo, depth, CameraSettings(fov_deg=60), mesh=settings)
        assert mesh.stride == 3 and 2 * len(mesh.vertices) <= max_faces
    paths = export(mesh, tmp_path, "g", ("splat",), meta)
    assert [p.name for p in paths] == ["g.splat.ply", "g.camera.json"]
    plyfile = pytest.importorskip("plyfile")
    data = plyfile.PlyData.read(str(tmp_path / "g.splat.ply"))
    assert [e.name for e in data.elements] == ["vertex"]
    assert data["vertex"].data.dtype.names == SPLAT_FIELDS
    assert all(data["vertex"].data.dtype[name] == np.dtype("<f4") for name in SPLAT_FIELDS)
    s = read_splats(tmp_path / "g.splat.ply")
    assert len(s["x"]) == len(mesh.vertices)  # one per kept pixel / decimated vertex: none for dropped pixels
    scales = np.sort(np.exp(np.stack([s["scale_0"], s["scale_1"], s["scale_2"]], 1)), axis=1)
    assert np.all(scales[:, 0] < 0.1 * scales[:, 1])  # flat
    q = np.stack([s["rot_0"], s["rot_1"], s["rot_2"], s["rot_3"]], 1)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5)
    image, coverage = render_splats(s, k, H, W)
    valid = depth.values > 0
    score = psnr(image[valid], photo[valid] / 255.0)
    assert coverage[valid].mean() > 0.96  # no holes: the splats tile the surface
    assert score > (30 if max_faces == 0 else 25), score
    # a sanity check that the metric can fail: the photo upside down scores far lower
    assert psnr(image[valid], photo[::-1][valid] / 255.0) < score - 8


def test_splat_gaussians_do_not_cross_cut_edges(tmp_path):
    """The disc's rim splats stay on the disc: none of them reach into the wall's depth."""
    photo, depth = smooth_photo_and_depth()
    mesh, k, meta = build_mesh(photo, depth, CameraSettings(fov_deg=60), mesh=MeshSettings(max_faces=0))
    export(mesh, tmp_path, "g", ("splat",), meta)
    s = read_splats(tmp_path / "g.splat.ply")
    depth_of = -s["z"]
    disc = depth_of < 3.0
    extent = np.exp(np.maximum(np.maximum(s["scale_0"], s["scale_1"]), s["scale_2"]))
    assert disc.any() and np.all(depth_of[disc] + 3 * extent[disc] < 3.0)  # 3 sigma stays well in front of the wall


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
