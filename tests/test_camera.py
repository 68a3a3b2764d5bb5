"""Intrinsics: focal-length sources in order, EXIF edge cases, FoV <-> focal, principal point, scaling."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from depthstudio.errors import SettingsError
from depthstudio.geometry.camera import (
    CameraSettings,
    Intrinsics,
    exif_focal_px,
    focal_to_fov,
    fov_to_focal,
    resolve_intrinsics,
)
from depthstudio.geometry.unproject import project, unproject
from depthstudio.io.images import load_image


@pytest.mark.parametrize("fov", [1.0, 30.0, 60.0, 90.0, 120.0, 179.0])
@pytest.mark.parametrize("size", [7, 640, 4000])
def test_fov_focal_round_trip(fov, size):
    assert focal_to_fov(fov_to_focal(fov, size), size) == pytest.approx(fov, rel=1e-12)


def test_known_focal_values():
    assert fov_to_focal(90.0, 640) == pytest.approx(320.0)
    k = Intrinsics.from_fov(640, 480, 60.0)
    assert k.fx == pytest.approx(320 / math.tan(math.radians(30)))
    assert (k.cx, k.cy, k.source) == (320.0, 240.0, "default")
    assert k.hfov_deg == pytest.approx(60.0)
    assert k.vfov_deg == pytest.approx(math.degrees(2 * math.atan(240 / k.fy)))
    # a 36 mm-wide sensor: Blender's lens for the same view
    assert k.focal_mm(36.0) == pytest.approx(k.fx * 36 / 640)


@pytest.mark.parametrize("bad", [0.0, -10.0, 180.0, 200.0, float("nan")])
def test_bad_fov_is_a_settings_error(bad):
    with pytest.raises(SettingsError):
        resolve_intrinsics(640, 480, CameraSettings(fov_deg=bad))


def test_35mm_equivalent_uses_the_diagonal():
    # 3:2 image: the diagonal and the width definitions agree (36 mm wide frame)
    k = Intrinsics.from_focal_35mm(3000, 2000, 50.0)
    assert k.fx == pytest.approx(50.0 / 36.0 * 3000, rel=1e-9)
    assert k.focal_35mm == pytest.approx(50.0)
    # 4:3 image: the diagonal definition (43.27 mm) gives a slightly wider view than width / 36
    k43 = Intrinsics.from_focal_35mm(4000, 3000, 26.0)
    assert k43.fx == pytest.approx(26.0 * 5000 / math.hypot(36, 24))


def test_source_order_flags_exif_model_default():
    exif = {"focal_length_35mm": 28.0, "focal_length_mm": 4.2}
    assert resolve_intrinsics(800, 600, CameraSettings(fov_deg=70), exif, 500.0).source == "flags"
    assert resolve_intrinsics(800, 600, CameraSettings(fx=700.0), exif).fy == 700.0
    assert resolve_intrinsics(800, 600, CameraSettings(focal_mm=50), exif).fx == pytest.approx(
        50 * 1000 / math.hypot(36, 24))
    k = resolve_intrinsics(800, 600, None, exif, 500.0)
    assert k.source == "exif-35mm" and k.fx == pytest.approx(28 * 1000 / math.hypot(36, 24))
    assert resolve_intrinsics(800, 600, None, {}, 500.0).source == "model"
    assert resolve_intrinsics(800, 600, None, {}, 500.0).fx == 500.0
    k = resolve_intrinsics(800, 600)
    assert k.source == "default" and k.hfov_deg == pytest.approx(60.0)


def test_exif_focal_length_and_sensor_resolution():
    # 6000 px across a 23.5 mm sensor (APS-C): focal plane resolution in pixels per cm (unit 3)
    exif = {"focal_length_mm": 35.0, "focal_plane_x_resolution": 6000 / 2.35, "focal_plane_resolution_unit": 3}
    k = resolve_intrinsics(6000, 4000, exif=exif)
    assert k.source == "exif-sensor"
    assert k.fx == pytest.approx(35.0 * 6000 / 23.5)
    # inches (unit 2, the EXIF default)
    exif = {"focal_length_mm": 35.0, "focal_plane_x_resolution": 6000 / (23.5 / 25.4)}
    assert resolve_intrinsics(6000, 4000, exif=exif).fx == pytest.approx(35.0 * 6000 / 23.5)


@pytest.mark.parametrize("exif", [
    {"focal_length_35mm": 0.0},  # "unknown" as many phones write it
    {"focal_length_35mm": -28.0},
    {"focal_length_35mm": 1e9},  # absurdly long: FoV below the plausible range
    {"focal_length_35mm": 0.01},  # absurdly wide
    {"focal_length_35mm": float("nan")},
    {"focal_length_35mm": "abc"},
    {"focal_length_mm": 4.2},  # a focal length alone does not fix the view without the sensor size
    {"focal_length_mm": 4.2, "focal_plane_x_resolution": 0.0},
    {"focal_length_mm": 4.2, "focal_plane_x_resolution": 100.0, "focal_plane_resolution_unit": 99},
    {"focal_length_mm": 50.0, "focal_plane_x_resolution": 1e7, "focal_plane_resolution_unit": 4},
    {"make": "Acme", "model": "X"},
])
def test_nonsense_or_missing_exif_falls_back_to_default(exif):
    assert exif_focal_px(4000, 3000, exif) is None
    k = resolve_intrinsics(4000, 3000, exif=exif)
    assert k.source == "default" and k.hfov_deg == pytest.approx(60.0)


def test_nonsense_35mm_falls_through_to_sensor_rule():
    exif = {"focal_length_35mm": 0, "focal_length_mm": 35.0, "focal_plane_x_resolution": 6000 / 23.5,
            "focal_plane_resolution_unit": 4}
    assert resolve_intrinsics(6000, 4000, exif=exif).source == "exif-sensor"


def test_exif_from_a_real_jpeg(tmp_path):
    img = Image.fromarray(np.full((300, 400, 3), 128, np.uint8))
    exif = Image.Exif()
    exif_ifd = {0xA405: 24, 0x920A: 4.25}  # FocalLengthIn35mmFilm, FocalLength
    for tag, value in exif_ifd.items():
        exif.get_ifd(0x8769)[tag] = value
    img.save(tmp_path / "phone.jpg", exif=exif)
    photo = load_image(tmp_path / "phone.jpg")
    assert photo.exif.get("focal_length_35mm") == 24
    k = resolve_intrinsics(photo.width, photo.height, exif=photo.exif)
    assert k.source == "exif-35mm"
    assert k.fx == pytest.approx(24 * 500 / math.hypot(36, 24))


def test_principal_point_offsets_move_the_projection():
    k = resolve_intrinsics(640, 480, CameraSettings(fx=500.0, cx=300.0, cy=260.5))
    assert (k.cx, k.cy) == (300.0, 260.5)
    z = np.full((480, 640), 2.0, np.float32)
    pts = unproject(z, k)
    # the principal ray (depth axis) passes through (cx, cy): the pixel whose centre is there has x = y = 0
    assert pts[260, 299, 0] == pytest.approx(-0.5 / 500 * 2, abs=1e-6)
    assert pts[260, 300, 1] == pytest.approx(0.0, abs=1e-6)
    xy = project(pts.reshape(-1, 3), k).reshape(480, 640, 2)
    cols, rows = np.meshgrid(np.arange(640) + 0.5, np.arange(480) + 0.5)
    np.testing.assert_allclose(xy[..., 0], cols, atol=1e-3)
    np.testing.assert_allclose(xy[..., 1], rows, atol=1e-3)
    dx, dy = k.principal_offset
    assert dx == pytest.approx(-20 / 640) and dy == pytest.approx(-20.5 / 480)


def test_scaled_keeps_the_view():
    k = resolve_intrinsics(4000, 3000, CameraSettings(fov_deg=65, cx=2010, cy=1490))
    s = k.scaled(1000, 750)
    assert s.hfov_deg == pytest.approx(k.hfov_deg)
    assert (s.cx, s.cy) == (pytest.approx(502.5), pytest.approx(372.5))
    assert s.source == k.source
    # a point projects to the same relative position before and after resizing
    p = np.array([[0.3, -0.2, -2.0]])
    np.testing.assert_allclose(project(p, s)[0] * 4, project(p, k)[0], rtol=1e-9)


def test_dict_round_trip_and_matrix():
    k = Intrinsics(600.0, 610.0, 321.0, 239.0, 640, 480, "exif-35mm")
    again = Intrinsics.from_dict(k.to_dict())
    assert again == k
    np.testing.assert_allclose(k.matrix, [[600, 0, 321], [0, 610, 239], [0, 0, 1]])
    # the room scene's camera.json style (fx + hfov extras) loads too
    assert Intrinsics.from_dict({"width": 640, "height": 480, "hfov_deg": 90}).fx == pytest.approx(320)
