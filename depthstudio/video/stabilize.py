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

from depthstudio.settings import Settings, setting


@dataclass
class StabilizeSettings(Settings):
    """How strongly depth is held steady over time."""

    section = "stabilize"

    enabled: bool = setting(True, label="Stabilise", flag="--stabilize",
                            help="hold depth steady over time (--no-stabilize: raw per-frame depth, flickers)")
    smoothing: float = setting(0.5, label="Smoothing", minimum=0.0, maximum=1.0, metavar="S", decimals=2, step=0.05,
                               help="0 = align scale/shift only .. 1 = strongest temporal smoothing")
    cut_threshold: float = setting(0.3, label="Scene-cut threshold", minimum=0.0, maximum=1.0, metavar="T",
                                   decimals=2, step=0.05,
                                   help="scene-cut sensitivity 0..1, lower = more cuts, 0 = never")
    #: On a reset the frame's 1st..99th percentile is mapped here, so every shot has one range
    #: (headroom above: a camera more often walks up to things than away).
    anchor_range: tuple = setting((0.05, 0.85), label="Anchor range", flag="", advanced=True,
                                  help="where a shot's depth range is mapped at a reset")
    #: Normalise at reset (relative disparity); False keeps the first frame's own units (metric).
    normalize: bool = setting(True, label="Normalise", flag="", advanced=True, help="normalise depth at a reset")
    #: Pixels used for the fit (a regular subsample): the fit is global, it needs few.
    fit_samples: int = setting(16384, label="Fit samples", minimum=16, flag="", advanced=True,
                               help="pixels used for the scale/shift fit")
    #: How fast a depth range that drifts out of [0, 1] is eased back (fraction per frame).
    range_rate: float = setting(0.02, label="Range rate", minimum=0.0, maximum=1.0, flag="", advanced=True,
                                help="how fast a drifting depth range is eased back (per frame)")
    #: Reset when the median misfit after alignment exceeds this fraction of the depth range
    #: (the new frame shares no structure with the reference: a cut the pictures did not show).
    reset_residual: float = setting(0.12, label="Reset residual", minimum=0.0, flag="", advanced=True,
                                    help="misfit (fraction of the depth range) that forces a reset")

    def __post_init__(self) -> None:
        self.validate()


def fit_scale_shift(
    source: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, iterations: int = 6,
    symmetric: bool = True,
) -> tuple[float, float, float]:
    """Robust (s, b) minimising |s * source + b - target| over ``mask``.

    Iteratively reweighted least squares with Huber weights on a MAD scale, and no vote for
    residuals beyond four robust sigmas; ``symmetric`` fits the reduced-major-axis line (noise
    on both sides), else ordinary least squares of target on source. Returns (scale, shift,
    inlier_fraction).
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
            dy = y - my
            cov = (wdx * dy).sum()
            vy = (w * dy * dy).sum()
            # reduced major axis: both sides are noisy (the reference is made of earlier noisy
            # frames), and an ordinary y-on-x slope is biased towards 0 by the noise in x; fed
            # back frame after frame that bias would shrink the depth range steadily
            s = np.sign(cov) * np.sqrt(vy / vx) if symmetric and cov != 0 else cov / vx
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


class _Motion:
    """Optical flow between consecutive frames (OpenCV's DIS at a low resolution), used to carry
    the reference and the previous output along with the picture. Without OpenCV or without
    frames the scene is taken as still."""

    def __init__(self):
        try:
            import cv2
        except ImportError:  # pragma: no cover - OpenCV is part of the render extra
            cv2 = None
        self.cv2 = cv2
        self._dis = None
        self._prev: np.ndarray | None = None
        self._grids: dict = {}

    def reset(self) -> None:
        self._prev = None

    def flow(self, rgb: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
        """(h, w, 2) float32: where each pixel of this frame was in the previous one (x, y offsets
        in pixels of ``shape``); None when unknown."""
        if rgb is None or self.cv2 is None:
            self._prev = None
            return None
        cv2 = self.cv2
        h, w = shape
        k = max(1, rgb.shape[1] // (2 * w))  # subsample first: the flow is wanted at a low resolution
        grey = cv2.cvtColor(np.ascontiguousarray(rgb[::k, ::k, :3]), cv2.COLOR_RGB2GRAY)
        grey = cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA)
        prev, self._prev = self._prev, grey
        if prev is None or prev.shape != grey.shape or min(h, w) < 16:
            return None
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        return self._dis.calc(grey, prev, None)

    def warp(self, image: np.ndarray, flow: np.ndarray | None, fill: float = np.nan) -> np.ndarray:
        """``image`` (of the previous frame) moved to where things are in this frame."""
        if flow is None:
            return image
        cv2 = self.cv2
        h, w = image.shape[:2]
        if flow.shape[:2] != (h, w):
            sy, sx = h / flow.shape[0], w / flow.shape[1]
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow *= np.array([sx, sy], np.float32)
        else:
            flow = flow.copy()
        grid = self._grids.get((h, w))
        if grid is None:
            grid = self._grids[(h, w)] = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)
        flow += grid
        return cv2.remap(image, flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=float(fill))


class Stabilizer:
    """Feed disparity frames in order; get them back steady, in the reference's units.

    ``update(disparity, valid, rgb)`` returns the stabilised disparity (float32, 0 where
    invalid). After it, ``scale``/``shift`` hold the alignment used and ``was_reset`` says
    whether this frame started a new reference (first frame, scene cut, or failed fit).

    The reference is a running average of aligned frames at a low resolution, carried along
    with the picture by optical flow when ``rgb`` frames are given: a panning camera compares
    each pixel with the same surface, not with whatever was at that pixel before (which would
    make the fitted scale shrink frame after frame).
    """

    def __init__(self, settings: StabilizeSettings | None = None):
        self.settings = settings or StabilizeSettings()
        self.cuts = CutDetector(self.settings.cut_threshold)
        self.motion = _Motion()
        self.reset()

    def reset(self) -> None:
        self._reference: np.ndarray | None = None  # low resolution, NaN = unknown
        self._output: np.ndarray | None = None  # full resolution, NaN = no surface
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
        sub = self._sample(d.shape)
        self._reference = np.where(valid[sub], out[sub], np.nan).astype(np.float32)
        self._output = np.where(valid, out, np.nan).astype(np.float32)
        v = out[sub][valid[sub]]
        spread = float(np.percentile(v, 99) - np.percentile(v, 1)) if v.size else 0.0
        self._spread = max(spread, 1e-6)
        self._tau = self._spread * 0.04  # differences beyond ~4% of the range are motion
        self.was_reset = True
        return out

    def _range_correction(self, out: np.ndarray, ok: np.ndarray, sub) -> tuple[float, float] | None:
        """When the scene's depth range drifts out of [0, 1] (the camera walks up to something) or
        shrinks to a sliver, ease it back towards the anchor range a few percent per frame: too
        slow to see as flicker, quick enough that the 16-bit stream does not clip for long."""
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
        sub = self._sample(d.shape)
        d_s, ok_s = d[sub], ok[sub]
        flow = self.motion.flow(rgb, d_s.shape)
        if self._reference is None or cut or self._output is None or self._output.shape != d.shape:
            return self._start(d, ok)

        ref = self.motion.warp(self._reference, flow)
        known = np.isfinite(ref)
        m = ok_s & known
        if m.sum() < 16:
            return self._start(d, ok)
        s, b, inliers = fit_scale_shift(d_s, np.where(known, ref, 0), m)
        self.residual = float(np.median(np.abs(d_s[m] * s + b - ref[m]))) / max(self._spread, 1e-12)
        if s <= 0 or self.residual > self.settings.reset_residual:
            # nothing in common with the reference: a cut the pictures did not show
            self.motion.reset()
            self.motion.flow(rgb, d_s.shape)
            return self._start(d, ok)
        self.scale, self.shift, self.inliers = s, b, inliers
        self.was_reset = False
        aligned = d * np.float32(s) + np.float32(b)

        out = aligned
        smoothing = float(self.settings.smoothing)
        if smoothing > 0:
            prev = self.motion.warp(self._output, flow)
            diff = aligned - prev
            gate = np.exp(-np.square(diff / np.float32(self._tau)))
            gate *= np.float32(0.9 * smoothing)
            gate[~np.isfinite(gate)] = 0  # nothing known there before
            out = aligned - gate * np.nan_to_num(diff)
        aligned_s = aligned[sub]
        fix = self._range_correction(out, ok, sub) if self.settings.normalize else None
        if fix is not None:
            cs, ct = np.float32(fix[0]), np.float32(fix[1])
            out = out * cs + ct
            aligned_s = aligned_s * cs + ct
            ref = ref * cs + ct
            self.scale, self.shift = self.scale * fix[0], self.shift * fix[0] + fix[1]

        # the reference follows the scene slowly (more smoothing = slower); new ground is taken as is
        rate = np.float32(1.0 - 0.8 * smoothing)
        self._reference = np.where(m, ref + rate * (aligned_s - ref), np.where(ok_s, aligned_s, ref)).astype(np.float32)
        self._output = np.where(ok, out, np.nan).astype(np.float32)
        return np.where(ok, out, 0).astype(np.float32)
