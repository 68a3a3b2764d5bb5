"""Stereo 3D and VR from one photo and its depth: two eyes rendered by the shared GL scene.

    with StereoRenderer(photo, depth, StereoSettings(layout="anaglyph", baseline=0.065)) as stereo:
        left, right = stereo.eyes()
        picture = stereo.compose()             # the layout's picture (sbs, tb, anaglyph, ...)
        stereo.write("out/", "photo")          # the layout's files

The eyes are the photo's camera moved by -B/2 and +B/2 along its own x axis, with the same
orientation and intrinsics; B (the baseline) is in scene units (metres for metric depth), or comes
from ``divergence``: the largest disparity, as a percentage of the picture's width. Convergence is
a horizontal sensor shift (an off-axis frustum, never toe-in): surfaces at distance D have zero
parallax, nearer ones come out of the screen; ``inf`` keeps the eyes parallel. Between the eyes a
point at distance Z moves by ``fx * B * (1/Z - 1/D)`` pixels (left eye's x minus right eye's x).

The layers (edge-cut foreground plus revealed-area fill) are prepared once for both eyes, by the
same ``prepare_layers`` the parallax renderer uses, so the GUI preview, photos and video agree.

Layouts: ``pair`` (two full-size files), ``sbs`` / ``tb`` (full size per eye), ``sbs-half`` /
``tb-half`` (each eye squeezed to half), ``cross`` (right | left, for cross-eyed viewing),
``anaglyph`` (red-cyan: Dubois least squares, half-colour, grey or full colour), ``vr180`` (each eye
as a 180-degree equirectangular image, side by side; see ``depthstudio.render.vr180`` for the
metadata) and ``quilt`` (N views along a horizontal track, tiled for Looking Glass displays).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from depthstudio.depthmap import DepthMap
from depthstudio.errors import SettingsError
from depthstudio.geometry.camera import CameraSettings, Intrinsics
from depthstudio.geometry.depth import DepthMapping
from depthstudio.render.camera_path import CameraPose, fit_intrinsics, steady_distance
from depthstudio.render.parallax import ParallaxSettings, output_size, prepare_layers
from depthstudio.settings import Settings, nested, setting

log = logging.getLogger(__name__)

LAYOUTS = ("sbs", "sbs-half", "tb", "tb-half", "cross", "anaglyph", "pair", "vr180", "quilt")
ANAGLYPHS = ("dubois", "half-color", "gray", "color")
#: Layouts that are one picture per photo (and per video frame).
SINGLE = ("sbs", "sbs-half", "tb", "tb-half", "cross", "anaglyph", "vr180")
#: Largest disparity (percent of the width) when neither a baseline nor a divergence is given.
DEFAULT_DIVERGENCE = 2.0
#: Largest side of a default quilt and of a default VR180 eye (pixels).
MAX_QUILT_SIDE = 4096
MAX_VR_EYE = 4096


# -- settings -------------------------------------------------------------------------------------
def parse_convergence(text) -> str:
    """'inf' (parallel eyes), 'auto', or a positive distance -> its canonical text."""
    value = str(text).strip().lower()
    if value in ("inf", "infinity", "parallel", "none"):
        return "inf"
    if value == "auto":
        return "auto"
    try:
        d = float(value)
    except ValueError:
        raise SettingsError(f"convergence (--convergence) must be a distance, 'inf' or 'auto', got {text!r}") from None
    if math.isinf(d) and d > 0:
        return "inf"
    if not (math.isfinite(d) and d > 0):
        raise SettingsError(f"convergence (--convergence) must be a positive distance, 'inf' or 'auto', got {text!r}")
    return f"{d:g}"


def parse_grid(text) -> tuple[int, int]:
    """'8x6' (or a [cols, rows] pair) -> (8, 6)."""
    try:
        if isinstance(text, (tuple, list)):
            cols, rows = (int(v) for v in text)
        else:
            cols, rows = (int(v) for v in str(text).lower().split("x"))
    except (TypeError, ValueError):
        raise SettingsError(f"quilt (--quilt) must be COLSxROWS, e.g. 8x6, got {text!r}") from None
    if cols < 1 or rows < 1 or cols * rows < 2 or cols * rows > 256:
        raise SettingsError(f"quilt (--quilt) needs 2 to 256 views (COLSxROWS), got {cols}x{rows}")
    return cols, rows


def show_grid(grid: tuple[int, int]) -> str:
    return f"{grid[0]}x{grid[1]}"


@dataclass
class StereoSettings(Settings):
    """Everything that shapes a stereo picture (the GUI edits it, the CLI fills it from flags)."""

    section = "stereo"

    layout: str = setting("sbs", label="Layout", choices=LAYOUTS,
                          help="sbs, sbs-half, tb, tb-half, cross (right|left), anaglyph, pair (two files), "
                               "vr180 (equirectangular, with VR metadata) or quilt (Looking Glass)")
    baseline: float | None = setting(None, label="Baseline", unit="scene units", minimum=0.0, min_exclusive=True,
                                     metavar="B", exclusive="strength", decimals=3, step=0.01,
                                     auto=f"from the divergence ({DEFAULT_DIVERGENCE:g} %)",
                                     help="distance between the eyes, in scene units (metres for metric depth)")
    divergence: float | None = setting(None, label="Divergence", unit="%", minimum=0.0, maximum=50.0,
                                       min_exclusive=True, metavar="PCT", exclusive="strength", decimals=2, step=0.25,
                                       auto=f"{DEFAULT_DIVERGENCE:g}",
                                       help="or the largest disparity, as a percentage of the width")
    convergence: str = setting("auto", label="Convergence", unit="scene units", metavar="D|inf", parse=parse_convergence,
                               auto="parallel for vr180, else the middle of the scene",
                               help="distance with zero parallax (the screen plane); inf = parallel eyes; "
                                    "auto = parallel for vr180, else the middle of the scene")
    anaglyph: str = setting("dubois", label="Anaglyph", choices=ANAGLYPHS,
                            help="red-cyan anaglyph method: dubois (least squares), half-color, gray or color")
    quilt: str = setting("8x6", label="Quilt views", metavar="COLSxROWS", parse=lambda text: show_grid(parse_grid(text)),
                         help="views of a Looking Glass quilt, columns x rows (first view bottom-left)")
    vr_size: int | None = setting(None, label="VR180 eye size", unit="px", minimum=64, maximum=8192, metavar="N",
                                  auto=f"the photo's resolution, at most {MAX_VR_EYE}",
                                  help="width and height of each eye's 180-degree picture")
    render: ParallaxSettings = nested(ParallaxSettings)

    def check(self) -> None:
        object.__setattr__(self, "convergence", parse_convergence(self.convergence))
        object.__setattr__(self, "quilt", show_grid(parse_grid(self.quilt)))

    @property
    def grid(self) -> tuple[int, int]:
        """The quilt's (columns, rows)."""
        return parse_grid(self.quilt)

    @property
    def parallel(self) -> bool:
        return self.convergence == "inf" or (self.convergence == "auto" and self.layout == "vr180")


# -- the rig --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StereoRig:
    """Two eyes ``baseline`` apart; ``convergence`` is the zero-parallax distance (None: parallel)."""

    baseline: float
    convergence: float | None = None

    def pose(self, offset: float) -> CameraPose:
        """The photo's camera moved ``offset`` scene units along its x axis, sensor-shifted to converge."""
        return CameraPose(position=np.array([float(offset), 0.0, 0.0]), steady_depth=self.convergence)

    @property
    def left(self) -> CameraPose:
        return self.pose(-0.5 * self.baseline)

    @property
    def right(self) -> CameraPose:
        return self.pose(0.5 * self.baseline)

    def disparity(self, z, fx: float):
        """Left x minus right x (pixels) of a point at distance ``z``: fx * B * (1/z - 1/D)."""
        inv_d = 0.0 if self.convergence is None else 1.0 / self.convergence
        return fx * self.baseline * (1.0 / np.asarray(z, np.float64) - inv_d)

    def convergence_shift(self, fx: float) -> float:
        """How far (pixels) the sensor shift moves the eyes' pictures apart: fx * B / D."""
        return 0.0 if self.convergence is None else fx * self.baseline / self.convergence


def _depth_ends(z: np.ndarray, valid: np.ndarray) -> tuple[float, float, float]:
    """(robust near, robust far, nearest) of the valid depths."""
    values = z[valid] if valid is not None else z[z > 0]
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return 1.0, 1.0, 1.0
    nearest = float(values.min())
    if values.size > 200_000:
        values = values[:: values.size // 200_000]
    near, far = np.percentile(values, [0.5, 99.5])
    return float(near), float(far), nearest


def plan_rig(settings: StereoSettings, z: np.ndarray, valid: np.ndarray, intrinsics: Intrinsics) -> tuple[StereoRig, list[str]]:
    """The baseline and convergence for a scene; warnings (one line each) for odd choices.

    ``intrinsics`` is the output's camera: the divergence is a share of its width.
    """
    near, far, nearest = _depth_ends(z, valid)
    warnings: list[str] = []
    if settings.parallel:
        distance = None
    elif settings.convergence == "auto":
        distance = steady_distance(z, valid, 0.5)
    else:
        distance = float(settings.convergence)
        if distance < nearest:
            warnings.append(f"convergence {distance:g} is nearer than the nearest surface ({nearest:.3g}): "
                            f"the whole picture lies behind the screen")
    if settings.baseline is not None:
        baseline = float(settings.baseline)
    else:
        pct = settings.divergence if settings.divergence is not None else DEFAULT_DIVERGENCE
        inv_d = 0.0 if distance is None else 1.0 / distance
        spread = max(abs(1.0 / near - inv_d), abs(1.0 / far - inv_d), 1e-12)
        baseline = pct / 100.0 * intrinsics.width / (intrinsics.fx * spread)
    return StereoRig(baseline, distance), warnings


class StereoTrack:
    """The eyes' track as a camera path for ``prepare_layers``: u in [0, 1] runs from the left eye
    to the right one (the quilt's views lie along it), so padding and fill cover both eyes."""

    #: Poses move in a straight line, so the photo's border comes furthest in at the ends.
    border_samples = 3

    def __init__(self, rig: StereoRig):
        self.rig = rig
        self.steady_depth = rig.convergence

    def offset(self, u: float) -> float:
        return (float(u) - 0.5) * self.rig.baseline

    def pose(self, u: float) -> CameraPose:
        return self.rig.pose(self.offset(u))

    def max_travel(self, samples: int = 0) -> float:
        return 0.5 * self.rig.baseline


# -- layouts --------------------------------------------------------------------------------------
def squeeze(image: np.ndarray, axis: int) -> np.ndarray:
    """Half the width (axis 1) or height (axis 0), area-averaged (the -half layouts)."""
    import cv2

    h, w = image.shape[:2]
    size = (max(1, w // 2), h) if axis == 1 else (w, max(1, h // 2))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


#: Dubois' least-squares red-cyan matrices (linear RGB; rows: output R, G, B).
DUBOIS_LEFT = np.array([[0.456, 0.500, 0.176], [-0.040, -0.038, -0.016], [-0.015, -0.021, -0.005]])
DUBOIS_RIGHT = np.array([[-0.043, -0.088, -0.002], [0.378, 0.734, -0.018], [-0.072, -0.113, 1.226]])
LUMA = np.array([0.299, 0.587, 0.114])


def _to_linear(image: np.ndarray) -> np.ndarray:
    c = np.arange(256) / 255.0
    lut = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)
    return lut[image]


def _to_srgb(linear: np.ndarray) -> np.ndarray:
    x = np.clip(linear, 0.0, 1.0)
    s = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)
    return np.clip(s * 255.0 + 0.5, 0, 255).astype(np.uint8)


def anaglyph(left: np.ndarray, right: np.ndarray, method: str = "dubois") -> np.ndarray:
    """A red-cyan anaglyph: the red filter (left eye) passes R, the cyan one (right eye) G and B."""
    if left.shape != right.shape:
        raise SettingsError(f"the eyes differ in size: {left.shape} and {right.shape}")
    if method == "dubois":
        mixed = _to_linear(left) @ DUBOIS_LEFT.T.astype(np.float32) + _to_linear(right) @ DUBOIS_RIGHT.T.astype(np.float32)
        return _to_srgb(mixed)
    out = np.empty_like(left)
    if method == "color":
        out[..., 0] = left[..., 0]
        out[..., 1:] = right[..., 1:]
    elif method == "half-color":
        out[..., 0] = np.clip(left @ LUMA + 0.5, 0, 255).astype(np.uint8)
        out[..., 1:] = right[..., 1:]
    elif method == "gray":
        out[..., 0] = np.clip(left @ LUMA + 0.5, 0, 255).astype(np.uint8)
        out[..., 1] = out[..., 2] = np.clip(right @ LUMA + 0.5, 0, 255).astype(np.uint8)
    else:
        raise SettingsError(f"anaglyph (--anaglyph) must be one of {', '.join(ANAGLYPHS)}, got {method!r}")
    return out


def compose(left: np.ndarray, right: np.ndarray, layout: str, method: str = "dubois") -> np.ndarray:
    """One picture from two eyes for a two-eye layout (not pair, vr180 or quilt)."""
    if layout == "sbs":
        return np.concatenate([left, right], axis=1)
    if layout == "sbs-half":
        return np.concatenate([squeeze(left, 1), squeeze(right, 1)], axis=1)
    if layout == "tb":
        return np.concatenate([left, right], axis=0)
    if layout == "tb-half":
        return np.concatenate([squeeze(left, 0), squeeze(right, 0)], axis=0)
    if layout == "cross":
        return np.concatenate([right, left], axis=1)
    if layout == "anaglyph":
        return anaglyph(left, right, method)
    raise SettingsError(f"layout {layout!r} is not one picture of two eyes; use one of sbs, sbs-half, tb, tb-half, "
                        f"cross, anaglyph")


def composed_size(layout: str, eye: tuple[int, int], vr_eye: int = 0, grid: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """(width, height) of a layout's picture for eyes of ``eye`` = (w, h)."""
    w, h = eye
    return {
        "sbs": (2 * w, h), "cross": (2 * w, h), "sbs-half": (2 * (w // 2), h), "tb": (w, 2 * h),
        "tb-half": (w, 2 * (h // 2)), "anaglyph": (w, h), "pair": (w, h), "vr180": (2 * vr_eye, vr_eye),
        "quilt": (grid[0] * w, grid[1] * h),
    }[layout]


def tile_quilt(views: list[np.ndarray], cols: int, rows: int) -> np.ndarray:
    """Views tiled left to right, bottom row first (view 0 at the bottom-left), as Looking Glass wants."""
    h, w = views[0].shape[:2]
    out = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i, view in enumerate(views):
        col, row_up = i % cols, i // cols
        top = (rows - 1 - row_up) * h
        out[top:top + h, col * w:(col + 1) * w] = view
    return out


def quilt_name(stem: str, cols: int, rows: int, view_size: tuple[int, int]) -> str:
    """``<stem>_qs{cols}x{rows}a{aspect}.png``: Looking Glass reads the layout from the name."""
    aspect = view_size[0] / float(view_size[1])
    return f"{stem}_qs{cols}x{rows}a{aspect:.4g}.png"


def quilt_view_size(photo_w: int, photo_h: int, cols: int, rows: int) -> tuple[int, int]:
    """Default view size: the photo's aspect, the whole quilt at most MAX_QUILT_SIDE per side."""
    scale = min(1.0, MAX_QUILT_SIDE / float(cols * photo_w), MAX_QUILT_SIDE / float(rows * photo_h))
    return max(2, int(photo_w * scale)), max(2, int(photo_h * scale))


# -- equirectangular --------------------------------------------------------------------------------
def vr_eye_size(intrinsics: Intrinsics, requested: int | None = None) -> int:
    """Side of a 180-degree eye picture: as many pixels per degree as the photo's centre has."""
    if requested:
        return int(requested) + int(requested) % 2
    side = int(round(intrinsics.fx * math.pi))
    side = max(64, min(MAX_VR_EYE, side))
    return side + side % 2


def equirect_maps(intrinsics: Intrinsics, side: int) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps from a ``side`` x ``side`` 180 x 180 degree equirectangular picture (longitude
    and latitude from -90 to 90 degrees, centre straight ahead) into a pinhole picture."""
    k = intrinsics
    a = ((np.arange(side) + 0.5) / side - 0.5) * math.pi
    lon, lat = a[None, :], -a[:, None]
    forward = np.cos(lat) * np.cos(lon)
    x = np.cos(lat) * np.sin(lon)
    y = np.sin(lat) * np.ones_like(lon)
    ahead = forward > 1e-6
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(ahead, k.cx + k.fx * x / forward, -1e6) - 0.5
        v = np.where(ahead, k.cy - k.fy * y / forward, -1e6) - 0.5
    return u.astype(np.float32), v.astype(np.float32)


def to_equirect(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The pinhole picture on the 180-degree equirectangular grid; black outside its field of view."""
    import cv2

    return cv2.remap(np.ascontiguousarray(image), maps[0], maps[1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


# -- the renderer ---------------------------------------------------------------------------------
class StereoRenderer:
    """Renders the eyes (and quilt views) of one photo; owns its GL scene and offscreen target.

    ``depth`` is a DepthMap (mapped through ``mapping``) or a (z, valid) pair of planar depth.
    ``rig`` overrides the baseline and convergence the settings would plan (the video effect keeps
    one rig for a whole clip). ``warnings`` lists one-line warnings about the settings.
    """

    def __init__(self, photo, depth, settings: StereoSettings | None = None, intrinsics: Intrinsics | None = None,
                 camera: CameraSettings | None = None, mapping: DepthMapping | None = None, ctx=None,
                 rig: StereoRig | None = None, size: tuple[int, int] | None = None):
        from depthstudio.io.images import as_photo
        from depthstudio.render.gl import offscreen_context
        from depthstudio.render.scene import OffscreenRenderer, Scene

        self.settings = (settings or StereoSettings()).validate()
        self.photo = as_photo(photo)
        z, valid, intrinsics = _surface(self.photo, depth, intrinsics, camera, mapping)
        s = self.settings
        if size is None:
            if s.layout == "quilt" and s.render.size is None:
                size = quilt_view_size(self.photo.width, self.photo.height, *s.grid)
            else:
                size = output_size(self.photo.width, self.photo.height, s.render.size, even=False)
        self.size = (int(size[0]), int(size[1]))
        self.intrinsics = intrinsics
        self.out_intrinsics = fit_intrinsics(intrinsics, *self.size)
        self.warnings: list[str] = []
        if rig is None:
            rig, self.warnings = plan_rig(s, z, valid, self.out_intrinsics)
        self.rig = rig
        self.track = StereoTrack(rig)
        self._surface = (z, valid)
        self.prepared = prepare_layers(self.photo.rgb, z, valid, intrinsics, s.render, self.size, self.photo.alpha,
                                       path=self.track)
        self.preparations = 1
        self.ctx = ctx or offscreen_context()
        self.scene = Scene(self.ctx, self.prepared.layers)
        self.target = OffscreenRenderer(self.ctx, self.size, samples=s.render.samples)
        self._maps: tuple | None = None

    def update(self, settings: StereoSettings) -> list[str]:
        """Take new settings for a live preview (a GUI slider): layout, anaglyph, quilt and VR size
        changes are free; a new baseline or convergence re-plans the rig and keeps the prepared
        layers while the eyes stay within the track they were prepared for (padding and fill band);
        a larger track or new renderer settings (edge cut, fill, ...) prepare them again. The eye
        size stays (a quilt's views take it too). Returns the new rig's warnings."""
        from depthstudio.render.scene import OffscreenRenderer

        settings = settings.validate()
        if settings.render.size != self.settings.render.size:
            raise SettingsError("a new eye size needs a new StereoRenderer")
        z, valid = self._surface
        rig, warnings = plan_rig(settings, z, valid, self.out_intrinsics)
        track = StereoTrack(rig)
        samples_changed = settings.render.samples != self.settings.render.samples
        if settings.render != self.settings.render or track.max_travel() > self.prepared.path.max_travel() * (1 + 1e-9):
            self.prepared = prepare_layers(self.photo.rgb, z, valid, self.intrinsics, settings.render, self.size,
                                           self.photo.alpha, path=track)
            self.preparations += 1
            self.scene.clear()
            for layer in self.prepared.layers:
                self.scene.add(layer)
        if samples_changed:
            self.target.release()
            self.target = OffscreenRenderer(self.ctx, self.size, samples=settings.render.samples)
        if settings.vr_size != self.settings.vr_size:
            self._maps = None
        self.settings, self.rig, self.track, self.warnings = settings, rig, track, warnings
        return warnings

    # -- views --------------------------------------------------------------------------------
    def view(self, offset: float) -> np.ndarray:
        """The picture from the photo's camera moved ``offset`` scene units to the right (converged)."""
        return self.render_pose(self.rig.pose(offset))

    def render_pose(self, pose: CameraPose) -> np.ndarray:
        return self.target.render(self.scene, pose, self.out_intrinsics, self.settings.render.background)

    def eyes(self) -> tuple[np.ndarray, np.ndarray]:
        return self.view(-0.5 * self.rig.baseline), self.view(0.5 * self.rig.baseline)

    def quilt_views(self):
        """The quilt's views, left to right along the eyes' track (one at a time)."""
        cols, rows = self.settings.grid
        for u in np.linspace(0.0, 1.0, cols * rows):
            yield self.view(self.track.offset(float(u)))

    def vr_side(self) -> int:
        return vr_eye_size(self.out_intrinsics, self.settings.vr_size)

    def equirect(self, eye: np.ndarray) -> np.ndarray:
        """An eye's picture on the 180-degree grid. The photo's own (unshifted) camera maps it, so a
        convergence shift stays a shift of the picture, as on a flat screen."""
        if self._maps is None:
            self._maps = equirect_maps(self.out_intrinsics, self.vr_side())
        return to_equirect(eye, self._maps)

    # -- pictures -----------------------------------------------------------------------------
    def compose(self, layout: str | None = None) -> np.ndarray:
        """The layout's one picture (pair: left | right; quilt: the tiled views)."""
        s = self.settings
        layout = layout or s.layout
        if layout == "quilt":
            return tile_quilt(list(self.quilt_views()), *s.grid)
        left, right = self.eyes()
        if layout == "pair":
            return np.concatenate([left, right], axis=1)
        if layout == "vr180":
            return np.concatenate([self.equirect(left), self.equirect(right)], axis=1)
        return compose(left, right, layout, s.anaglyph)

    def preview(self, layout: str | None = None, max_side: int | None = None) -> np.ndarray:
        """What the GUI shows: the layout's picture (vr180: side by side), at most ``max_side`` wide."""
        picture = self.compose(layout)
        if max_side and max(picture.shape[:2]) > max_side:
            import cv2

            scale = max_side / float(max(picture.shape[:2]))
            size = (max(1, int(picture.shape[1] * scale)), max(1, int(picture.shape[0] * scale)))
            picture = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
        return picture

    def write(self, folder, stem: str) -> list[Path]:
        """The layout's files in ``folder`` (see ``output_names``); returns their paths."""
        from depthstudio.io.atomic import ensure_dir
        from depthstudio.io.images import save_png

        folder = ensure_dir(folder)
        s = self.settings
        names = output_names(stem, s, self.size)
        if s.layout == "pair":
            left, right = self.eyes()
            return [save_png(folder / names[0], left), save_png(folder / names[1], right)]
        if s.layout == "vr180":
            from depthstudio.render.vr180 import write_vr180_photo

            left, right = self.eyes()
            return write_vr180_photo(folder / names[0], folder / names[1], self.equirect(left), self.equirect(right),
                                     quality=s.render.quality)
        return [save_png(folder / names[0], self.compose())]

    def info(self) -> dict:
        """What the settings file records besides the settings: the rig that was used."""
        k = self.out_intrinsics
        return {"baseline": self.rig.baseline, "convergence": self.rig.convergence,
                "convergence_shift_px": self.rig.convergence_shift(k.fx), "eye_size": list(self.size),
                "intrinsics": {"fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy, "source": k.source}}

    def release(self) -> None:
        self.target.release()
        self.scene.release()

    def __enter__(self) -> StereoRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def output_names(stem: str, settings: StereoSettings, eye_size: tuple[int, int]) -> list[str]:
    """File names a layout writes for ``stem``."""
    layout = settings.layout
    if layout == "pair":
        return [f"{stem}_left.png", f"{stem}_right.png"]
    if layout == "vr180":
        # side by side (players that read the layout from the name), and Google's VR180 photo
        return [f"{stem}_vr180_LR.jpg", f"{stem}_vr180.vr.jpg"]
    if layout == "quilt":
        return [quilt_name(stem, *settings.grid, eye_size)]
    return [f"{stem}_{layout}.png"]


def _surface(photo, depth, intrinsics, camera, mapping):
    from depthstudio.geometry.pipeline import photo_intrinsics, surface

    if isinstance(depth, DepthMap):
        z, valid = surface(photo, depth, mapping)
        if intrinsics is None:
            intrinsics = photo_intrinsics(photo, depth, camera)
    else:
        z, valid = (np.asarray(a) for a in depth)
        if z.shape != (photo.height, photo.width):
            raise SettingsError(f"depth is {z.shape[1]}x{z.shape[0]}, the photo {photo.width}x{photo.height}")
        if intrinsics is None:
            from depthstudio.geometry.camera import resolve_intrinsics

            intrinsics = resolve_intrinsics(photo.width, photo.height, camera, photo.exif)
    return z, valid, intrinsics


def render_stereo(photo, depth, output=None, settings: StereoSettings | None = None, *, stem: str | None = None,
                  intrinsics: Intrinsics | None = None, camera: CameraSettings | None = None,
                  mapping: DepthMapping | None = None) -> dict:
    """Photo + depth -> the stereo layout's picture(s).

    Returns {"left", "right", "picture", "rig", "warnings", "files"}: the eyes, the layout's picture
    (None for pair), the rig used, and, when ``output`` (a folder) is given, the files written
    (named from ``stem``, default the photo's file stem or "stereo").
    """
    from depthstudio.io.images import as_photo

    photo = as_photo(photo)
    settings = (settings or StereoSettings()).validate()
    with StereoRenderer(photo, depth, settings, intrinsics=intrinsics, camera=camera, mapping=mapping) as stereo:
        left, right = stereo.eyes()
        result = {"left": left, "right": right, "rig": stereo.rig, "warnings": list(stereo.warnings), "files": []}
        result["picture"] = None if settings.layout == "pair" else stereo.compose()
        if output is not None:
            name = stem or (photo.stem if photo.path else "stereo")
            result["files"] = stereo.write(output, name)
    return result


def render_stereo_preview(photo, depth, settings: StereoSettings | None = None, max_side: int = 1024,
                          layout: str | None = None, **kwargs) -> np.ndarray:
    """One RGB preview array of the layout (what a GUI panel shows); ``kwargs`` go to StereoRenderer.

    For live previews keep a StereoRenderer and call its ``preview`` instead: the layers are then
    prepared once.
    """
    settings = (settings or StereoSettings()).validate()
    if settings.render.size is None:
        from depthstudio.io.images import as_photo

        photo = as_photo(photo)
        cols, rows = settings.grid if (layout or settings.layout) == "quilt" else (1, 1)
        scale = min(1.0, max_side / float(cols * photo.width), max_side / float(rows * photo.height))
        size = (max(2, int(photo.width * scale)), max(2, int(photo.height * scale)))
        settings = replace(settings, render=replace(settings.render, size=size))
    with StereoRenderer(photo, depth, settings, **kwargs) as stereo:
        return stereo.preview(layout, max_side)
