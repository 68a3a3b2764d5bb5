"""`depthstudio mesh` as a user runs it: batches, resume, bad inputs, bring-your-own depth, a model."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from depthstudio.cli import main

H, W = 60, 80


def make_inputs(folder, names=("a", "b", "c")):
    photos, depths = folder / "photos", folder / "depth"
    photos.mkdir(parents=True)
    depths.mkdir()
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(photos / f"{name}.png")
        z = np.full((H, W), 3.0 + i, np.float32)
        z[20:40, 20:40] = 1.5  # an object in front
        np.save(depths / f"{name}.npy", z)
    return photos, depths


def test_batch_resumes_reports_and_keeps_going(tmp_path, capsys):
    photos, depths = make_inputs(tmp_path)
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    np.save(depths / "corrupt.npy", np.ones((H, W), np.float32))
    out = tmp_path / "out"
    # "a" was exported by an earlier, interrupted run
    assert main(["mesh", str(photos / "a.png"), "-o", str(out), "--depth", str(depths), "--depth-kind", "metric",
                 "--format", "glb,ply"]) == 0
    done_before = (out / "a.glb").stat().st_mtime_ns
    capsys.readouterr()

    code = main(["mesh", str(photos), "-o", str(out), "--depth", str(depths), "--depth-kind", "metric",
                 "--format", "glb,ply"])
    captured = capsys.readouterr()
    assert code == 1
    for stem in ("a", "b", "c"):
        assert (out / f"{stem}.glb").is_file() and (out / f"{stem}.ply").is_file()
        assert (out / f"{stem}.camera.json").is_file()
    assert (out / "a.glb").stat().st_mtime_ns == done_before  # skipped, not redone
    assert not list(out.glob("corrupt*"))
    assert "corrupt.jpg" in captured.err and "Traceback" not in captured.err
    assert "2 meshes written" in captured.out and "1 skipped" in captured.out and "1 failed" in captured.out

    # --overwrite redoes the finished one; the corrupt one still fails
    assert main(["mesh", str(photos), "-o", str(out), "--depth", str(depths), "--depth-kind", "metric",
                 "--format", "glb,ply", "--overwrite"]) == 1
    assert (out / "a.glb").stat().st_mtime_ns != done_before


def test_list_file_points_and_camera_flags(tmp_path, capsys):
    photos, depths = make_inputs(tmp_path, ("x", "y"))
    listing = tmp_path / "list.txt"
    listing.write_text("# my photos\nphotos/x.png\nphotos/y.png\nphotos/missing.png\n")
    out = tmp_path / "out"
    code = main(["mesh", str(listing), "-o", str(out), "--depth", str(depths), "--depth-kind", "metric",
                 "--points", "--fov", "75", "--cx", "41", "--cy", "29"])
    captured = capsys.readouterr()
    assert code == 1 and "missing.png" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["x.camera.json", "x.ply", "x.settings.json",
                                                           "y.camera.json", "y.ply", "y.settings.json"]
    meta = json.loads((out / "x.camera.json").read_text())
    assert meta["intrinsics"]["hfov_deg"] == pytest.approx(75.0) and meta["intrinsics"]["cx"] == 41.0
    assert meta["focal_source"] == "flags" and meta["geometry"]["type"] == "points"
    assert meta["geometry"]["points"] == H * W


def test_disparity_png_depth_with_near_far(tmp_path, capsys):
    photos, _ = make_inputs(tmp_path, ("p",))
    disparity = np.full((H // 2, W // 2), 1000, np.uint16)  # half resolution: resized to the photo
    disparity[10:20, 10:20] = 30000
    Image.fromarray(disparity).save(tmp_path / "p_depth.png")
    out = tmp_path / "out"
    assert main(["mesh", str(photos / "p.png"), "-o", str(out), "--depth", str(tmp_path / "p_depth.png"),
                 "--near", "2", "--far", "8", "--format", "obj", "--max-faces", "2000"]) == 0
    import trimesh

    mesh = trimesh.load(out / "p.obj", process=False, force="mesh")
    assert len(mesh.faces) <= 2000
    assert -mesh.vertices[:, 2].max() == pytest.approx(2.0, rel=0.02)
    assert -mesh.vertices[:, 2].min() == pytest.approx(8.0, rel=0.02)
    meta = json.loads((out / "p.camera.json").read_text())
    assert meta["depth"]["mapping"] == {"near": 2.0, "far": 8.0} and meta["focal_source"] == "default"


@pytest.mark.parametrize("argv, message", [
    (["--format", "fbx"], "fbx"),
    (["--near", "5", "--far", "1"], "near"),
    (["--fov", "-3"], "field of view|positive"),
    (["--edge-cut", "-1"], "edge cut"),
])
def test_bad_settings_are_one_clear_error(tmp_path, capsys, argv, message):
    photos, depths = make_inputs(tmp_path, ("s",))
    code = main(["mesh", str(photos), "-o", str(tmp_path / "out"), "--depth", str(depths), *argv])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    import re

    assert re.search(message, err)


def test_with_a_model_in_a_subprocess(tmp_path, tiny_onnx):
    photos, _ = make_inputs(tmp_path, ("m",))
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "depthstudio", "mesh", str(photos), "-o", str(out),
                             "--model", str(tiny_onnx), "--format", "glb,usdz"],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "m.camera.json").read_text())
    assert meta["depth"]["kind"] == "disparity" and meta["depth"]["model_id"] == tiny_onnx.name
    assert (out / "m.glb").stat().st_size > 1000 and (out / "m.usdz").is_file()
    # a model that cannot load is one error for the batch, not one per image
    result = subprocess.run([sys.executable, "-m", "depthstudio", "mesh", str(photos), "-o", str(out),
                             "--model", str(tmp_path / "nope.onnx"), "--overwrite"],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 1 and "nope.onnx" in result.stderr and "Traceback" not in result.stderr


def test_point_cloud_clean_up_flags(tmp_path, capsys):
    pytest.importorskip("open3d")
    photos, depths = make_inputs(tmp_path, ("q",))
    out = tmp_path / "out"
    assert main(["mesh", str(photos), "-o", str(out), "--depth", str(depths), "--depth-kind", "metric", "--points",
                 "--voxel-size", "0.1", "--remove-outliers", "--point-normals"]) == 0
    import trimesh

    cloud = trimesh.load(out / "q.ply")
    assert 10 < len(cloud.vertices) < H * W / 4
    header = (out / "q.ply").read_bytes()[:600]
    assert b"property float nx" in header or b"nx" in header
    meta = json.loads((out / "q.camera.json").read_text())
    assert meta["point_cleanup"] == {"voxel_size": 0.1, "remove_outliers": True, "normals": True}
    capsys.readouterr()
    assert main(["mesh", str(photos), "-o", str(out), "--depth", str(depths), "--voxel-size", "0.1"]) == 1
    assert "--points" in capsys.readouterr().err


def test_face_budget_summary_and_per_file_lines(tmp_path, capsys):
    photos, depths = make_inputs(tmp_path, ("s",))
    out = tmp_path / "out"
    assert main(["mesh", str(photos), "-o", str(out), "--depth", str(depths), "--depth-kind", "metric",
                 "--format", "ply,glb,splat"]) == 0
    printed = capsys.readouterr().out
    assert "at most 2,000,000 faces" in printed and "--max-faces 0" in printed
    meta = json.loads((out / "s.camera.json").read_text())
    faces = meta["geometry"]["faces"]
    assert meta["mesh"]["max_faces"] == 2_000_000 and not meta["geometry"]["decimated"]  # 80x60 fits the budget
    lines = {line.split()[0]: line for line in printed.splitlines() if line.startswith("  ")}
    assert set(lines) == {"s.ply", "s.glb", "s.splat.ply", "s.camera.json"}
    assert f"{faces:,} faces" in lines["s.ply"] and f"{faces:,} faces" in lines["s.glb"]
    assert "Gaussians" in lines["s.splat.ply"]
    size_kb = (out / "s.glb").stat().st_size / 1000
    assert f"{size_kb:.1f} KB" in lines["s.glb"]
    gltf = json.loads((out / "s.glb").read_bytes()[20:20 + int.from_bytes((out / "s.glb").read_bytes()[12:16], "little")])
    assert "KHR_materials_unlit" in gltf.get("extensionsUsed", [])

    # --max-faces 0 is full resolution; --no-unlit drops the extension
    assert main(["mesh", str(photos), "-o", str(out), "--depth", str(depths), "--depth-kind", "metric",
                 "--format", "glb", "--max-faces", "0", "--no-unlit", "--overwrite"]) == 0
    assert "(full resolution)" in capsys.readouterr().out
    data = (out / "s.glb").read_bytes()
    gltf = json.loads(data[20:20 + int.from_bytes(data[12:16], "little")])
    assert "extensionsUsed" not in gltf

    # a small budget decimates and says so
    assert main(["mesh", str(photos), "-o", str(out), "--depth", str(depths), "--depth-kind", "metric",
                 "--format", "ply", "--max-faces", "500", "--overwrite"]) == 0
    assert "at most 500 faces" in capsys.readouterr().out
    assert json.loads((out / "s.camera.json").read_text())["geometry"]["faces"] <= 500


@pytest.mark.parametrize("value", ["1", "-5"])
def test_bad_face_budget(tmp_path, capsys, value):
    photos, depths = make_inputs(tmp_path, ("s",))
    assert main(["mesh", str(photos), "-o", str(tmp_path / "out"), "--depth", str(depths),
                 "--max-faces", value]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "max faces" in err and value in err
