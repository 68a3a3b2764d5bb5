"""Depth stored by phones inside the photo: GDepth JPEG (XMP, standard + extended) and HEIC depth
images; `--depth embedded` on the command line."""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest

from depthstudio.errors import InputError

NEAR, FAR = 0.5, 5.0


def _app1(payload: bytes) -> bytes:
    return b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload


def gdepth_jpeg(rgb: np.ndarray, z: np.ndarray, fmt: str = "RangeInverse", extended: bool = True,
                orientation: int | None = None) -> bytes:
    """A JPEG with a GDepth depth map: 16-bit PNG of normalised depth, base64 in the XMP; with
    ``extended`` the data goes into extended XMP segments of at most 60000 bytes each, as phones do."""
    from PIL import Image

    if fmt == "RangeInverse":
        d = FAR * (1 - NEAR / z) / (FAR - NEAR)
    else:
        d = (z - NEAR) / (FAR - NEAR)
    png = io.BytesIO()
    Image.fromarray(np.round(d * 65535).astype(np.uint16)).save(png, format="PNG")
    data = base64.b64encode(png.getvalue()).decode()
    ns = 'xmlns:GDepth="http://ns.google.com/photos/1.0/depth/"'
    attrs = f'GDepth:Format="{fmt}" GDepth:Near="{NEAR}" GDepth:Far="{FAR}" GDepth:Units="m" GDepth:MimeType="image/png"'
    if extended:
        guid = "0123456789ABCDEF0123456789ABCDEF"
        main = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                f'<rdf:Description {ns} xmlns:xmpNote="http://ns.adobe.com/xmp/note/" {attrs} '
                f'xmpNote:HasExtendedXMP="{guid}"/></rdf:RDF></x:xmpmeta>')
        ext = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
               f'<rdf:Description {ns} GDepth:Data="{data}"/></rdf:RDF></x:xmpmeta>').encode()
        segments = [_app1(b"http://ns.adobe.com/xap/1.0/\x00" + main.encode())]
        step = 60000
        chunks = [(i, ext[i : i + step]) for i in range(0, len(ext), step)]
        for offset, chunk in reversed(chunks):  # any order: the offsets put them back
            segments.append(_app1(b"http://ns.adobe.com/xmp/extension/\x00" + guid.encode() + len(ext).to_bytes(4, "big")
                                  + offset.to_bytes(4, "big") + chunk))
    else:
        main = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                f'<rdf:Description {ns} {attrs}><GDepth:Data>{data}</GDepth:Data></rdf:Description></rdf:RDF></x:xmpmeta>')
        segments = [_app1(b"http://ns.adobe.com/xap/1.0/\x00" + main.encode())]
    out = io.BytesIO()
    image = Image.fromarray(rgb)
    if orientation:
        exif = image.getexif()
        exif[0x0112] = orientation
        image.save(out, format="JPEG", quality=90, exif=exif.tobytes())
    else:
        image.save(out, format="JPEG", quality=90)
    jpeg = out.getvalue()
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def scene(h=120, w=160):
    yy, xx = np.mgrid[0:h, 0:w]
    z = (1.0 + 3.0 * xx / (w - 1) + 0.5 * yy / (h - 1)).astype(np.float32)
    rgb = np.dstack([(xx * 1.5) % 256, (yy * 2) % 256, np.full_like(xx, 90)]).astype(np.uint8)
    return rgb, z


@pytest.mark.parametrize("fmt,extended", [("RangeInverse", True), ("RangeLinear", False)])
def test_gdepth_jpeg_gives_metric_depth(tmp_path, fmt, extended):
    from depthstudio.io.phonedepth import read_embedded_depth

    rgb, z = scene()
    path = tmp_path / "pixel.jpg"
    path.write_bytes(gdepth_jpeg(rgb, z, fmt, extended))
    depth = read_embedded_depth(path)
    assert depth.kind == "metric" and depth.shape == z.shape
    np.testing.assert_allclose(depth.values, z, rtol=2e-4)
    assert depth.meta["embedded"]["range"] == fmt


def test_depth_embedded_on_the_command_line(tmp_path, capsys):
    from depthstudio.cli import main

    rgb, z = scene()
    (tmp_path / "pixel.jpg").write_bytes(gdepth_jpeg(rgb, z))
    assert main(["mesh", str(tmp_path / "pixel.jpg"), "-o", str(tmp_path / "out"), "--depth", "embedded",
                 "--format", "ply", "--points"]) == 0
    meta = json.loads((tmp_path / "out" / "pixel.camera.json").read_text())
    assert meta["depth"]["kind"] == "metric" and "embedded" in meta["depth"]["file"]
    from PIL import Image

    Image.fromarray(rgb).save(tmp_path / "plain.jpg")
    assert main(["mesh", str(tmp_path / "plain.jpg"), "-o", str(tmp_path / "out2"), "--depth", "embedded"]) == 1
    assert "no GDepth depth map" in capsys.readouterr().err


def test_embedded_depth_turns_with_the_photo(tmp_path):
    """A portrait JPEG stored sideways (EXIF orientation 6): the depth turns as the photo does."""
    from depthstudio.io.images import load_image
    from depthstudio.source import DepthFileSettings, DepthSource

    rgb, z = scene()
    path = tmp_path / "turned.jpg"
    path.write_bytes(gdepth_jpeg(rgb, z, orientation=6))
    photo = load_image(path)
    assert (photo.width, photo.height) == (120, 160)
    turned = np.rot90(rgb[..., 0], -1).astype(float)  # orientation 6: 90 degrees clockwise
    assert np.abs(photo.rgb[..., 0] - turned).mean() < 3  # (JPEG) the photo turned this way
    depth = DepthSource(files=DepthFileSettings(depth=Path("embedded"))).depth_for(photo)
    np.testing.assert_allclose(depth.values, np.rot90(z, -1), rtol=2e-4)  # and the depth with it


def test_heic_without_depth_is_a_clear_error(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    from PIL import Image

    from depthstudio.io.phonedepth import read_embedded_depth

    rgb, _ = scene()
    path = tmp_path / "plain.heic"
    pillow_heif.from_pillow(Image.fromarray(rgb)).save(str(path), quality=80)
    with pytest.raises(InputError, match="holds no depth image") as info:
        read_embedded_depth(path)
    assert str(path) in str(info.value)


def test_heic_depth_representations():
    """libheif reports each depth image's representation (ISO/IEC 23002-3); pillow-heif cannot
    write depth images, so the conversion is checked on the samples and metadata it returns."""
    from depthstudio.io.phonedepth import UNIFORM_DISPARITY, UNIFORM_INVERSE_Z, UNIFORM_Z, heif_depth_values

    v = np.linspace(0.0, 1.0, 11, dtype=np.float32)[None]
    depth = heif_depth_values(v, {"representation_type": UNIFORM_Z, "d_min": 0.5, "d_max": 4.5})
    assert depth.kind == "metric"
    np.testing.assert_allclose(depth.values[0, 1:], 0.5 + 4.0 * v[0, 1:], rtol=1e-6)
    assert depth.values[0, 0] == 0  # a 0 sample is "no surface"
    depth = heif_depth_values(v, {"representation_type": UNIFORM_INVERSE_Z, "d_min": 0.5, "d_max": 4.5})
    np.testing.assert_allclose(1 / depth.values[0, 1:], 1 / 4.5 + v[0, 1:] * (1 / 0.5 - 1 / 4.5), rtol=1e-5)
    depth = heif_depth_values(v, {"representation_type": UNIFORM_DISPARITY, "d_min": 0.0, "d_max": 2.0})
    assert depth.kind == "disparity" and depth.values[0, -1] == pytest.approx(2.0)
    assert heif_depth_values(v, {}).kind == "disparity"


def test_prompt_depth_anything_upsamples_the_phone_depth(tmp_path, capsys):
    pytest.importorskip("transformers")
    from PIL import Image

    from depthstudio.cli import main
    from depthstudio.io.phonedepth import read_embedded_depth
    from depthstudio.models.estimator import load_estimator
    from depthstudio.models.random_init import make_random_prompt_depth_anything

    folder = make_random_prompt_depth_anything(tmp_path / "pda")
    rgb, z = scene(240, 320)
    small = np.asarray(Image.fromarray(z).resize((80, 60), Image.BILINEAR))  # a phone's low-resolution depth
    path = tmp_path / "lidar.jpg"
    path.write_bytes(gdepth_jpeg(rgb, small))
    est = load_estimator(str(folder), "torch")
    prompt = read_embedded_depth(path)
    depth = est.predict(rgb, prompt=prompt)
    assert depth.shape == (240, 320) and depth.kind == "metric" and depth.meta["prompt"]["size"] == [80, 60]
    # the model maps its output back into the prompt's metric range
    assert depth.values.min() >= small.min() - 1e-3 and depth.values.max() <= small.max() + 1e-3
    assert not np.allclose(depth.values, est.predict(rgb).values)
    assert main(["mesh", str(path), "-o", str(tmp_path / "out"), "--depth", "embedded", "--model", str(folder),
                 "--backend", "torch", "--format", "ply", "--points"]) == 0
    assert json.loads((tmp_path / "out" / "lidar.camera.json").read_text())["depth"]["kind"] == "metric"
    disparity = type(prompt)(prompt.values, "disparity")
    from depthstudio.errors import ModelError

    with pytest.raises(ModelError, match="metric"):
        est.predict(rgb, prompt=disparity)
