"""Temporal stability for depth predicted frame by frame.

A relative depth model run on each frame on its own returns disparity up to an unknown scale
and shift, and both drift from frame to frame: the depth video flickers. ``Stabilizer``

1. fits each frame's disparity to a running reference with a robust least-squares scale and
   shift (iteratively reweighted, outliers such as moving objects get no vote),
2. blends the aligned frame with the previous output where they agree (a motion-gated
   exponential moving average: what moved is not smeared),
3. resets the reference at scene cuts, detected from the RGB frames (``CutDetector``) or when
   the fit shows the new frame has nothing in common with the reference.

Plain numpy, no per-pixel Python loops; about a few milliseconds per 720p frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depthstudio.errors import SettingsError


@dataclass
class StabilizeSettings:
    """How strongly depth is held steady over time."""

    #: 0 = align scale and shift only; towards 1 = also average pixels over more frames.
    smoothing: float = 0.5
    #: Scene-cut score (0..1, see CutDetector) above which the reference resets; 0 disables.
    cut_threshold: float = 0.3
    #: On a reset the frame's 1st..99th percentile is mapped here, so every shot has one range.
    anchor_range: tuple[float, float] = (0.05, 0.95)
    #: Normalise at reset (relative disparity); False keeps the first frame's own units (metric).
    normalize: bool = True
    #: Pixels used for the fit (a regular subsample): the fit is global, it needs few.
    fit_samples: int = 16384
    #: How fast a depth range that drifts out of [0, 1] is eased back (fraction per frame).
    range_rate: float = 0.05
    #: Reset when the median misfit after alignment exceeds this fraction of the depth range
    #: (the new frame shares no structure with the reference: a cut the pictures did not show).
    reset_residual: float = 0.12

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.smoothing) <= 1.0:
            raise SettingsError(f"smoothing must be between 0 and 1, got {self.smoothing}")
        if not 0.0 <= float(self.cut_threshold) <= 1.0:
            raise SettingsError(f"scene-cut threshold must be between 0 and 1, got {self.cut_threshold}")


def fit_scale_shift(
    source: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, iterations: int = 6
) -> tuple[float, float, float]:
    """Robust (s, b) minimising |s * source + b - target| over ``mask``.

    Iteratively reweighted least squares with Huber weights on a MAD scale, and no vote for
    residuals beyond four robust sigmas. Returns (scale, shift, inlier_fraction).
    """
    x = np.asarray(source, np.float64)
    y = np.asarray(target, np.float64)
    if mask is not None:
        x, y = x[mask], y[mask]
    x, y = x.ravel(), y.ravel()
    if x.size < 3:
        return 1.0, 0.0, 0.0
    w = np.ones_like(x)
    s, b, inliers = 1.0, 0.0, 1.0
    # plain sums, not BLAS dot products: these vectors are short and BLAS threads only contend
    for _ in range(iterations):
        sw = w.sum()
        if sw <= 0:
            break
        mx, my = (w * x).sum() / sw, (w * y).sum() / sw
        dx = x - mx
        wdx = w * dx
        vx = (wdx * dx).sum()
        if vx <= 1e-12 * sw * max(1.0, mx * mx):
            s, b = 1.0, my - mx  # a flat frame: only the shift is defined
        else:
            s = (wdx * (y - my)).sum() / vx
            b = my - s * mx
        r = np.abs(y - (s * x + b))
        sigma = 1.4826 * np.median(r) + 1e-9 * (np.abs(y).mean() + 1e-12)
        u = r / (1.5 * sigma)
        w = np.where(u <= 1.0, 1.0, 1.0 / np.maximum(u, 1e-12))
        w[r > 4.0 * sigma] = 0.0
        inliers = float(np.mean(r <= 3.0 * sigma))
    return float(s), float(b), inliers


def _thumbnail(rgb: np.ndarray, width: int = 64) -> np.ndarray:
    """A small area-averaged copy (block mean over a 4x-oversampled grid): cheap, insensitive to noise."""
    pre = max(1, rgb.shape[1] // (4 * width))
    rgb = rgb[pre // 2 :: pre, pre // 2 :: pre]
    h, w = rgb.shape[:2]
    step = max(1, w // width)
    hh, ww = (h // step) * step, (w // step) * step
    small = rgb[:hh, :ww].reshape(hh // step, step, ww // step, step, -1).mean(axis=(1, 3))
    return small.astype(np.float32)


class CutDetector:
    """Scene cuts from the RGB frames.

    The score of a frame against the previous one is the mean of two distances in [0, 1]: the
    colour-histogram distance (half the L1 distance of 4x4x4-bin histograms; camera motion
    barely changes it) and the mean absolute difference of 16x9-ish grey thumbnails (catches
    cuts between shots of similar colours). A cut is a score over ``threshold`` that also
    stands out from the recent scores (steady fast motion is not a cut).
    """

    def __init__(self, threshold: float = 0.3, history: int = 12):
        self.threshold = float(threshold)
        self.history = history
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self._scores: list[float] = []
        self.last_score = 0.0

    def reset(self) -> None:
        self._prev = None
        self._scores.clear()

    @staticmethod
    def signature(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rgb = np.asarray(rgb)
        if rgb.ndim == 2:
            rgb = rgb[..., None].repeat(3, axis=2)
        small = _thumbnail(rgb[..., :3], 64)
        q = np.clip(small // 64, 0, 3).astype(np.int32)  # 4 levels per channel
        codes = (q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).ravel()
        hist = np.bincount(codes, minlength=64).astype(np.float32)
        hist /= max(1.0, hist.sum())
        grey = small.mean(axis=2)
        # a coarser grey grid: 1/4 of the thumbnail in each direction
        gh, gw = (grey.shape[0] // 4) * 4, (grey.shape[1] // 4) * 4
        if gh >= 4 and gw >= 4:
            grey = grey[:gh, :gw].reshape(gh // 4, 4, gw // 4, 4).mean(axis=(1, 3))
        return hist, grey / 255.0

    def score(self, rgb: np.ndarray) -> float:
        """The score against the previous frame (0 for the first), and remember this frame."""
        sig = self.signature(rgb)
        prev, self._prev = self._prev, sig
        if prev is None or prev[1].shape != sig[1].shape:
            return 0.0
        hist_d = 0.5 * float(np.abs(sig[0] - prev[0]).sum())
        grey_d = min(1.0, 2.5 * float(np.abs(sig[1] - prev[1]).mean()))
        return 0.5 * (hist_d + grey_d)

    def update(self, rgb: np.ndarray) -> bool:
        """True when ``rgb`` starts a new shot."""
        value = self.last_score = self.score(rgb)
        recent = float(np.median(self._scores)) if self._scores else 0.0
        self._scores.append(value)
        del self._scores[: -self.history]
        if self.threshold <= 0:
            return False
        return value > self.threshold and value > 2.0 * recent + 0.05


class Stabilizer:
    """Feed disparity frames in order; get them back steady, in the reference's units.

    ``update(disparity, valid, rgb)`` returns the stabilised disparity (float32, 0 where
    invalid). After it, ``scale``/``shift`` hold the alignment used and ``was_reset`` says
    whether this frame started a new reference (first frame, scene cut, or failed fit).
    """

    def __init__(self, settings: StabilizeSettings | None = None):
        self.settings = settings or StabilizeSettings()
        self.cuts = CutDetector(self.settings.cut_threshold)
        self.reset()

    def reset(self) -> None:
        self._reference: np.ndarray | None = None
        self._output: np.ndarray | None = None
        self._valid: np.ndarray | None = None
        self._tau = self._spread = 0.0
        self.scale, self.shift, self.inliers, self.residual = 1.0, 0.0, 1.0, 0.0
        self.was_reset = False
        self.frames = 0

    # -- pieces ---------------------------------------------------------------------------
    def _sample(self, shape: tuple[int, int]) -> tuple[slice, slice]:
        h, w = shape
        step = max(1, int(np.sqrt(h * w / max(1, self.settings.fit_samples))))
        return slice(step // 2, None, step), slice(step // 2, None, step)

    def _anchor(self, d: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """The frame that starts a shot, in the units every later frame is fitted to."""
        self.scale, self.shift = 1.0, 0.0
        if not self.settings.normalize or not valid.any():
            return np.where(valid, d, 0).astype(np.float32)
        sub = self._sample(d.shape)
        v = d[sub][valid[sub]]
        if v.size < 16:
            v = d[valid]
        lo, hi = np.percentile(v, [1.0, 99.0])
        a, b = self.settings.anchor_range
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):
            self.scale, self.shift = 0.0, 0.5 * (a + b)
        else:
            self.scale = (b - a) / (hi - lo)
            self.shift = a - lo * self.scale
        return np.where(valid, d * self.scale + self.shift, 0).astype(np.float32)

    def _start(self, d: np.ndarray, valid: np.ndarray) -> np.ndarray:
        out = self._anchor(d, valid)
        self._reference = out.copy()
        self._output = out
        self._valid = valid.copy()
        sub = self._sample(d.shape)
        v = out[sub][valid[sub]]
        spread = float(np.percentile(v, 99) - np.percentile(v, 1)) if v.size else 0.0
        self._spread = max(spread, 1e-6)
        self._tau = self._spread * 0.04  # differences beyond ~4% of the range are motion
        self.was_reset = True
        return out

    def _range_correction(self, out: np.ndarray, ok: np.ndarray, sub) -> tuple[float, float] | None:
        """When the scene's depth range drifts out of [0, 1] (the camera walks up to something) or
        shrinks to a sliver, ease it back towards the anchor range a few percent per frame: too
        slow to see as flicker, quick enough that the 16-bit stream does not clip."""
        v = out[sub][ok[sub]]
        if v.size < 16:
            return None
        lo, hi = np.percentile(v, [1.0, 99.0])
        a, b = self.settings.anchor_range
        if (lo >= 0.0 and hi <= 1.0 and hi - lo >= 0.5 * (b - a)) or hi <= lo:
            return None
        rate = self.settings.range_rate
        s_t = (b - a) / (hi - lo)
        return 1.0 + rate * (s_t - 1.0), rate * (a - lo * s_t)

    # -- the step ---------------------------------------------------------------------------
    def update(self, disparity: np.ndarray, valid: np.ndarray | None = None, rgb: np.ndarray | None = None,
               cut: bool | None = None) -> np.ndarray:
        d = np.asarray(disparity, np.float32)
        ok = np.isfinite(d) & (d != 0) if valid is None else (np.asarray(valid, bool) & np.isfinite(d))
        d = np.where(ok, d, 0).astype(np.float32)
        self.frames += 1
        if cut is None:
            cut = self.cuts.update(rgb) if rgb is not None else False
        elif rgb is not None:
            self.cuts.score(rgb)  # keep the detector's memory current
        if self._reference is None or cut or self._reference.shape != d.shape:
            return self._start(d, ok)

        smoothing = float(self.settings.smoothing)
        both = ok & self._valid
        sub = self._sample(d.shape)
        m = both[sub]
        s, b, inliers = fit_scale_shift(d[sub], self._reference[sub], m)
        if m.any():
            residual = float(np.median(np.abs(d[sub][m] * s + b - self._reference[sub][m])))
            self.residual = residual / max(self._spread, 1e-12)
        if not m.any() or s <= 0 or self.residual > self.settings.reset_residual:
            # nothing in common with the reference: a cut the pictures did not show
            return self._start(d, ok)
        self.scale, self.shift, self.inliers = s, b, inliers
        self.was_reset = False
        aligned = d * np.float32(s) + np.float32(b)

        out = aligned
        if smoothing > 0 and self._output is not None:
            alpha = np.float32(0.9 * smoothing)
            diff = aligned - self._output
            gate = np.exp(-np.square(diff / np.float32(self._tau)))
            gate *= alpha
            gate[~self._valid] = 0
            out = aligned - gate * diff
        ref = self._reference
        fix = self._range_correction(out, ok, sub) if self.settings.normalize else None
        if fix is not None:
            cs, ct = np.float32(fix[0]), np.float32(fix[1])
            out = out * cs + ct
            aligned = aligned * cs + ct
            ref *= cs
            ref += ct
            self.scale, self.shift = self.scale * fix[0], self.shift * fix[0] + fix[1]
        out = np.where(ok, out, 0).astype(np.float32)

        # the reference follows the scene slowly; more smoothing = slower
        rate = np.float32(1.0 - 0.8 * smoothing)
        ref += rate * (np.where(both, aligned, ref) - ref)
        fresh = ok & ~self._valid
        ref[fresh] = aligned[fresh]
        self._valid = self._valid | ok
        self._output = out
        return out


def stabilize_sequence(frames, settings: StabilizeSettings | None = None, rgbs=None):
    """Stabilise an iterable of disparity arrays (and optional RGB frames for cut detection)."""
    stab = Stabilizer(settings)
    rgbs = iter(rgbs) if rgbs is not None else None
    for d in frames:
        yield stab.update(d, rgb=next(rgbs) if rgbs is not None else None)
