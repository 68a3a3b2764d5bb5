"""Image loading as real photos need it: EXIF orientation, bit depths, colour modes, bad files."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from depthstudio.errors import InputError
from depthstudio.io.images import find_inputs, load_image


def _gradient(w=64, h=48):
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    planes = [np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)), np.full((h, w, 1), 128, np.float32)]
    return np.concatenate(planes, 2).astype(np.uint8)


def test_exif_orientation_is_applied(tmp_path):
    rgb = _gradient(64, 48)
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    photo = load_image(tmp_path / "rot.jpg")
    assert (photo.width, photo.height) == (48, 64)


def test_sixteen_bit_png_scales_to_eight_bit(tmp_path):
    values = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    photo = load_image(tmp_path / "g16.png")
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == (30, 40, 3)
    assert photo.rgb[0, 0, 0] == 0 and photo.rgb[-1, -1, 0] == 255


def test_rgba_keeps_alpha_as_mask(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, 15:, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "a.png")
    photo = load_image(tmp_path / "a.png")
    assert photo.alpha is not None and photo.alpha[:, 15:].all() and not photo.alpha[:, :15].any()


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "LA", "I;16"])
def test_colour_modes_become_rgb(tmp_path, mode):
    base = Image.fromarray(_gradient(32, 24))
    img = base.convert(mode) if mode != "I;16" else Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257)
    suffix = ".jpg" if mode == "CMYK" else (".tif" if mode == "LA" else ".png")
    img.save(tmp_path / f"img{suffix}")
    photo = load_image(tmp_path / f"img{suffix}")
    assert photo.rgb.shape == (24, 32, 3) and photo.rgb.dtype == np.uint8
    assert photo.rgb.std() > 10  # the gradient survived the conversion


def test_non_ascii_path(tmp_path):
    path = tmp_path / "фото_写真.png"
    Image.fromarray(_gradient()).save(path)
    assert load_image(path).width == 64


@pytest.mark.parametrize(
    "name,content,words",
    [
        ("empty.jpg", b"", "empty"),
        ("text.jpg", b"this is not a picture\n" * 10, "not an image"),
        ("truncated.jpg", None, "truncated"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, name, content, words):
    path = tmp_path / name
    if content is None:
        Image.fromarray(_gradient(400, 300)).save(tmp_path / "full.jpg", quality=90)
        data = (tmp_path / "full.jpg").read_bytes()
        content = data[: len(data) // 3]
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        load_image(path)
    assert words in str(info.value) and name in str(info.value)


def test_one_pixel_image_rejected(tmp_path):
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(InputError, match="at least 2x2"):
        load_image(tmp_path / "dot.png")


def test_huge_dimensions_rejected_before_decoding(tmp_path):
    # A valid PNG header claiming 100000 x 100000 pixels, with almost no data: a decompression bomb.
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(png)
    with pytest.raises(InputError, match="over the limit"):
        load_image(tmp_path / "bomb.png")


def test_find_inputs_folders_and_lists(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ("a/one.jpg", "a/b/two.PNG", "a/notes.md"):
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# photos\na/one.jpg\n\nmissing.jpg\n")
    found = find_inputs([str(tmp_path / "a"), str(tmp_path / "list.txt")])
    names = [p.name for p in found]
    # one.jpg found twice (folder and list) is kept once; notes.md is not an image; the missing file is
    # kept so that the batch reports it
    assert sorted(names) == ["missing.jpg", "one.jpg", "two.PNG"]


def test_heic_when_the_plugin_is_installed(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    Image.fromarray(_gradient(60, 40)).save(tmp_path / "phone.heic")
    photo = load_image(tmp_path / "phone.heic")
    assert photo.rgb.shape == (40, 60, 3) and photo.rgb.std() > 10
