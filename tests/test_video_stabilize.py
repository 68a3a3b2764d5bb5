"""Temporal stability: robust scale/shift alignment, smoothing, scene cuts (synthetic depth, no model)."""
from __future__ import annotations

import numpy as np
import pytest

from depthstudio.errors import SettingsError
from depthstudio.video.stabilize import CutDetector, Stabilizer, StabilizeSettings, fit_scale_shift
from depthstudio.video.synthetic import jittered, scene_frames


def frame_to_frame_error(frames) -> float:
    """Mean absolute change between consecutive frames, relative to the sequence's depth range."""
    seq = np.asarray(frames, np.float64)
    spread = np.percentile(seq, 99) - np.percentile(seq, 1)
    return float(np.mean(np.abs(np.diff(seq, axis=0))) / spread)


def affine_residual(a: np.ndarray, b: np.ndarray) -> float:
    """How far a is from an affine function of b, relative to a's range (0 = same up to scale/shift)."""
    A = np.stack([b.ravel(), np.ones(b.size)], 1)
    coef, *_ = np.linalg.lstsq(A, a.ravel(), rcond=None)
    spread = np.percentile(a, 99) - np.percentile(a, 1)
    return float(np.median(np.abs(A @ coef - a.ravel())) / spread)


def test_fit_recovers_scale_and_shift_despite_outliers(rng):
    x = rng.uniform(0, 1, 5000)
    y = 2.5 * x - 0.7
    outliers = rng.random(5000) < 0.25  # a quarter of the pixels moved (a passing object)
    y[outliers] = rng.uniform(-5, 5, outliers.sum())
    s, b, inliers = fit_scale_shift(x, y)
    assert s == pytest.approx(2.5, rel=1e-3)
    assert b == pytest.approx(-0.7, abs=1e-3)
    assert 0.6 < inliers < 0.9


def test_fit_of_a_flat_frame_is_a_shift():
    s, b, _ = fit_scale_shift(np.full(100, 3.0), np.full(100, 5.0))
    assert (s, b) == pytest.approx((1.0, 2.0))


def test_steady_scene_with_jitter_becomes_steady(rng):
    rgb, truth = next(scene_frames(160, 96, frames=1, seed=3))
    raw = [jittered(truth, rng, noise=0.01) for _ in range(30)]
    stab = Stabilizer()
    out = [stab.update(d, rgb=rgb) for d in raw]
    before, after = frame_to_frame_error(raw), frame_to_frame_error(out)
    assert after * 5 <= before, f"flicker only dropped from {before:.4f} to {after:.4f}"
    # and stabilised depth is still the scene's depth (up to the one scale/shift of the anchor)
    assert affine_residual(out[-1], truth) < 0.02


def test_moving_scene_with_jitter_flickers_less(rng):
    frames = list(scene_frames(160, 96, frames=30, seed=1))
    raw = [jittered(d, rng) for _, d in frames]
    stab = Stabilizer()
    out = [stab.update(d, rgb=rgb) for d, (rgb, _) in zip(raw, frames)]
    assert frame_to_frame_error(out) * 5 <= frame_to_frame_error(raw)
    # the true motion (boxes move across the picture) is kept, not smeared away
    assert max(affine_residual(o, d) for o, (_, d) in zip(out, frames)) < 0.03


def test_more_smoothing_means_less_noise(rng):
    rgb, truth = next(scene_frames(160, 96, frames=1, seed=2))
    raw = [jittered(truth, rng, noise=0.03) for _ in range(25)]
    errors = []
    for smoothing in (0.0, 0.5, 0.9):
        stab = Stabilizer(StabilizeSettings(smoothing=smoothing))
        errors.append(frame_to_frame_error([stab.update(d) for d in raw]))
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.parametrize("use_pictures", [True, False])
def test_reference_resets_at_a_scene_cut(rng, use_pictures):
    frames = list(scene_frames(160, 96, frames=24, shots=2, seed=5))  # the cut is at frame 12
    stab = Stabilizer()
    resets, outputs = [], []
    for i, (rgb, d) in enumerate(frames):
        outputs.append(stab.update(jittered(d, rng), rgb=rgb if use_pictures else None))
        if stab.was_reset:
            resets.append(i)
    if use_pictures:
        assert resets == [0, 12]
    # within a frame or two of the cut the output is the new scene's depth, nothing of the old one
    for i in (13, 14):
        assert affine_residual(outputs[i], frames[i][1]) < 0.03
    if use_pictures:  # a new shot is anchored to the same range as the first
        lo, hi = np.percentile(outputs[13], [1, 99])
        assert lo == pytest.approx(0.05, abs=0.06) and hi == pytest.approx(0.85, abs=0.06)
    # whatever happens, a range that left [0, 1] eases back (the 16-bit stream does not clip for long)
    ranges = [np.percentile(o, [1, 99]) for o in outputs[12:]]
    if ranges[0][1] > 1.0:
        assert ranges[-1][1] < ranges[0][1] - 0.1
    assert all(lo > -0.05 for lo, _ in ranges)


def test_depth_alone_resets_when_the_new_shot_shares_nothing(rng):
    _, a = next(scene_frames(160, 96, frames=1, seed=1))
    yy, xx = np.mgrid[0:96, 0:160]
    b = (0.2 + 0.7 * np.abs(np.sin(xx / 13.0)) * (yy > 30)).astype(np.float32)  # unrelated layout
    stab = Stabilizer()
    resets = []
    for i in range(16):
        stab.update(jittered(a if i < 8 else b, rng))
        if stab.was_reset:
            resets.append(i)
    assert resets[0] == 0 and resets[1] in (8, 9) and len(resets) == 2


def test_cut_detector_ignores_camera_motion_and_finds_cuts():
    detector = CutDetector(0.3)
    cuts = [i for i, (rgb, _) in enumerate(scene_frames(192, 108, frames=40, shots=4, seed=7)) if detector.update(rgb)]
    assert cuts == [10, 20, 30]


def test_invalid_pixels_stay_invalid(rng):
    _, truth = next(scene_frames(96, 64, frames=1))
    stab = Stabilizer()
    for k in range(4):
        d = jittered(truth, rng)
        d[:10] = 0 if k % 2 else np.nan
        out = stab.update(d)
        assert np.all(out[:10] == 0) and np.isfinite(out).all()
        assert np.all(out[10:] != 0)


def test_settings_are_checked():
    with pytest.raises(SettingsError, match="smoothing"):
        StabilizeSettings(smoothing=1.5)
    with pytest.raises(SettingsError, match="threshold"):
        StabilizeSettings(cut_threshold=-1)
