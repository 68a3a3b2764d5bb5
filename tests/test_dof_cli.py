"""`depthstudio dof`: stills, folders, focus-pull videos, depth you bring or a model, and bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from depthstudio.cli import main

pytest.importorskip("cv2", reason="the lens blur needs OpenCV: pip install 'depthstudio[render]'")


@pytest.fixture
def scene(tmp_path) -> tuple[Path, Path]:
    """A 240x160 photo (noise texture) and its metric depth: a near box in front of a far wall."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(40, 220, size=(160, 240, 3), dtype=np.uint8)
    z = np.full((160, 240), 9.0, np.float32)
    z[40:120, 60:140] = 1.5
    Image.fromarray(rgb).save(tmp_path / "shot.png")
    np.save(tmp_path / "shot.npy", z)
    return tmp_path / "shot.png", tmp_path / "shot.npy"


def detail(rgb: np.ndarray, region) -> float:
    g = rgb.astype(np.float64).mean(axis=2)[region]
    return float(np.abs(np.diff(g, axis=1)).mean())


def test_still_with_focus_point_and_metadata(scene, tmp_path):
    photo, depth = scene
    out = tmp_path / "out" / "dof.png"
    code = main(["dof", str(photo), "-o", str(out), "--depth", str(depth), "--depth-kind", "metric",
                 "--focus-point", "100,80", "--f-number", "1.4", "--focal-mm", "85"])
    assert code == 0
    src, res = np.asarray(Image.open(photo)), np.asarray(Image.open(out))
    assert res.shape == src.shape
    box, wall = np.s_[50:110, 70:130], np.s_[5:35, 5:235]
    assert detail(res, box) > 0.95 * detail(src, box)  # the box is in focus
    assert detail(res, wall) < 0.3 * detail(src, wall)  # the wall behind is not
    meta = json.loads((tmp_path / "out" / "dof.dof.json").read_text())
    assert meta["focus_distance"] == pytest.approx(1.5)
    assert meta["sharp_from"] < 1.5 < meta["sharp_to"]
    assert meta["focal_mm_35mm_equivalent"] == pytest.approx(85.0)
    assert meta["settings"]["f_number"] == 1.4


def test_focus_distance_and_fraction_point_agree(scene, tmp_path):
    photo, depth = scene
    common = ["--depth", str(depth), "--depth-kind", "metric", "--focal-mm", "85", "--f-number", "2"]
    assert main(["dof", str(photo), "-o", str(tmp_path / "a.png"), "--focus-distance", "9", *common]) == 0
    assert main(["dof", str(photo), "-o", str(tmp_path / "b.png"), "--focus-point", "0.05,0.05", *common]) == 0
    a, b = np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    assert np.array_equal(a, b)
    src = np.asarray(Image.open(photo))
    assert np.array_equal(a[:20, :20], src[:20, :20])  # the wall is the focus: untouched far from the box


def test_relative_depth_png_through_near_far(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, size=(120, 200, 3), dtype=np.uint8)
    disparity = np.full((120, 200), 1000, np.uint16)
    disparity[:, 100:] = 65535  # right half near, left half far
    Image.fromarray(rgb).save(tmp_path / "p.jpg", quality=95)
    Image.fromarray(disparity).save(tmp_path / "p_depth.png")  # 16-bit gray
    out = tmp_path / "p_dof.jpg"
    code = main(["dof", str(tmp_path / "p.jpg"), "-o", str(out), "--depth", str(tmp_path), "--near", "1",
                 "--far", "20", "--focus-distance", "20", "--f-number", "1.4", "--focal-mm", "70"])
    assert code == 0
    res, src = np.asarray(Image.open(out)), np.asarray(Image.open(tmp_path / "p.jpg"))
    # far (left) stays sharp, near (right) is blurred
    assert detail(res, np.s_[:, :80]) > 0.9 * detail(src, np.s_[:, :80])
    assert detail(res, np.s_[:, -80:]) < 0.3 * detail(src, np.s_[:, -80:])


def test_focus_pull_video(scene, tmp_path):
    import av

    photo, depth = scene
    out = tmp_path / "pull.mp4"
    code = main(["dof", str(photo), "-o", str(out), "--depth", str(depth), "--depth-kind", "metric",
                 "--focus-pull", "1.5:9", "--duration", "1", "--fps", "8", "--focal-mm", "85", "--f-number", "2"])
    assert code == 0
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 8
    assert frames[0].shape == (160, 240, 3)
    box, wall = np.s_[50:110, 70:130], np.s_[5:35, 5:235]
    # focus moves from the box to the wall
    assert detail(frames[0], box) > detail(frames[-1], box) * 1.5
    assert detail(frames[-1], wall) > detail(frames[0], wall) * 1.5


def test_focus_pull_between_points_as_gif(scene, tmp_path):
    photo, depth = scene
    out = tmp_path / "pull.gif"
    code = main(["dof", str(photo), "-o", str(out), "--depth", str(depth), "--depth-kind", "metric",
                 "--focus-pull", "100,80:10,10", "--duration", "0.5", "--fps", "6", "--size", "120x80"])
    assert code == 0
    with Image.open(out) as gif:
        assert gif.size == (120, 80) and gif.n_frames == 3


def test_folder_output_and_one_bad_input(scene, tmp_path):
    photo, depth = scene
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    np.save(tmp_path / "broken.npy", np.ones((160, 240), np.float32))
    out = tmp_path / "outdir"
    code = main(["dof", str(photo), str(bad), "-o", str(out), "--depth", str(tmp_path), "--depth-kind", "metric"])
    assert code == 1
    assert (out / "shot_dof.png").is_file()
    assert not (out / "broken_dof.png").exists()


@pytest.mark.parametrize("flags, message", [
    (["--f-number", "0"], "(--f-number) must be > 0"),
    (["--f-number", "-2"], "(--f-number) must be > 0"),
    (["--focus-point", "500,20"], "outside the image"),
    (["--focus-distance", "-3"], "(--focus-distance) must be > 0"),
    (["--blades", "1"], "blades"),
])
def test_bad_settings(scene, tmp_path, capsys, flags, message):
    photo, depth = scene
    out = tmp_path / "x.png"
    code = main(["dof", str(photo), "-o", str(out), "--depth", str(depth), "--depth-kind", "metric", *flags])
    assert code == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".x.*"))  # nothing half-written


def test_depth_of_the_wrong_shape(scene, tmp_path, capsys):
    photo, _ = scene
    np.save(tmp_path / "square.npy", np.ones((100, 100), np.float32))
    code = main(["dof", str(photo), "-o", str(tmp_path / "x.png"), "--depth", str(tmp_path / "square.npy"),
                 "--depth-kind", "metric"])
    assert code == 1
    assert "depth is 100x100 but the image is 240x160" in capsys.readouterr().err


def test_output_type_checks(scene, tmp_path, capsys):
    photo, depth = scene
    assert main(["dof", str(photo), "-o", str(tmp_path / "x.xyz"), "--depth", str(depth)]) == 1
    assert "unknown output type" in capsys.readouterr().err
    assert main(["dof", str(photo), "-o", str(tmp_path / "x.png"), "--depth", str(depth), "--focus-pull", "1:2"]) == 1
    assert "makes a video" in capsys.readouterr().err


def test_with_a_model(scene, tmp_path, tiny_onnx):
    photo, _ = scene
    out = tmp_path / "m.png"
    assert main(["dof", str(photo), "-o", str(out), "--model", str(tiny_onnx), "--preview"]) == 0
    assert np.asarray(Image.open(out)).shape == (160, 240, 3)
    meta = json.loads((tmp_path / "m.dof.json").read_text())
    assert meta["depth"].startswith("model:") and meta["preview"] is True
