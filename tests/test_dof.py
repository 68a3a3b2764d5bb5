"""The lens-blur renderer on synthetic scenes (textured planes at known depths) and the room scene."""
from __future__ import annotations

import json

import numpy as np
import pytest

from depthstudio.errors import InputError, SettingsError
from depthstudio.geometry.camera import Intrinsics
from depthstudio.render import dof, lens
from depthstudio.render.dof import DofSettings, render_dof

pytest.importorskip("cv2", reason="the lens blur needs OpenCV: pip install 'depthstudio[render]'")

H, W = 160, 320
CAMERA = Intrinsics.from_fov(W, H, 60.0)
FOCAL = 100.0  # mm, 35 mm-equivalent: a long lens, so the blur is large enough to measure


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    v = rgb.astype(np.float64) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def noise(shape, seed, lo=50, hi=200, gray=False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if gray:
        g = rng.integers(lo, hi, size=shape, dtype=np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    return rng.integers(lo, hi, size=shape + (3,), dtype=np.uint8)


def high_freq_energy(rgb: np.ndarray, region=np.s_[:, :]) -> float:
    """Energy of the finest detail (the image minus its 3x3 box blur), in linear light."""
    g = srgb_to_linear(rgb).mean(axis=2)
    pad = np.pad(g, 1, mode="edge")
    box = sum(pad[1 + dy: 1 + dy + g.shape[0], 1 + dx: 1 + dx + g.shape[1]]
              for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9.0
    return float(((g - box)[region] ** 2).sum())


def blur_diameter(z: float, focus: float, f_number: float) -> float:
    fx = lens.fx_from_focal_35mm(FOCAL, W, H)
    return float(lens.circle_of_confusion(np.float32([z]), focus, f_number, FOCAL, fx)[0])


def disc_edge_width(radius: float) -> float:
    """10-90 % width of the edge spread of a uniform disc of ``radius`` (pixels)."""
    x = np.linspace(-radius, radius, 20001)
    right = (radius**2 * np.arccos(x / radius) - x * np.sqrt(radius**2 - x**2)) / (np.pi * radius**2)
    covered = 1.0 - right  # fraction of the disc left of x: the step's response
    return float(np.interp(0.9, covered, x) - np.interp(0.1, covered, x))


def measured_edge_width(out: np.ndarray, rows=slice(40, 120)) -> float:
    """10-90 % width of a vertical dark|light edge in linear light, averaged over rows."""
    profile = srgb_to_linear(out[rows]).mean(axis=(0, 2))
    lo, hi = profile[:20].mean(), profile[-20:].mean()
    p = (profile - lo) / (hi - lo)
    x = np.arange(p.size) + 0.5
    i10 = np.argmax(p >= 0.1)
    i90 = np.argmax(p >= 0.9)
    x10 = np.interp(0.1, p[i10 - 1: i10 + 1], x[i10 - 1: i10 + 1])
    x90 = np.interp(0.9, p[i90 - 1: i90 + 1], x[i90 - 1: i90 + 1])
    return float(x90 - x10)


def step_plane(z: float) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.full((H, W, 3), 40, np.uint8)
    rgb[:, W // 2:] = 190
    return rgb, np.full((H, W), z, np.float32)


def settings(**kw) -> DofSettings:
    base = dict(focal_mm=FOCAL, highlight_boost=0.0, max_blur_px=60.0)
    base.update(kw)
    return DofSettings(**base)


# --- sharpness and the amount of blur -------------------------------------------------------


def test_in_focus_plane_keeps_its_detail_and_far_plane_loses_it():
    rgb = noise((H, W), 1)
    z = np.full((H, W), 8.0, np.float32)
    z[:, : W // 2] = 2.0  # left half: the focus plane
    out = render_dof(rgb, z, None, CAMERA, settings(f_number=2.0, focus_distance=2.0))
    inner_left = np.s_[4:-4, 4: W // 2 - 30]
    inner_right = np.s_[4:-4, W // 2 + 30: -4]
    kept = high_freq_energy(out, inner_left) / high_freq_energy(rgb, inner_left)
    left = high_freq_energy(out, inner_right) / high_freq_energy(rgb, inner_right)
    assert kept >= 0.95
    assert np.array_equal(out[inner_left], rgb[inner_left])  # the sharp plane is untouched
    assert left < 0.05  # ~20 px blur wipes out pixel-level noise


@pytest.mark.parametrize("z", [8.0, 4.0])
def test_edge_spread_matches_the_thin_lens(z):
    focus, n = 2.0, 2.0
    rgb, depth = step_plane(z)
    out = render_dof(rgb, depth, None, CAMERA, settings(f_number=n, focus_distance=focus))
    diameter = blur_diameter(z, focus, n)
    expected = disc_edge_width(diameter / 2)
    measured = measured_edge_width(out)
    assert diameter > 10
    assert measured == pytest.approx(expected, rel=0.15)


def test_blur_grows_as_the_f_number_falls():
    rgb, depth = step_plane(8.0)
    widths = []
    for n in (11.0, 8.0, 5.6, 4.0, 2.8, 2.0):
        out = render_dof(rgb, depth, None, CAMERA, settings(f_number=n, focus_distance=2.0))
        widths.append(measured_edge_width(out))
    assert all(b > a for a, b in zip(widths, widths[1:])), widths
    assert widths[-1] > 3 * widths[0]


def test_preview_path_is_close_to_the_quality_path():
    rgb = noise((H, W), 7)
    z = np.linspace(1.5, 12.0, W, dtype=np.float32)[None, :].repeat(H, axis=0)
    s = settings(f_number=2.0, focus_distance=3.0, preview_size=160)
    full = render_dof(rgb, z, None, CAMERA, s).astype(np.float64)
    fast = render_dof(rgb, z, None, CAMERA, s, preview=True).astype(np.float64)
    assert fast.shape == full.shape
    # the preview has less detail near focus, but the same blur where it is large
    far = np.s_[:, int(W * 0.7):]
    assert np.abs(full[far] - fast[far]).mean() < 4.0


# --- halos and occlusion -----------------------------------------------------------------


def square_scene():
    bg = noise((H, W), 3, gray=True)  # gray texture: any red in it came from the square
    rgb = bg.copy()
    z = np.full((H, W), 20.0, np.float32)
    sq = np.s_[50:110, 130:190]
    rgb[sq] = (210, 30, 30)
    z[sq] = 2.0
    return rgb, z, sq


def redness(rgb: np.ndarray) -> np.ndarray:
    f = rgb.astype(np.float64)
    return f[..., 0] - (f[..., 1] + f[..., 2]) / 2


def ring(sq, inner: int, outer: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    (r0, r1), (c0, c1) = (sq[0].start, sq[0].stop), (sq[1].start, sq[1].stop)
    mask[r0 - outer: r1 + outer, c0 - outer: c1 + outer] = True
    mask[r0 - inner: r1 + inner, c0 - inner: c1 + inner] = False
    return mask


def test_no_halo_around_an_in_focus_foreground():
    rgb, z, sq = square_scene()
    s = settings(f_number=1.4, focus_distance=2.0)
    out = render_dof(rgb, z, None, CAMERA, s)
    assert abs(blur_diameter(20.0, 2.0, 1.4)) > 25  # the background is heavily blurred
    # the square, edge pixels included, is exactly as it was
    assert np.array_equal(out[sq], rgb[sq])
    # background right next to the square is not tinted by it
    near = ring(sq, 0, 6)
    assert redness(out)[near].mean() < 1.5
    assert np.percentile(redness(out)[near], 99) < 5.0
    # and it is not darkened or brightened either (no dark or bright fringe)
    bg_level = srgb_to_linear(out)[ring(sq, 30, 40)].mean()
    assert srgb_to_linear(out)[near].mean() == pytest.approx(bg_level, rel=0.05)
    # the metric does catch a halo: a plain blur of the whole photo with the sharp square pasted back
    import cv2

    naive = cv2.blur(rgb, (27, 27))
    naive[sq] = rgb[sq]
    assert redness(naive)[near].mean() > 20


def test_no_halo_with_soft_depth_edges():
    """Depth from a model is soft at outlines (predicted small, resized up): still no halo."""
    import cv2

    rgb, z, sq = square_scene()
    soft = (1.0 / cv2.blur(1.0 / z, (5, 5))).astype(np.float32)  # a 5 px ramp around the square
    out = render_dof(rgb, soft, None, CAMERA, settings(f_number=1.4, focus_distance=2.0))
    assert redness(out)[ring(sq, 0, 6)].mean() < 1.5
    # without snapping the ramp back into a step, the square's colour smears outwards
    smeared = render_dof(rgb, soft, None, CAMERA, settings(f_number=1.4, focus_distance=2.0, snap_edges=False))
    assert redness(smeared)[ring(sq, 0, 6)].mean() > 5


def test_snap_depth_edges_keeps_steps_and_slopes():
    import cv2

    z = np.tile(np.linspace(2.0, 6.0, 200, dtype=np.float32), (100, 1))  # a smooth slope
    z[30:70, 60:140] = 1.0  # a box in front: a true step
    assert np.array_equal(dof.snap_depth_edges(z, radius=3), z)
    soft = (1.0 / cv2.blur(1.0 / z, (5, 5))).astype(np.float32)
    snapped = dof.snap_depth_edges(soft, radius=3)
    inner = np.s_[5:-5, 5:-5]
    err_before = np.abs(soft / z - 1)[inner].mean()
    err_after = np.abs(snapped / z - 1)[inner].mean()
    assert err_after < 0.5 * err_before
    assert np.isinf(dof.snap_depth_edges(np.where(z > 5, np.inf, z).astype(np.float32), radius=3)).any()


def test_blurred_foreground_spreads_over_the_sharp_background():
    rgb, z, sq = square_scene()
    out = render_dof(rgb, z, None, CAMERA, settings(f_number=1.4, focus_distance=20.0, max_blur_px=30.0))
    red = redness(out)
    row = (sq[0].start + sq[0].stop) // 2
    edge = sq[1].stop  # first background column right of the square
    profile = red[row - 3: row + 4, edge - 20: edge + 20].mean(axis=0)
    # the square's colour reaches well outside its silhouette (no hard cut-out edge) ...
    assert red[row - 3: row + 4, edge + 5].mean() > 30
    # ... fading smoothly: no jump between neighbouring columns is a large part of the fall
    fall = profile.max() - profile.min()
    assert fall > 100
    assert np.abs(np.diff(profile)).max() < 0.2 * fall
    # far from the square the background is sharp and untouched
    assert np.array_equal(out[:, :60], rgb[:, :60])


# --- light and bokeh -------------------------------------------------------------------


def test_linear_light_round_trip_is_exact():
    s = DofSettings()
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    assert np.array_equal(dof.from_linear(dof.to_linear(levels, s), s), levels)
    lin = dof.to_linear(levels, s)
    assert lin.max() == pytest.approx(1.0 + s.highlight_boost)  # white is taken as brighter than white


def test_highlights_bloom_into_bright_discs():
    rgb = np.full((H, W, 3), 20, np.uint8)
    rgb[78:82, 158:162] = 255  # a small specular highlight
    z = np.full((H, W), 20.0, np.float32)
    dull = render_dof(rgb, z, None, CAMERA, settings(f_number=2.0, focus_distance=2.0, max_blur_px=24.0))
    bright = render_dof(rgb, z, None, CAMERA, settings(f_number=2.0, focus_distance=2.0, max_blur_px=24.0,
                                                        highlight_boost=4.0))
    assert bright.max() > dull.max() + 20
    # a disc, not a Gaussian: flat inside, and it ends at the blur radius (~9.8 px, + 2 px highlight)
    assert blur_diameter(20.0, 2.0, 2.0) == pytest.approx(19.6, abs=0.1)
    lum = srgb_to_linear(bright)[..., 1] - srgb_to_linear(bright)[0, 0, 1]
    peak = lum.max()
    assert lum[80, 160 - 6: 160 + 6].min() > 0.85 * peak  # flat top
    assert lum[80, 160 + 8] > 0.5 * peak and lum[88, 160] > 0.5 * peak
    assert lum[80, 160 + 16] < 0.03 * peak and lum[96, 160] < 0.03 * peak  # nothing much beyond


def test_lens_kernels():
    disc = dof.lens_kernel(10.0)
    hexagon = dof.lens_kernel(10.0, blades=6)
    assert disc.sum() == pytest.approx(1.0) and hexagon.sum() == pytest.approx(1.0)
    assert disc.shape == (21, 21)
    np.testing.assert_allclose(disc, disc.T, atol=1e-7)
    assert (disc > 0.5 * disc.max()).sum() == pytest.approx(np.pi * 100, rel=0.05)
    # a hexagon with a corner on the x axis reaches the radius there but not straight up
    assert hexagon[10, 20] > 0 and hexagon[0, 10] == 0
    assert dof.lens_kernel(0.2).shape == (1, 1)


def test_blades_change_the_bokeh_shape():
    rgb = np.full((H, W, 3), 10, np.uint8)
    rgb[79:81, 159:161] = 255
    z = np.full((H, W), 20.0, np.float32)

    def extents(blades):
        out = render_dof(rgb, z, None, CAMERA, settings(f_number=1.0, focus_distance=2.0, max_blur_px=60.0,
                                                         highlight_boost=8.0, blades=blades))
        lit = srgb_to_linear(out)[..., 1] > 0.5 * (srgb_to_linear(out)[..., 1].max() + srgb_to_linear(rgb)[0, 0, 1])
        rows, cols = np.nonzero(lit)
        return cols.max() - cols.min() + 1, rows.max() - rows.min() + 1

    wide, tall = extents(0)
    assert abs(wide - tall) <= 1 and wide >= 36  # a round disc of the blur's diameter (~39 px)
    wide, tall = extents(6)
    assert tall < 0.94 * wide  # a hexagon with corners left and right: cos(30 deg) = 0.87 as tall as wide


# --- the room scene ---------------------------------------------------------------------


def test_room_focus_on_the_post(room_scene):
    from PIL import Image

    rgb = np.asarray(Image.open(room_scene / "rgb.png").convert("RGB"))
    z = np.load(room_scene / "depth.npy")
    cam = json.loads((room_scene / "camera.json").read_text())
    camera = Intrinsics(cam["fx"], cam["fy"], cam["cx"], cam["cy"], cam["width"], cam["height"], "flags")
    s = DofSettings(f_number=1.4, focus_point=(385, 200))  # the scene's 35 mm lens wide open
    out = render_dof(rgb, z, z > 0, camera, s)
    assert dof.resolve_focus(z, z > 0, s) == pytest.approx(5.2, abs=0.2)
    band = np.s_[120:280, 370:400]  # the middle of the post, around the focus point
    post = np.s_[20:340, 370:400]  # the whole post (the camera looks down: its ends are a little off focus)
    wall = np.s_[5:200, 20:330]
    assert high_freq_energy(out, band) / high_freq_energy(rgb, band) > 0.95
    assert high_freq_energy(out, post) / high_freq_energy(rgb, post) > 0.9
    assert high_freq_energy(out, wall) / high_freq_energy(rgb, wall) < 0.6


# --- bad input -----------------------------------------------------------------------------


def test_bad_settings_and_inputs():
    rgb = noise((H, W), 5)
    z = np.full((H, W), 3.0, np.float32)
    with pytest.raises(SettingsError, match="f-number"):
        render_dof(rgb, z, None, CAMERA, DofSettings(f_number=0.0))
    with pytest.raises(SettingsError, match="f-number"):
        render_dof(rgb, z, None, CAMERA, DofSettings(f_number=-1.0))
    with pytest.raises(SettingsError, match="outside the image"):
        render_dof(rgb, z, None, CAMERA, DofSettings(focus_point=(W + 5, 10)))
    with pytest.raises(InputError, match="depth map is 100x50 but the photo is 320x160"):
        render_dof(rgb, np.ones((50, 100), np.float32), None, CAMERA, DofSettings())
    with pytest.raises(SettingsError, match="blades"):
        render_dof(rgb, z, None, CAMERA, DofSettings(blades=2))
    with pytest.raises(SettingsError, match="no depth"):
        render_dof(rgb, z, np.zeros((H, W), bool), CAMERA, DofSettings(focus_point=(10, 10)))


def test_settings_round_trip_and_focus_pull_distances():
    s = DofSettings(f_number=1.8, focus_point=(12.0, 34.0), blades=7)
    assert DofSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    d = dof.focus_pull_distances(1.0, 10.0, 25)
    assert d[0] == pytest.approx(1.0) and d[-1] == pytest.approx(10.0)
    assert np.all(np.diff(d) > 0)
    # even steps in 1/distance (eased): the middle frame is focused at the harmonic mean
    assert d[12] == pytest.approx(2.0 / (1.0 + 0.1), rel=1e-6)
