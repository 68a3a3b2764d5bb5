"""Thin-lens maths: circle of confusion, depth-of-field limits, focus by point."""
from __future__ import annotations

import math

import numpy as np
import pytest

from depthstudio.errors import SettingsError
from depthstudio.render import lens


def test_circle_of_confusion_matches_the_thin_lens_formula():
    fx, f_mm, n, s = 2000.0, 50.0, 2.0, 3.0
    z = np.array([1.5, 3.0, 6.0, 1e9], np.float32)
    coc = lens.circle_of_confusion(z, s, n, f_mm, fx)
    f = f_mm / 1000
    # by hand: aperture f/N, image distance difference, sensor pitch f/fx
    expected = [(f / n) * f / (s - f) * (zz - s) / zz * fx / f for zz in z.astype(np.float64)]
    np.testing.assert_allclose(coc, expected, rtol=1e-4)
    assert coc[1] == 0.0  # the focus plane is sharp
    assert coc[0] < 0 < coc[2]  # in front negative, behind positive
    assert abs(coc[3] - lens.blur_scale_px(n, f_mm, s, fx)) < 1e-3  # infinity -> the asymptote


def test_blur_is_monotonic_in_depth_and_in_aperture():
    z = np.linspace(0.5, 50, 200).astype(np.float32)
    coc = lens.circle_of_confusion(z, 4.0, 2.8, 85.0, 3000.0)
    assert np.all(np.diff(coc) > 0)  # signed blur sorts by depth
    widths = [abs(float(lens.circle_of_confusion(np.float32([20.0]), 4.0, n, 85.0, 3000.0)[0]))
              for n in (16, 8, 5.6, 4, 2.8, 2, 1.4)]
    assert all(b > a for a, b in zip(widths, widths[1:]))


def test_invalid_depth_is_at_infinity_and_max_blur_caps_both_sides():
    z = np.array([0.0, np.nan, np.inf, -1.0, 0.2, 100.0], np.float32)
    coc = lens.circle_of_confusion(z, 2.0, 1.4, 50.0, 1000.0, max_blur_px=10.0)
    inf_blur = min(lens.blur_scale_px(1.4, 50.0, 2.0, 1000.0), 10.0)
    np.testing.assert_allclose(coc[:4], inf_blur, rtol=1e-5)
    assert coc[4] == -10.0  # very near, capped
    assert np.all(np.abs(coc) <= 10.0)


@pytest.mark.parametrize("n", [0.0, -2.8, float("nan"), float("inf")])
def test_bad_f_number(n):
    with pytest.raises(SettingsError, match="f-number"):
        lens.circle_of_confusion(np.ones((2, 2), np.float32), 2.0, n, 50.0, 1000.0)


def test_bad_focus_distance_and_focal_length():
    with pytest.raises(SettingsError, match="focus distance"):
        lens.check_lens(2.8, 50.0, 0.0)
    with pytest.raises(SettingsError, match="cannot focus that close"):
        lens.check_lens(2.8, 50.0, 0.04)
    with pytest.raises(SettingsError, match="focal length"):
        lens.check_lens(2.8, -50.0, 3.0)


def test_depth_of_field_and_hyperfocal():
    h = lens.hyperfocal_distance(8.0, 35.0)  # ~5.1 m, the textbook figure for 35 mm f/8
    assert 5.0 < h < 5.2
    near, far = lens.depth_of_field(h, 8.0, 35.0)
    assert far == math.inf and abs(near - h / 2) < 0.05
    near, far = lens.depth_of_field(3.0, 1.4, 85.0)
    assert near < 3.0 < far and 0.08 < far - near < 0.12  # 85 mm f/1.4 at 3 m: about ten centimetres
    # the limits are where the blur equals the acceptable circle (0.03 mm on a 36 mm wide frame)
    fx = 1000.0 * 85.0 / 36.0 * 1.0  # pixels of a 1000 px wide full-frame photo
    coc = lens.circle_of_confusion(np.float32([near, far]), 3.0, 1.4, 85.0, fx)
    np.testing.assert_allclose(np.abs(coc), 0.03 * 1000 / 36, rtol=0.02)


def test_35mm_equivalent_conversions_round_trip():
    fx = lens.fx_from_focal_35mm(50.0, 6000, 4000)
    assert abs(fx - 50.0 * 6000 / 36.0) < 1e-6  # 3:2 is full frame: width and diagonal agree
    assert abs(lens.focal_35mm_from_fx(fx, 6000, 4000) - 50.0) < 1e-9


def test_focus_depth_at_a_point():
    z = np.full((100, 200), 10.0, np.float32)
    z[20:60, 50:120] = 2.5
    valid = np.ones(z.shape, bool)
    assert lens.focus_depth_at(z, valid, (80, 40)) == pytest.approx(2.5)
    assert lens.focus_depth_at(z, valid, (10, 90)) == pytest.approx(10.0)
    # a click on the object's outline takes the object (the nearer surface)
    assert lens.focus_depth_at(z, valid, (50.2, 40)) == pytest.approx(2.5)


def test_focus_point_outside_the_image_or_without_surface():
    z = np.full((100, 200), 4.0, np.float32)
    valid = np.ones(z.shape, bool)
    for point in [(200, 10), (-1, 10), (10, 100), (float("nan"), 3)]:
        with pytest.raises(SettingsError, match="outside the image"):
            lens.focus_depth_at(z, valid, point)
    valid[:] = False
    with pytest.raises(SettingsError, match="no depth"):
        lens.focus_depth_at(z, valid, (10, 10))
