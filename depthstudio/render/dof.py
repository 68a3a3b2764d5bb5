"""Depth of field from a photo and its depth: a layered lens blur in linear light.

How it works (and why it has no halos); docs/dof.md has the long version:

0. Soft depth edges (a model's prediction resized up) are snapped back into steps, so that no
   pixel gets a blur between an object's and its background's.
1. Every pixel gets a signed blur radius from the thin-lens model (:mod:`depthstudio.render.lens`);
   the signed radius grows with depth, so it also orders the pixels front to back.
2. The radii are cut into layers on a ladder of radii (0, 1.5, 3, then x1.25 each step); a pixel
   between two rungs is shared between the two layers (tent weights), so blur changes smoothly
   along a receding surface.
3. Each layer is a premultiplied RGBA image: its own pixels, plus the pixels *in front of it*
   (as far as its blur reaches) filled with colours extrapolated from the layer itself
   (push-pull). Filling what nearer objects hide is what stops halos: when a far layer is
   blurred, the colours it spreads near an in-focus object's edge are its own, never the
   object's, and its coverage stays whole (no dark fringe).
4. Layers are blurred with a disc (or n-bladed polygon) kernel -- a lens's bokeh, not a Gaussian --
   and composited with "over": the in-focus layer lands crisp on the blurred background, and a
   blurred foreground spreads over whatever lies behind it.
5. All of it happens in linear light, with the clipped highlights of the 8-bit photo pushed above
   1.0 (invertibly) so that they bloom into bright bokeh discs.

Speed: a layer of radius r is processed at the coarsest 1/2^k of the image where its radius is
still 5 pixels or more (from a pyramid that keeps the nearest depth of each block), so large blurs
cost little, and only over the rows and columns it reaches; the layers behind and in front of the
focus are each composited coarse to fine (over is associative), leaving one full-resolution
composite. The preview path runs the same algorithm on a scaled-down image with a coarser ladder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from depthstudio.errors import InputError, SettingsError
from depthstudio.render import lens
from depthstudio.settings import Settings, parse_point, parse_size, setting, show_point, show_size


def parse_pull(text) -> tuple:
    """"A:B" where A and B are each a distance (e.g. 1.5) or a point X,Y -> (A, B)."""
    if isinstance(text, (tuple, list)):
        return tuple(tuple(v) if isinstance(v, (tuple, list)) else float(v) for v in text)
    parts = str(text).split(":")
    if len(parts) != 2:
        raise SettingsError(f"focus pull must look like NEAR:FAR (e.g. 1.5:8) or X1,Y1:X2,Y2, got {text!r}")
    ends: list = []
    for part in parts:
        try:
            ends.append(parse_point(part) if "," in part else float(part))
        except (ValueError, SettingsError):
            raise SettingsError(f"focus pull end {part!r} is neither a distance nor a point X,Y") from None
    return tuple(ends)


@dataclass
class DofSettings(Settings):
    """What a photographer sets on a lens, plus the look of the blur.

    Distances are metres (or the scene units of a relative depth map's near/far mapping).
    ``focal_mm`` and ``f_number`` are 35 mm-equivalent (the photo's diagonal spanning a full-frame
    sensor's); ``focal_mm`` None takes it from the photo's intrinsics, a value overrides them (the
    photo is then taken to have been shot at that focal length). Focus comes from ``focus_distance``
    or else ``focus_point`` (x, y in pixels of the image given to the renderer); with neither, the
    centre of the image is in focus.
    ``max_blur_px`` caps the blur diameter (pixels at the image's resolution); None caps it at
    ``max_blur_fraction`` of the image's longer side.
    """

    section = "dof"

    f_number: float = setting(2.8, label="Aperture", minimum=0.0, min_exclusive=True, maximum=64.0,
                              metavar="N", decimals=1, step=0.1, help="aperture f-number")
    focus_distance: float | None = setting(None, label="Focus distance", unit="scene units", minimum=0.0,
                                           min_exclusive=True, metavar="M", exclusive="focus", decimals=2,
                                           auto="the focus point",
                                           help="focus at this distance (metres; near/far units for relative depth)")
    focus_point: tuple | None = setting(None, label="Focus point", metavar="X,Y", exclusive="focus",
                                        parse=parse_point, show=show_point, auto="the centre",
                                        help="focus on what is at this pixel (or 0..1 fractions)")
    focal_mm: float | None = setting(None, label="Lens focal length (35 mm)", unit="mm", minimum=0.0,
                                     min_exclusive=True, flag="", auto="the photo's camera", decimals=1,
                                     help="35 mm-equivalent focal length of the lens")
    max_blur_px: float | None = setting(None, label="Max blur", unit="px", minimum=0.0, flag="--max-blur",
                                        metavar="PX", auto="5% of the longer side", decimals=1,
                                        help="largest blur diameter in pixels")
    max_blur_fraction: float = setting(0.05, label="Max blur (fraction)", minimum=0.0, maximum=1.0, flag="",
                                       advanced=True, help="largest blur as a fraction of the longer side")
    blades: int = setting(0, label="Aperture blades", minimum=0, maximum=16, metavar="N",
                          help="aperture blades for polygonal bokeh (0: round)")
    blade_rotation_deg: float = setting(0.0, label="Blade rotation", unit="deg", flag="", advanced=True,
                                        help="rotation of a polygonal aperture")
    highlight_boost: float = setting(2.0, label="Highlights", minimum=0.0, maximum=100.0, flag="--highlights",
                                     metavar="G", decimals=1,
                                     help="how much brighter than white clipped highlights bloom (0: off)")
    highlight_threshold: float = setting(0.8, label="Highlight threshold", minimum=0.0, maximum=1.0,
                                         min_exclusive=True, max_exclusive=True, flag="", advanced=True,
                                         help="sRGB level from which highlights are boosted")
    preview_size: int = setting(960, label="Preview size", unit="px", minimum=16, flag="", advanced=True,
                                help="longer side of the image the preview path works on")
    snap_edges: bool = setting(True, label="Snap depth edges", flag="", advanced=True,
                               help="give soft depth edges (upsampled model depth) back their step")
    preview: bool = setting(False, label="Preview quality", help="fast, scaled-down blur")

    def check(self) -> None:
        lens.check_lens(self.f_number, self.focal_mm if self.focal_mm is not None else 1e-6, self.focus_distance)
        if self.blades != 0 and self.blades < 3:
            raise SettingsError(f"aperture blades (--blades) must be 0 (round) or 3..16, got {self.blades}")


@dataclass
class FocusPullSettings(Settings):
    """A focus-pull preview video of a photo: the focus moves between two distances or points."""

    section = "focus_pull"

    pull: tuple | None = setting(None, label="Focus pull", flag="--focus-pull", metavar="A:B", parse=parse_pull,
                                 show=lambda v: f"{v[0]}:{v[1]}", auto="nearest to farthest",
                                 help="from A to B, each a distance or a point X,Y")
    duration: float = setting(4.0, label="Duration", unit="s", minimum=0.0, maximum=3600.0, min_exclusive=True,
                              metavar="S", help="seconds")
    fps: float = setting(24.0, label="Frame rate", unit="fps", minimum=0.0, maximum=240.0, min_exclusive=True,
                         metavar="N", help="frames per second")
    size: tuple | None = setting(None, label="Video size", metavar="WxH", parse=parse_size, show=show_size,
                                 auto="the photo's, at most 1280 on the longer side", help="video size")
    quality: bool = setting(False, label="Full quality", help="render every frame with the export-quality path")


# ---------------------------------------------------------------------------------------------
# lens set-up: focal length, focus, blur map


def _default_fx(width: int) -> float:
    # the project's default camera: 60 degrees horizontal field of view
    return width / (2.0 * math.tan(math.radians(30.0)))


def lens_fx(intrinsics, settings: DofSettings, width: int, height: int) -> float:
    """The focal length in pixels of a ``width`` x ``height`` image (intrinsics scaled to it)."""
    if settings.focal_mm is not None:
        return lens.fx_from_focal_35mm(settings.focal_mm, width, height)
    if intrinsics is not None:
        return float(intrinsics.fx) * width / float(intrinsics.width)
    return _default_fx(width)


def lens_focal_mm(intrinsics, settings: DofSettings, width: int | None = None, height: int | None = None) -> float:
    """The 35 mm-equivalent focal length the blur is computed with."""
    if settings.focal_mm is not None:
        return float(settings.focal_mm)
    if intrinsics is not None:
        iw = float(intrinsics.width)
        ih = float(getattr(intrinsics, "height", 0) or (iw * height / width if width and height else iw * 2 / 3))
        return lens.focal_35mm_from_fx(intrinsics.fx, iw, ih)
    if width is None or height is None:
        raise SettingsError("without intrinsics the image size is needed for the default focal length")
    return lens.focal_35mm_from_fx(_default_fx(width), width, height)


def resolve_focus(z: np.ndarray, valid: np.ndarray | None, settings: DofSettings) -> float:
    """The focus distance: given, or the depth under the focus point.

    Without either, the surface at the centre of the picture (or, when the centre has no depth,
    the median depth of the picture).
    """
    if settings.focus_distance is not None:
        return float(settings.focus_distance)
    if settings.focus_point is not None:
        return lens.focus_depth_at(z, valid, settings.focus_point)
    h, w = z.shape[:2]
    try:
        return lens.focus_depth_at(z, valid, (w / 2.0, h / 2.0))
    except SettingsError:
        ok = np.isfinite(z) & (z > 0)
        if valid is not None:
            ok &= valid
        if not ok.any():
            raise SettingsError("the depth map holds no surface to focus on; give a focus distance") from None
        return float(np.median(z[ok]))


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
        zz, s, settings.f_number, lens_focal_mm(intrinsics, settings, w, h), lens_fx(intrinsics, settings, w, h),
        max_blur_diameter(settings, w, h),
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


def _linear_planes(rgb: np.ndarray, settings: DofSettings) -> np.ndarray:
    """uint8 sRGB (H, W, 3) -> linear light as three planes (3, H, W)."""
    import cv2

    forward, _, _ = _light_luts(float(settings.highlight_boost), float(settings.highlight_threshold))
    out = np.empty((3,) + rgb.shape[:2], np.float32)
    for c, plane in enumerate(cv2.split(np.ascontiguousarray(rgb))):
        out[c] = cv2.LUT(plane, forward).reshape(plane.shape)
    return out


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
    full_res_max: float  # layers up to this radius are processed at full resolution
    min_kernel_radius: float  # others at the coarsest 1/2^k scale where their radius stays >= this


def _ladder(first: tuple[float, ...], ratio: float, top: float) -> tuple[float, ...]:
    rungs = list(first)
    while rungs[-1] < top:
        rungs.append(rungs[-1] * ratio)
    return tuple(rungs)


def _path(preview: bool, top: float) -> _Path:
    if preview:
        return _Path(_ladder((0.0, 1.5, 3.0), 1.5, top), 2.0, 2.0)
    return _Path(_ladder((0.0, 1.5, 3.0), 1.25, top), 3.5, 5.0)


def _scale_for(radius: float, path: _Path) -> int:
    if radius <= path.full_res_max:
        return 1
    s = 2
    while radius / (2 * s) >= path.min_kernel_radius:
        s *= 2
    return s


def _resize(image: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """Resize a 2-D array to ``size`` = (width, height)."""
    import cv2

    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=interpolation)


def _resize_planes(planes: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """Resize a (C, H, W) stack of planes."""
    import cv2

    if (planes.shape[2], planes.shape[1]) == size:
        return planes
    out = np.empty((planes.shape[0], size[1], size[0]), np.float32)
    for p, o in zip(planes, out):
        cv2.resize(p, size, dst=o, interpolation=interpolation)
    return out


def _half(size: tuple[int, int]) -> tuple[int, int]:
    return max(1, (size[0] + 1) // 2), max(1, (size[1] + 1) // 2)


def _push_pull(colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill every pixel with the colour of the nearest weighted pixels (coarse-to-fine average).

    ``colour`` (3, H, W) is premultiplied by ``weight`` (H, W); returns (3, H, W) unpremultiplied.
    """
    import cv2

    levels = [(colour, weight)]
    while max(levels[-1][1].shape) > 2:
        c, w = levels[-1]
        size = _half((w.shape[1], w.shape[0]))
        levels.append((_resize_planes(c, size, cv2.INTER_AREA), _resize(w, size, cv2.INTER_AREA)))
    c, w = levels[-1]
    total = float(w.sum())
    mean = c.sum(axis=(1, 2)) / total if total > 0 else np.zeros(3)
    filled = np.ascontiguousarray(np.broadcast_to(mean.astype(np.float32)[:, None, None], c.shape))
    for c, w in reversed(levels):
        up = _resize_planes(filled, (w.shape[1], w.shape[0]), cv2.INTER_LINEAR)
        # where a level holds enough of the layer, trust its own average colour
        cover = np.minimum(w * np.float32(4.0), np.float32(1.0))
        own = c / np.maximum(w, np.float32(1e-6))
        filled = up + cover * (own - up)
    return filled


def _pyramid(lin: np.ndarray, index: np.ndarray, levels: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Halved copies of the linear planes (area average) and of the depth index.

    The index keeps the *nearest* of each 2x2 block, so that a coarse pixel straddling a depth edge
    belongs to the front surface: a background layer never takes in the colour of what is in
    front of it (which would come back as a halo once blurred).
    """
    import cv2

    out = [(lin, index)]
    for _ in range(levels):
        planes, idx = out[-1]
        size = (idx.shape[1] // 2, idx.shape[0] // 2)
        nearest = np.minimum(np.minimum(idx[0::2, 0::2], idx[1::2, 0::2]), np.minimum(idx[0::2, 1::2], idx[1::2, 1::2]))
        out.append((_resize_planes(planes, size, cv2.INTER_AREA), nearest))
    return out


def _tent(index: np.ndarray, k: int) -> np.ndarray:
    """Layer k's own share of each pixel: 1 at index k, falling to 0 at k - 1 and k + 1."""
    own = np.subtract(index, np.float32(k))
    np.abs(own, out=own)
    np.subtract(np.float32(1.0), own, out=own)
    np.maximum(own, np.float32(0.0), out=own)
    return own


def _layer(lin: np.ndarray, index: np.ndarray, k: int, reach: int | None, coarse: tuple[np.ndarray, np.ndarray], step: int):
    """Layer k -> (premultiplied colour (3, h, w), alpha (h, w)), or None when it holds no pixel.

    The layer holds its own pixels (a tent in the depth index around k) and, opaquely, the pixels
    in front of it that lie within ``reach`` pixels of its own, painted with colours extrapolated
    from the layer's own pixels: what the layer would show if the nearer things were not there.
    Never with the nearer things' colours: that is what keeps halos away when the layer is
    blurred. Further from its own pixels the layer is transparent (what is behind it shows, and
    the farthest layer is painted everywhere, so nothing is ever empty).

    ``coarse`` is the same crop ``step`` times smaller (from the pyramid), where the fill is made.
    """
    import cv2

    own = _tent(index, k)
    if not own.any():
        return None
    cover = np.subtract(np.float32(k + 1), index)
    np.clip(cover, np.float32(0.0), np.float32(1.0), out=cover)
    colour = np.multiply(lin, own)
    hidden = np.subtract(cover, own)  # the part of each pixel that nearer layers hold
    if reach is not None:
        size = 2 * reach + 1
        near = cv2.dilate((own > 0).view(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))
        hidden *= near
        np.add(own, hidden, out=cover)
    rows, cols = np.flatnonzero(hidden.any(axis=1)), np.flatnonzero(hidden.any(axis=0))
    if rows.size:
        # the fill is smooth by nature: make it on the coarse crop, then bring the part that is
        # needed back to the layer's size
        planes_c, idx_c = coarse
        own_c = _tent(idx_c, k)
        fill = _push_pull(np.multiply(planes_c, own_c), own_c)
        r0, r1 = rows[0] // step, -(-(rows[-1] + 1) // step)
        c0, c1 = cols[0] // step, -(-(cols[-1] + 1) // step)
        part = np.s_[r0 * step: r1 * step, c0 * step: c1 * step]
        patch = hidden[part]
        fill = _resize_planes(np.ascontiguousarray(fill[:, r0:r1, c0:c1]), (patch.shape[1], patch.shape[0]), cv2.INTER_LINEAR)
        fill *= patch
        colour[(slice(None),) + part] += fill
    return colour, cover


def _blur(image: np.ndarray, radius: float, settings: DofSettings) -> np.ndarray:
    """The lens blur of a 2-D plane or a (C, H, W) stack."""
    import cv2

    kernel = lens_kernel(round(radius * 4) / 4, int(settings.blades), float(settings.blade_rotation_deg))
    if kernel.shape[0] == 1:
        return image
    if image.ndim == 3:
        out = np.empty_like(image)
        for p, o in zip(image, out):
            cv2.filter2D(p, -1, kernel, dst=o, borderType=cv2.BORDER_REFLECT)
        return out
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


def _span(lo: np.ndarray, hi: np.ndarray, k: int, margin: int, step: int, size: int) -> tuple[int, int] | None:
    """The rows (or columns) that may hold layer k, widened by ``margin`` and aligned to ``step``."""
    hit = np.flatnonzero((lo < k + 1) & (hi > k - 1))
    if hit.size == 0:
        return None
    a = max(0, (int(hit[0]) - margin) // step * step)
    b = min(size, -(-(int(hit[-1]) + 1 + margin) // step) * step)
    return a, b


class _Stack:
    """A premultiplied colour (3, H, W) + alpha (H, W) image composited layer by layer, coarse to fine."""

    def __init__(self, height: int, width: int, under: bool) -> None:
        self.height, self.width, self.under = height, width, under
        self.scale = 0
        self.colour: np.ndarray | None = None
        self.alpha: np.ndarray | None = None

    def at_scale(self, scale: int) -> tuple[np.ndarray, np.ndarray]:
        import cv2

        size = (self.width // scale, self.height // scale)
        if self.colour is None or self.alpha is None:  # (both are set together)
            self.colour = np.zeros((3, size[1], size[0]), np.float32)
            self.alpha = np.zeros((size[1], size[0]), np.float32)
        elif scale != self.scale:
            assert self.alpha is not None
            self.colour = _resize_planes(self.colour, size, cv2.INTER_LINEAR)
            self.alpha = _resize(self.alpha, size, cv2.INTER_LINEAR)
        self.scale = scale
        assert self.alpha is not None
        return self.colour, self.alpha

    def add(self, colour: np.ndarray, alpha: np.ndarray, crop: tuple[slice, slice]) -> None:
        assert self.colour is not None and self.alpha is not None, "at_scale() comes first"
        c, a = self.colour[(slice(None),) + crop], self.alpha[crop]
        if self.under:  # the stack is in front of the new layer
            t = np.subtract(np.float32(1.0), a)
            colour *= t
            c += colour
            alpha *= t
            a += alpha
        else:
            t = np.subtract(np.float32(1.0), alpha)
            c *= t
            c += colour
            a *= t
            a += alpha


def _depth_index(radius: np.ndarray, rungs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index, counts): each pixel's fractional position on the rungs (which grow with depth), by a
    table over radii in 1/32 px steps (exact at the rungs' multiples of 1/32, e.g. 0: the focus)."""
    q = 32
    lo = int(np.floor(float(radius.min()) * q))
    hi = int(np.ceil(float(radius.max()) * q))
    table = np.interp(np.arange(lo, hi + 1) / q, rungs, np.arange(len(rungs))).astype(np.float32)
    pos = radius * np.float32(q)
    np.rint(pos, out=pos)
    cells = pos.astype(np.int32)
    cells -= lo
    np.clip(cells, 0, hi - lo, out=cells)
    counts = np.bincount(cells.ravel(), minlength=hi - lo + 1)
    return table[cells], table[counts > 0]


def _composite(lin: np.ndarray, radius: np.ndarray, settings: DofSettings, path: _Path) -> np.ndarray:
    """The layered lens blur of linear planes ``lin`` (3, H, W) with signed blur radii ``radius`` (H, W)."""
    import cv2

    h, w = radius.shape
    ladder = np.asarray(path.ladder, np.float64)

    def rungs_to(top: float) -> np.ndarray:  # the rungs above 0 needed to reach ``top``
        if top <= 0:
            return ladder[:0]
        return ladder[1:int(np.searchsorted(ladder, top - 1e-6)) + 1]

    neg, pos = rungs_to(-float(radius.min())), rungs_to(float(radius.max()))
    rungs = np.concatenate([-neg[::-1], [0.0], pos])  # ascending = by depth
    focus = len(neg)
    scales = [_scale_for(abs(float(r)), path) for r in rungs]
    step = max(scales)
    index, used = _depth_index(radius, rungs)
    present = np.zeros(len(rungs) + 1, bool)
    floor = np.floor(used).astype(np.int64)
    present[floor] = True
    present[floor[used > floor] + 1] = True

    # pad to a multiple of the coarsest scale (and the fill's, 4x coarser) so that every level
    # is an exact halving
    fill_step = 4
    ph, pw = -(-h // (step * fill_step)) * step * fill_step, -(-w // (step * fill_step)) * step * fill_step
    if (ph, pw) != (h, w):
        index = cv2.copyMakeBorder(index, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE)
        padded = np.empty((3, ph, pw), np.float32)
        padded[:, :h, :w] = lin
        padded[:, h:, :w] = lin[:, h - 1:h, :]
        padded[:, :, w:] = padded[:, :, w - 1:w]
        lin = padded
    row_lo, row_hi = index.min(axis=1), index.max(axis=1)
    col_lo, col_hi = index.min(axis=0), index.max(axis=0)
    levels = _pyramid(lin, index, int(math.log2(step * fill_step)))

    def add_layer(stack: _Stack, k: int, whole: bool = False) -> None:
        scale = scales[k]
        radius_here = abs(float(rungs[k])) / scale
        align = scale * fill_step
        rows: tuple[int, int] | None
        cols: tuple[int, int] | None
        if whole:
            rows, cols = (0, ph), (0, pw)
        else:
            margin = int(math.ceil(3 * abs(float(rungs[k])))) + 2 * scale
            rows = _span(row_lo, row_hi, k, margin, align, ph)
            cols = _span(col_lo, col_hi, k, margin, align, pw)
            if rows is None or cols is None:
                return
        level = int(math.log2(scale))

        def cut(s: int):
            return (slice(rows[0] // s, rows[1] // s), slice(cols[0] // s, cols[1] // s))

        planes, idx = levels[level]
        planes_c, idx_c = levels[level + 2]
        crop, crop_c = cut(scale), cut(align)
        # the farthest layer fills all that is in front of it; the others as far as their blur reaches
        reach = None if whole else int(math.ceil(radius_here)) + 2
        layer = _layer(planes[(slice(None),) + crop], idx[crop], k, reach,
                       (planes_c[(slice(None),) + crop_c], idx_c[crop_c]), fill_step)
        if layer is None:
            return
        stack.at_scale(scale)
        stack.add(_blur(layer[0], radius_here, settings), _blur(layer[1], radius_here, settings), crop)

    # behind the focus, far to near and coarse to fine ("over"); the farthest layer is painted
    # whole so that the stack is opaque
    behind = _Stack(ph, pw, under=False)
    for k in range(len(rungs) - 1, focus - 1, -1):
        if present[k]:
            add_layer(behind, k, whole=behind.colour is None)
    # in front of the focus, near to far and coarse to fine ("under")
    front = _Stack(ph, pw, under=True)
    for k in range(focus):
        if present[k]:
            add_layer(front, k)
    colour, alpha = behind.at_scale(1)
    if front.colour is not None:
        top, top_alpha = front.at_scale(1)
        t = np.subtract(np.float32(1.0), top_alpha)
        colour *= t
        colour += top
        alpha *= t
        alpha += top_alpha
    colour, alpha = colour[:, :h, :w], alpha[:h, :w]
    # coverage is 1 up to rounding: dividing removes what is left of it
    np.maximum(alpha, np.float32(1e-6), out=alpha)
    return colour / alpha


def snap_depth_edges(z: np.ndarray, radius: int | None = None, jump: float = 0.1, keep: float = 0.15) -> np.ndarray:
    """Depth with its soft edges made steps again.

    A depth model's prediction, resized up to the photo, turns an object's outline into a ramp
    several pixels wide; pixels on the ramp would get a blur between the object's and the
    background's and smear the object's colour over the background (a halo). Where the depth
    within about ``radius`` pixels jumps by more than ``jump`` (relative, in 1/depth), a pixel that
    lies in the middle of the jump (more than ``keep`` of it from either side) takes the depth of
    the side it is nearer to, in 1/depth. Pixels near either side, true steps and smooth slopes
    keep their depth. 0, NaN and inf are "at infinity".
    """
    import cv2

    h, w = z.shape
    if radius is None:
        radius = max(2, round(min(h, w) / 170))  # about 3 pixels of a model prediction at the default input size
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(np.isfinite(z) & (z > 0), np.float32(1.0) / z, np.float32(0.0)).astype(np.float32)
    # the range of 1/depth around each pixel, on blocks: min/max of b x b blocks, then of the
    # blocks within the radius
    b = max(1, radius // 2)
    hb, wb = -(-h // b), -(-w // b)
    padded = d if (hb * b, wb * b) == (h, w) else np.pad(d, ((0, hb * b - h), (0, wb * b - w)), mode="edge")
    blocks = padded.reshape(hb, b, wb, b)
    reach = 2 * -(-radius // b) + 1
    kernel = np.ones((reach, reach), np.uint8)
    lo = cv2.erode(np.ascontiguousarray(blocks.min(axis=(1, 3))), kernel)
    hi = cv2.dilate(np.ascontiguousarray(blocks.max(axis=(1, 3))), kernel)
    edge_rows, edge_cols = np.nonzero(hi - lo > np.float32(jump) * hi)
    if edge_rows.size == 0:
        return z
    # only the pixels of blocks at an edge
    offsets = np.arange(b)
    rows = (edge_rows[:, None, None] * b + offsets[None, :, None]).repeat(b, axis=2)
    cols = (edge_cols[:, None, None] * b + offsets[None, None, :]).repeat(b, axis=1)
    inside = (rows < h) & (cols < w)
    rows, cols = rows[inside], cols[inside]
    block_lo = np.broadcast_to(lo[edge_rows, edge_cols][:, None, None], inside.shape)[inside]
    block_hi = np.broadcast_to(hi[edge_rows, edge_cols][:, None, None], inside.shape)[inside]
    values = d[rows, cols]
    t = (values - block_lo) / np.maximum(block_hi - block_lo, np.float32(1e-12))
    middle = (t > keep) & (t < 1.0 - keep)
    if not middle.any():
        return z
    side = np.where(t[middle] < 0.5, block_lo[middle], block_hi[middle])
    out = np.array(z, dtype=np.float32, copy=True)
    with np.errstate(divide="ignore"):
        out[rows[middle], cols[middle]] = np.where(side > 0, np.float32(1.0) / side, np.float32(np.inf))
    return out


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
    focal = lens_focal_mm(intrinsics, settings, w, h)
    lens.check_lens(settings.f_number, focal, s)
    fx = lens_fx(intrinsics, settings, w, h)
    cap = max_blur_diameter(settings, w, h)
    far = z if valid is None else np.where(valid, z, np.float32(np.inf))

    factor = 1.0
    if preview and max(h, w) > settings.preview_size:
        factor = settings.preview_size / max(h, w)
    if factor < 1.0:
        size = (max(2, round(w * factor)), max(2, round(h * factor)))
        k = size[0] / w
        # average colours in linear light; nearest depth keeps depth edges crisp
        lin = _resize_planes(_linear_planes(rgb, settings), size, cv2.INTER_AREA)
        far = cv2.resize(far, size, interpolation=cv2.INTER_NEAREST)
        if settings.snap_edges:
            far = snap_depth_edges(far, radius=max(2, round(min(h, w) / 170 * k)))
        radius = lens.circle_of_confusion(far, s, settings.f_number, focal, fx * k, cap * k) * np.float32(0.5)
    else:
        lin = None
        if settings.snap_edges:
            far = snap_depth_edges(far)
        radius = lens.circle_of_confusion(far, s, settings.f_number, focal, fx, cap) * np.float32(0.5)

    if float(np.abs(radius).max()) < 0.5 and lin is None:
        return np.array(rgb, copy=True)
    if lin is None:
        lin = _linear_planes(rgb, settings)
    path = _path(preview, max(float(np.abs(radius).max()), 0.5))
    out = cv2.merge(list(from_linear(_composite(lin, radius, settings, path), settings)))
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
