"""`depthstudio depth`: output files, bad inputs in a batch, resumable runs."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from depthstudio.cli import main


def _texture(w, h, seed=0):
    rng = np.random.default_rng(seed)
    return np.kron(rng.integers(0, 255, (h // 10 + 1, w // 10 + 1, 3)), np.ones((10, 10, 1)))[:h, :w].astype(np.uint8)


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(_texture(160, 120)).save(folder / "good.jpg", quality=92)
    img = Image.fromarray(_texture(80, 60, 1))
    exif = img.getexif()
    exif[0x0112] = 8
    img.save(folder / "rotated.jpg", exif=exif)
    Image.fromarray(_texture(90, 70, 2)).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 21).astype(np.uint16)).save(folder / "gray16.png")
    rgba = np.dstack([_texture(50, 40, 3), np.full((40, 50), 255, np.uint8)])
    rgba[:, :10, 3] = 0
    Image.fromarray(rgba).save(folder / "alpha.png")
    Image.fromarray(_texture(40, 30, 4)).save(folder / "ünïcødé 写真.png")
    # bad ones
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("hello, not an image\n")
    data = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 4])
    Image.new("RGB", (1, 1)).save(folder / "dot.png")
    return folder


GOOD = {"good": (120, 160), "rotated": (80, 60), "cmyk": (70, 90), "gray16": (48, 64), "alpha": (40, 50),
        "ünïcødé 写真": (30, 40)}
BAD = ("empty", "text", "truncated", "dot")


def test_folder_with_bad_inputs(photo_folder, tmp_path, tiny_onnx, capsys):
    out = tmp_path / "out"
    code = main(["depth", str(photo_folder), "-o", str(out), "--model", str(tiny_onnx), "--exr", "--color"])
    err = capsys.readouterr().err
    assert code == 1
    for stem, shape in GOOD.items():
        depth = np.load(out / f"{stem}_depth.npy")
        assert depth.dtype == np.float32 and depth.shape == shape
        png = np.asarray(Image.open(out / f"{stem}_depth.png"))
        assert png.dtype == np.uint16 and png.shape == shape
        assert (out / f"{stem}_depth.exr").stat().st_size > 0
        assert np.asarray(Image.open(out / f"{stem}_depth_color.png")).shape == (*shape, 3)
    for stem in BAD:
        assert not list(out.glob(f"{stem}_*")), stem
        assert f"{stem}." in err
    assert "Traceback" not in err
    assert not [p for p in out.iterdir() if ".part" in p.name]  # no temporary files left behind
    alpha = np.asarray(Image.open(out / "alpha_depth.png"))
    assert (alpha[:, :10] == 0).all() and (alpha[:, 10:] > 0).all()  # transparent = no surface


def test_png_is_near_bright(tmp_path, tiny_onnx):
    from depthstudio.depthmap import DepthMap

    metric = DepthMap(np.array([[1.0, 2.0], [4.0, 0.0]], np.float32), kind="metric")
    png = metric.to_png16()
    assert png[0, 0] == 65535 and png[0, 1] > png[1, 0] > 0 and png[1, 1] == 0
    disparity = DepthMap(np.array([[1.0, 0.5], [0.25, np.nan]], np.float32), kind="disparity")
    png = disparity.to_png16()
    assert png[0, 0] == 65535 and png[0, 1] > png[1, 0] and png[1, 1] == 0


def test_rerun_skips_finished_images(photo_folder, tmp_path, tiny_onnx, capsys):
    out = tmp_path / "out"
    good = photo_folder / "good.jpg"
    assert main(["depth", str(good), "-o", str(out), "--model", str(tiny_onnx)]) == 0
    stamp = (out / "good_depth.npy").stat().st_mtime_ns
    assert main(["depth", str(good), "-o", str(out), "--model", str(tiny_onnx)]) == 0
    assert "skipped" in capsys.readouterr().out
    assert (out / "good_depth.npy").stat().st_mtime_ns == stamp
    assert main(["depth", str(good), "-o", str(out), "--model", str(tiny_onnx), "--overwrite"]) == 0
    assert (out / "good_depth.npy").stat().st_mtime_ns != stamp


def test_list_file_and_missing_entries(photo_folder, tmp_path, tiny_onnx, capsys):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{photo_folder / 'good.jpg'}\nnope.jpg\n")
    code = main(["depth", str(listing), "-o", str(tmp_path / "out"), "--model", str(tiny_onnx)])
    assert code == 1 and (tmp_path / "out" / "good_depth.npy").exists()
    assert "nope.jpg: file not found" in capsys.readouterr().err


def test_unwritable_output(photo_folder, tmp_path, tiny_onnx, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code = main(["depth", str(photo_folder / "good.jpg"), "-o", str(blocker / "out"), "--model", str(tiny_onnx)])
    assert code == 1
    assert "cannot create output folder" in capsys.readouterr().err


def test_bad_model_file_is_one_message(photo_folder, tmp_path, capsys):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not onnx at all")
    code = main(["depth", str(photo_folder / "good.jpg"), "-o", str(tmp_path / "out"), "--model", str(bad)])
    err = capsys.readouterr().err
    assert code == 1 and "not a valid ONNX model" in err and err.count("\n") == 1


def test_python_api(tiny_onnx):
    import depthstudio

    depth = depthstudio.estimate_depth(_texture(64, 48), model=str(tiny_onnx))
    assert isinstance(depth, depthstudio.DepthMap)
    assert depth.values.shape == (48, 64) and depth.kind == "disparity" and depth.model_id == "tiny-da.onnx"
    assert depth.valid.all()
