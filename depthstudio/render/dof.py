"""Depth of field from a photo and its depth: a layered lens blur in linear light.

How it works (and why it has no halos):

1. Every pixel gets a signed blur radius from the thin-lens model (:mod:`depthstudio.render.lens`);
   the signed radius grows with depth, so it also orders the pixels front to back.
2. The radii are cut into layers on a ladder of radii (0, 1, 2, 3, 4, then x1.3 each step); a pixel
   between two rungs is shared between the two layers (tent weights), so blur changes smoothly
   along a receding surface.
3. Each layer is a premultiplied RGBA image: its own pixels, plus the pixels *in front of it*
   filled with colours extrapolated from the layer itself (push-pull). Filling what nearer objects
   hide is what stops halos: when a far layer is blurred, the colours it spreads near an in-focus
   object's edge are its own, never the object's, and its coverage stays whole (no dark fringe).
4. Layers are blurred with a disc (or n-bladed polygon) kernel -- a lens's bokeh, not a Gaussian --
   and composited with "over": the in-focus layer lands crisp on the blurred background, and a
   blurred foreground spreads over whatever lies behind it.
5. All of it happens in linear light, with the clipped highlights of the 8-bit photo pushed above
   1.0 (invertibly) so that they bloom into bright bokeh discs.

Speed: a layer of radius r is processed at a scale of 1/2^k of the image where its radius is still
about 4 pixels or more, so large blurs cost little; the layers behind and in front of the focus are
each composited coarse to fine (over is associative), leaving one full-resolution composite. The
preview path runs the same algorithm on a scaled-down image with a coarser ladder.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

from depthstudio.errors import InputError, SettingsError
from depthstudio.render import lens


@dataclass
class DofSettings:
    """What a photographer sets on a lens, plus the look of the blur.

    Distances are metres (or the scene units of a relative depth map's near/far mapping).
    ``focal_mm`` is 35 mm-equivalent (a 36 mm wide sensor spanning the photo); None takes it from
    the photo's intrinsics. Focus comes from ``focus_distance`` or else ``focus_point`` (x, y in
    pixels of the image given to the renderer); with neither, the centre of the image is in focus.
    ``max_blur_px`` caps the blur diameter (pixels at the image's resolution); None caps it at
    ``max_blur_fraction`` of the image's longer side.
    """

    f_number: float = 2.8
    focus_distance: float | None = None
    focus_point: tuple[float, float] | None = None
    focal_mm: float | None = None
    sensor_width_mm: float = lens.FULL_FRAME_WIDTH_MM
    max_blur_px: float | None = None
    max_blur_fraction: float = 0.05
    blades: int = 0  # 0: round aperture; 5..9: polygonal bokeh
    blade_rotation_deg: float = 0.0
    highlight_boost: float = 2.0  # how much brighter than white clipped highlights are taken to be
    highlight_threshold: float = 0.8  # sRGB level from which highlights are boosted
    preview_size: int = 960  # longer side of the image the preview path works on

    def validate(self) -> None:
        lens.check_lens(self.f_number, self.focal_mm or 50.0, self.focus_distance)
        if self.focus_point is not None:
            if len(self.focus_point) != 2 or not all(np.isfinite(v) for v in self.focus_point):
                raise SettingsError(f"focus point must be two pixel coordinates X,Y, got {self.focus_point}")
        if self.max_blur_px is not None and (not np.isfinite(self.max_blur_px) or self.max_blur_px < 0):
            raise SettingsError(f"max blur must be a non-negative number of pixels, got {self.max_blur_px}")
        if not 0 <= self.max_blur_fraction <= 1:
            raise SettingsError(f"max blur fraction must be within 0..1, got {self.max_blur_fraction}")
        if self.blades != 0 and not 3 <= self.blades <= 16:
            raise SettingsError(f"aperture blades must be 0 (round) or 3..16, got {self.blades}")
        if not 0 <= self.highlight_boost <= 100:
            raise SettingsError(f"highlight boost must be within 0..100, got {self.highlight_boost}")
        if not 0 < self.highlight_threshold < 1:
            raise SettingsError(f"highlight threshold must be within 0..1 (exclusive), got {self.highlight_threshold}")
        if self.preview_size < 16:
            raise SettingsError(f"preview size must be at least 16 pixels, got {self.preview_size}")

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["focus_point"] is not None:
            d["focus_point"] = [float(v) for v in d["focus_point"]]
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "DofSettings":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if known.get("focus_point") is not None:
            known["focus_point"] = tuple(float(v) for v in known["focus_point"])
        return cls(**known)


# ---------------------------------------------------------------------------------------------
# lens set-up: focal length, focus, blur map


def lens_focal_mm(intrinsics, settings: DofSettings) -> float:
    """The focal length the blur is computed with (mm on a ``settings.sensor_width_mm`` sensor)."""
    if settings.focal_mm is not None:
        return float(settings.focal_mm)
    if intrinsics is not None:
        return lens.focal_mm_from_fx(intrinsics.fx, intrinsics.width, settings.sensor_width_mm)
    # the project's default camera: 60 degrees horizontal field of view
    return settings.sensor_width_mm / (2.0 * math.tan(math.radians(30.0)))


def resolve_focus(z: np.ndarray, valid: np.ndarray | None, settings: DofSettings) -> float:
    """The focus distance: given, or the depth under the focus point (default: the image centre)."""
    if settings.focus_distance is not None:
        return float(settings.focus_distance)
    h, w = z.shape[:2]
    point = settings.focus_point if settings.focus_point is not None else (w / 2.0, h / 2.0)
    return lens.focus_depth_at(z, valid, point)


def max_blur_diameter(settings: DofSettings, width: int, height: int) -> float:
    if settings.max_blur_px is not None:
        return float(settings.max_blur_px)
    return float(settings.max_blur_fraction * max(width, height))


def blur_map(z: np.ndarray, valid: np.ndarray | None, intrinsics, settings: DofSettings,
             focus_distance: float | None = None) -> np.ndarray:
    """Signed blur-disc diameter per pixel (pixels at z's resolution), capped by the max blur.

    Pixels without depth (``valid`` False) are treated as infinitely far. Useful as a GUI overlay.
    """
    h, w = z.shape[:2]
    s = resolve_focus(z, valid, settings) if focus_distance is None else float(focus_distance)
    zz = z if valid is None else np.where(valid, z, np.float32(np.inf))
    return lens.circle_of_confusion(
        zz, s, settings.f_number, lens_focal_mm(intrinsics, settings), w,
        settings.sensor_width_mm, max_blur_diameter(settings, w, h),
    )


# ---------------------------------------------------------------------------------------------
# linear light with invertible highlight boost


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1.0 / 2.4) - 0.055)


@lru_cache(maxsize=16)
def _light_luts(boost: float, threshold: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(uint8 -> boosted linear float32 LUT, 16-bit index -> uint8 LUT, scale to that index)."""
    t = float(_srgb_to_linear(np.float64(threshold)))
    a = boost / (1.0 - t) ** 2  # b(v) = v + a (v - t)^2 above t: b(1) = 1 + boost

    lin = _srgb_to_linear(np.arange(256) / 255.0)
    over = np.maximum(lin - t, 0.0)
    forward = (lin + a * over * over).astype(np.float32)

    top = 1.0 + boost
    y = np.linspace(0.0, top, 65536)
    if a > 0:
        x = np.where(y > t, t + (np.sqrt(1.0 + 4.0 * a * np.maximum(y - t, 0.0)) - 1.0) / (2.0 * a), y)
    else:
        x = y
    backward = np.clip(np.round(_linear_to_srgb(x) * 255.0), 0, 255).astype(np.uint8)
    return forward, backward, 65535.0 / top


def to_linear(rgb: np.ndarray, settings: DofSettings) -> np.ndarray:
    """uint8 sRGB -> float32 linear light with highlights boosted (see :func:`from_linear`)."""
    import cv2

    forward, _, _ = _light_luts(float(settings.highlight_boost), float(settings.highlight_threshold))
    return cv2.LUT(np.ascontiguousarray(rgb), forward)


def from_linear(lin: np.ndarray, settings: DofSettings) -> np.ndarray:
    """The exact inverse of :func:`to_linear` for unblurred pixels; blurred values are mapped back."""
    _, backward, scale = _light_luts(float(settings.highlight_boost), float(settings.highlight_threshold))
    index = np.empty(lin.shape, np.uint16)
    np.clip(lin * np.float32(scale) + np.float32(0.5), 0, 65535, out=lin)
    index[...] = lin
    return backward[index]


# ---------------------------------------------------------------------------------------------
# bokeh kernels


@lru_cache(maxsize=256)
def lens_kernel(radius: float, blades: int = 0, rotation_deg: float = 0.0) -> np.ndarray:
    """The blur kernel of an aperture: an anti-aliased disc (``blades=0``) or regular polygon.

    ``radius`` is in pixels (half the blur diameter); the kernel sums to 1.
    """
    if radius < 0.5:
        return np.ones((1, 1), np.float32)
    half = int(math.ceil(radius))
    sub = 5  # supersampling per axis for the anti-aliased edge
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    coords = np.arange(-half, half + 1, dtype=np.float64)
    fine = (coords[:, None] + offsets[None, :]).ravel()
    yy, xx = np.meshgrid(fine, fine, indexing="ij")
    if blades:
        # inside a regular polygon circumscribed by the radius (same area scaling as the disc)
        angle = np.arctan2(yy, xx) - math.radians(rotation_deg)
        sector = 2.0 * math.pi / blades
        local = np.mod(angle, sector) - sector / 2.0
        apothem = radius * math.cos(math.pi / blades)
        inside = np.hypot(xx, yy) * np.cos(local) <= apothem
    else:
        inside = xx * xx + yy * yy <= radius * radius
    n = coords.size
    kernel = inside.reshape(n, sub, n, sub).mean(axis=(1, 3))
    kernel /= kernel.sum()
    return kernel.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# the layered renderer


@dataclass(frozen=True)
class _Path:
    """How finely the blur radii are cut into layers and how coarse a layer may be processed."""

    ladder: tuple[float, ...]  # unsigned radii of the rungs, increasing, starting at 0
    min_kernel_radius: float  # a layer is processed at 1/2^k scale while its radius there stays >= this


def _ladder(first: tuple[float, ...], ratio: float, top: float) -> tuple[float, ...]:
    rungs = list(first)
    while rungs[-1] < top:
        rungs.append(rungs[-1] * ratio)
    return tuple(rungs)


def _path(preview: bool, top: float) -> _Path:
    if preview:
        return _Path(_ladder((0.0, 1.0, 2.0, 3.5), 1.5, top), 2.5)
    return _Path(_ladder((0.0, 1.0, 2.0, 3.0, 4.0), 1.3, top), 4.0)


def _scale_for(radius: float, min_kernel_radius: float) -> int:
    s = 1
    while radius / (2 * s) >= min_kernel_radius:
        s *= 2
    return s


def _resize(image: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    import cv2

    if (image.shape[1], image.shape[0]) == size:
        return image
    out = cv2.resize(image, size, interpolation=interpolation)
    if image.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def _push_pull(colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill every pixel with the colour of the nearest weighted pixels (coarse-to-fine average).

    ``colour`` is premultiplied by ``weight`` (H, W, 3) and (H, W); returns (H, W, 3) unpremultiplied.
    """
    import cv2

    levels = [(colour, weight)]
    while max(levels[-1][1].shape) > 2:
        c, w = levels[-1]
        size = (max(1, (w.shape[1] + 1) // 2), max(1, (w.shape[0] + 1) // 2))
        levels.append((cv2.resize(c, size, interpolation=cv2.INTER_AREA),
                       cv2.resize(w, size, interpolation=cv2.INTER_AREA)))
    c, w = levels[-1]
    total = float(w.sum())
    mean = c.reshape(-1, 3).sum(axis=0) / total if total > 0 else np.zeros(3, np.float32)
    filled = np.broadcast_to(mean.astype(np.float32), c.shape).copy()
    for c, w in reversed(levels):
        up = _resize(filled, (w.shape[1], w.shape[0]), cv2.INTER_LINEAR)
        # where a level holds enough of the layer, trust its own average colour
        cover = np.minimum(w * np.float32(4.0), np.float32(1.0))[..., None]
        own = c / np.maximum(w, np.float32(1e-6))[..., None]
        filled = up + cover * (own - up)
    return filled


def _layer_rgba(lin: np.ndarray, index: np.ndarray, k: int, scale: int) -> np.ndarray | None:
    """Layer k as premultiplied RGBA at 1/scale: its own pixels plus the nearer ones, filled."""
    import cv2

    # depth index grows with depth: own weight is a tent around k, "own or nearer" a ramp
    own = np.float32(1.0) - np.abs(index - np.float32(k))
    np.maximum(own, 0.0, out=own)
    cover = np.float32(k + 1) - index
    np.clip(cover, 0.0, 1.0, out=cover)
    if not own.any():
        return None
    premult = lin * own[..., None]
    if scale > 1:
        h, w = index.shape
        size = (max(1, -(-w // scale)), max(1, -(-h // scale)))
        premult = cv2.resize(premult, size, interpolation=cv2.INTER_AREA)
        own = cv2.resize(own, size, interpolation=cv2.INTER_AREA)
        cover = cv2.resize(cover, size, interpolation=cv2.INTER_AREA)
    hidden = cover - own  # the part of each pixel that nearer layers hold
    fill = _push_pull(premult, own)
    rgba = np.empty(own.shape + (4,), np.float32)
    rgba[..., :3] = premult + fill * hidden[..., None]
    rgba[..., 3] = cover
    return rgba


def _blur(rgba: np.ndarray, radius: float, settings: DofSettings) -> np.ndarray:
    import cv2

    kernel = lens_kernel(round(radius * 4) / 4, int(settings.blades), float(settings.blade_rotation_deg))
    if kernel.shape[0] == 1:
        return rgba
    return cv2.filter2D(rgba, -1, kernel, borderType=cv2.BORDER_REFLECT)


def _over(acc: np.ndarray | None, layer: np.ndarray, under: bool = False) -> np.ndarray:
    """Premultiplied compositing: layer over acc (or, with ``under``, acc over layer)."""
    import cv2

    if acc is None:
        return layer
    if acc.shape[:2] != layer.shape[:2]:
        acc = _resize(acc, (layer.shape[1], layer.shape[0]), cv2.INTER_LINEAR)
    top, bottom = (acc, layer) if under else (layer, acc)
    return top + bottom * (np.float32(1.0) - top[..., 3:4])


def _composite(lin: np.ndarray, radius: np.ndarray, settings: DofSettings, path: _Path) -> np.ndarray:
    """The layered lens blur of linear ``lin`` (H, W, 3) with signed blur radii ``radius`` (H, W)."""
    h, w = radius.shape
    ladder = np.asarray(path.ladder, np.float64)

    def rungs_to(top: float) -> np.ndarray:  # the rungs above 0 needed to reach ``top``
        if top <= 0:
            return ladder[:0]
        return ladder[1:int(np.searchsorted(ladder, top - 1e-6)) + 1]

    neg, pos = rungs_to(-float(radius.min())), rungs_to(float(radius.max()))
    rungs = np.concatenate([-neg[::-1], [0.0], pos]).astype(np.float32)  # ascending = by depth
    focus = len(neg)
    index = np.interp(radius.ravel(), rungs, np.arange(len(rungs), dtype=np.float32)).astype(np.float32)
    index = index.reshape(h, w)
    present = np.zeros(len(rungs), bool)
    lo = np.floor(index).astype(np.int32)
    present[np.unique(lo)] = True
    present[np.minimum(np.unique(lo[index > lo]) + 1, len(rungs) - 1)] = True

    def render_layer(k: int) -> np.ndarray | None:
        r = abs(float(rungs[k]))
        scale = _scale_for(r, path.min_kernel_radius)
        layer = _layer_rgba(lin, index, k, scale)
        if layer is None:
            return None
        return _blur(layer, r / scale, settings)

    behind = None  # far to near, coarse to fine, "over"
    for k in range(len(rungs) - 1, focus, -1):
        if present[k]:
            layer = render_layer(k)
            if layer is not None:
                behind = _over(behind, layer)
    sharp = render_layer(focus) if present[focus] else None
    if sharp is not None:
        behind = _over(behind, sharp)
    front = None  # near to far, coarse to fine, "under"
    for k in range(0, focus):
        if present[k]:
            layer = render_layer(k)
            if layer is not None:
                front = _over(front, layer, under=True)
    if front is not None:
        behind = _over(behind, front) if behind is not None else front
    if behind.shape[:2] != (h, w):
        import cv2

        behind = _resize(behind, (w, h), cv2.INTER_LINEAR)
    alpha = np.maximum(behind[..., 3:4], np.float32(1e-6))
    # coverage is 1 up to rounding; dividing removes the last trace of it
    return behind[..., :3] / alpha


def _check_inputs(rgb: np.ndarray, z: np.ndarray, valid: np.ndarray | None) -> None:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"the photo must be an (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}")
    if np.asarray(z).shape != rgb.shape[:2]:
        raise InputError(
            f"depth map is {z.shape[1]}x{z.shape[0]} but the photo is {rgb.shape[1]}x{rgb.shape[0]}: "
            "give a depth map of the photo's size (or let the model estimate it)"
        )
    if valid is not None and np.asarray(valid).shape != rgb.shape[:2]:
        raise InputError(f"validity mask shape {np.asarray(valid).shape} differs from the photo's {rgb.shape[:2]}")


def render_dof(rgb: np.ndarray, z: np.ndarray, valid: np.ndarray | None = None, intrinsics=None,
               settings: DofSettings | None = None, preview: bool = False,
               focus_distance: float | None = None) -> np.ndarray:
    """The photo as a lens focused at the settings' distance would have taken it.

    ``rgb`` (H, W, 3) uint8 sRGB; ``z`` (H, W) float32 distance along the optical axis (metres or
    scene units); ``valid`` (H, W) bool, False where there is no surface (taken as infinitely far);
    ``intrinsics`` anything with ``fx`` and ``width`` (e.g. geometry.camera.Intrinsics) or None for the
    default 60 degree camera. ``preview`` uses the fast path (a scaled-down image of at most
    ``settings.preview_size`` pixels on its longer side, scaled back up). ``focus_distance``, when
    given, overrides the settings' focus (used for focus pulls). Returns (H, W, 3) uint8.
    """
    import cv2

    settings = settings or DofSettings()
    settings.validate()
    _check_inputs(rgb, z, valid)
    z = np.asarray(z, np.float32)
    h, w = z.shape
    s = resolve_focus(z, valid, settings) if focus_distance is None else float(focus_distance)
    lens.check_lens(settings.f_number, lens_focal_mm(intrinsics, settings), s)
    coc = blur_map(z, valid, intrinsics, settings, focus_distance=s)

    factor = 1.0
    if preview and max(h, w) > settings.preview_size:
        factor = settings.preview_size / max(h, w)
    if factor < 1.0:
        size = (max(2, round(w * factor)), max(2, round(h * factor)))
        small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        # nearest keeps depth edges crisp: no pixel gets a radius between two surfaces'
        radius = cv2.resize(coc, size, interpolation=cv2.INTER_NEAREST) * np.float32(0.5 * size[0] / w)
    else:
        small_rgb, radius = rgb, coc * np.float32(0.5)

    if float(np.abs(radius).max()) < 0.5:
        out = np.array(small_rgb, copy=True)
    else:
        lin = to_linear(small_rgb, settings)
        path = _path(preview, float(np.abs(radius).max()))
        out = from_linear(_composite(lin, radius, settings, path), settings)
    if out.shape[:2] != (h, w):
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def focus_pull_distances(start: float, end: float, frames: int) -> np.ndarray:
    """Focus distances for a pull from ``start`` to ``end``: even steps in 1/distance (what a focus
    ring does, and what makes the blur change at an even rate), eased in and out."""
    if start <= 0 or end <= 0 or not (np.isfinite(start) and np.isfinite(end)):
        raise SettingsError(f"focus pull distances must be positive, got {start:g} and {end:g}")
    t = np.linspace(0.0, 1.0, max(1, int(frames)))
    eased = 0.5 - 0.5 * np.cos(np.pi * t)
    return 1.0 / (1.0 / start + eased * (1.0 / end - 1.0 / start))
