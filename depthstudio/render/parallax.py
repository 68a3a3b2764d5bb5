"""Parallax ("2.5D camera move"): photo + depth -> layers -> frames along a camera path -> video.

    renderer = ParallaxRenderer(photo, depth, settings=ParallaxSettings(path=PathSettings("circle")))
    renderer.frame(0.0)                       # the photo itself, at the output size
    renderer.write_video("out.mp4")           # streamed to the encoder, atomic

The CPU-side preparation (``prepare_layers``: edge zone, sharpened depth, foreground layer, fill
layer, border padding) knows nothing of OpenGL, so the GUI can build the same layers and draw them
into its own viewport with render.scene.Scene.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from depthstudio.depthmap import DepthMap
from depthstudio.errors import SettingsError
from depthstudio.geometry.camera import CameraSettings, Intrinsics
from depthstudio.geometry.depth import DepthMapping
from depthstudio.geometry.mesh import DEFAULT_EDGE_CUT
from depthstudio.jobs import Job, advance, check
from depthstudio.render.camera_path import CameraPath, CameraPose, PathSettings, fit_intrinsics, steady_distance
from depthstudio.render.fill import FillMemory, FillSettings, fill_layer, reveal_width
from depthstudio.render.layers import MeshLayer, edge_zone, grid_layer, sharpen_edges, stride_for
from depthstudio.settings import Settings, nested, parse_size, setting, show_size

#: Default output: the photo's size, the long side at most this many pixels (1080p-class).
DEFAULT_MAX_SIDE = 1920


@dataclass
class ParallaxSettings(Settings):
    """Everything that shapes a parallax clip (the GUI edits it, the CLI fills it from flags)."""

    section = "parallax"

    path: PathSettings = nested(PathSettings)
    fps: float = setting(30.0, label="Frame rate", unit="fps", minimum=0.0, maximum=240.0, min_exclusive=True,
                         metavar="N", decimals=2, help="frames per second")
    size: tuple | None = setting(None, label="Output size", metavar="WxH", parse=parse_size, show=show_size,
                                 auto="the photo's, long side at most 1920", help="output size")
    edge_cut: float = setting(DEFAULT_EDGE_CUT, label="Edge cut", minimum=0.0, metavar="R", decimals=3, step=0.01,
                              help="depth step |ln(z1/z2)| that separates surfaces (0 = never cut)")
    max_vertices: int = setting(400_000, label="Mesh resolution", unit="vertices", minimum=1000, maximum=50_000_000,
                                flag="--mesh-resolution", metavar="N", step=50_000, help="at most N mesh vertices")
    fill: FillSettings = nested(FillSettings)
    samples: int = setting(4, label="Anti-aliasing", unit="samples", minimum=0, maximum=16, metavar="N",
                           help="anti-aliasing samples (0 = off)")
    quality: float = setting(80.0, label="Video quality", minimum=0.0, maximum=100.0, metavar="Q", decimals=0,
                             help="video quality 0..100")
    background: tuple = setting((0.0, 0.0, 0.0), label="Background", flag="", advanced=True,
                                help="colour of what no surface covers (RGB 0..1)")

    def check(self) -> None:
        if self.size is not None:
            object.__setattr__(self, "size", parse_size(self.size))


def output_size(photo_w: int, photo_h: int, size: tuple[int, int] | None, even: bool = True) -> tuple[int, int]:
    if size is None:
        scale = min(1.0, DEFAULT_MAX_SIDE / max(photo_w, photo_h))
        w, h = max(2, int(round(photo_w * scale))), max(2, int(round(photo_h * scale)))
    else:
        w, h = int(size[0]), int(size[1])
    if even:
        w, h = w + w % 2, h + h % 2
    return w, h


@dataclass
class ParallaxLayers:
    """CPU-side result of preparation: what to draw and how the camera moves."""

    layers: list[MeshLayer]
    intrinsics: Intrinsics  # the photo's camera (unpadded)
    path: CameraPath
    steady_depth: float
    padding: int  # photo pixels added around the frame for moves that look past its edges
    band_px: float  # widest reveal behind edges (photo pixels)
    stride: int
    info: dict = field(default_factory=dict)
    fill_memory: FillMemory | None = None  # hand to the next video frame's prepare_layers


def _drawable_depth(z: np.ndarray, valid: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Pixels without depth but with colour (e.g. sky at disparity 0) become the farthest surface,
    so the video has no holes; only transparent pixels stay undrawn."""
    drawable = alpha.copy() if alpha is not None else np.ones(z.shape, bool)
    missing = drawable & ~valid
    if missing.any() and valid.any():
        z = z.copy()
        z[missing] = float(np.max(z[valid]))
    return z, drawable & (valid | missing)


def border_intrusion(z: np.ndarray, intrinsics: Intrinsics, out_k: Intrinsics, path: CameraPath, samples: int = 48) -> float:
    """How far (photo pixels) the photo's border can come inside the output frame along the path."""
    from depthstudio.geometry.unproject import unproject_pixels

    h, w = z.shape
    step = max(1, min(h, w) // 64)
    cols = np.arange(0, w, step)
    rows = np.arange(0, h, step)
    sides = {
        "top": (np.zeros_like(cols), cols), "bottom": (np.full_like(cols, h - 1), cols),
        "left": (rows, np.zeros_like(rows)), "right": (rows, np.full_like(rows, w - 1)),
    }
    worst = 0.0
    scale = out_k.fx / intrinsics.fx  # output pixels per photo pixel at the start
    for u in np.linspace(0.0, 1.0, samples):
        pose = path.pose(float(u))
        k = pose.intrinsics(out_k)
        view = pose.view_matrix()
        for side, (r, c) in sides.items():
            depth = z[r, c]
            ok = depth > 0
            if not ok.any():
                continue
            pts = unproject_pixels(r[ok], c[ok], depth[ok], intrinsics).astype(np.float64)
            cam = pts @ view[:3, :3].T + view[:3, 3]
            front = cam[:, 2] < 0
            if not front.any():
                continue
            cam = cam[front]
            x = k.cx + k.fx * cam[:, 0] / -cam[:, 2]
            y = k.cy - k.fy * cam[:, 1] / -cam[:, 2]
            inside = {"left": x.max(), "right": out_k.width - x.min(), "top": y.max(), "bottom": out_k.height - y.min()}[side]
            # The photo's own border sits half a pixel outside its outermost pixel centres.
            worst = max(worst, (inside + 0.5 * scale) / scale)
    return worst


def prepare_layers(rgb: np.ndarray, z: np.ndarray, valid: np.ndarray, intrinsics: Intrinsics,
                   settings: ParallaxSettings, out_size: tuple[int, int] | None = None,
                   alpha: np.ndarray | None = None, fill_memory: FillMemory | None = None,
                   path=None) -> ParallaxLayers:
    """Foreground (edge-cut, edge-sharpened) and fill layers for a photo, plus its camera path.

    ``fill_memory``: the previous video frame's ``ParallaxLayers.fill_memory``: its fill colours
    are kept wherever the scene did not change, so revealed areas do not flicker.
    ``path`` replaces the one ``settings.path`` describes: anything with ``pose(u)`` for u in [0, 1]
    and ``max_travel()`` (the stereo eyes' track); padding and the fill band are sized for it.
    """
    settings.validate()
    h, w = z.shape
    if rgb.shape[:2] != (h, w):
        raise SettingsError(f"photo is {rgb.shape[1]}x{rgb.shape[0]} but depth is {w}x{h}")
    valid = np.asarray(valid, bool) & np.isfinite(z) & (np.asarray(z) > 0)
    if not valid.any():
        from depthstudio.errors import InputError

        raise InputError("the depth map has no valid pixels (all 0, NaN, inf or masked): nothing to render")
    z, valid = _drawable_depth(np.asarray(z, np.float32), valid, alpha)
    if path is None:
        steady = steady_distance(z, valid, settings.path.steady)
        path = CameraPath(settings.path, steady)
    else:
        steady = float(getattr(path, "steady_depth", None) or steady_distance(z, valid, settings.path.steady))
    out_w, out_h = out_size or output_size(w, h, settings.size)
    out_k = fit_intrinsics(intrinsics, out_w, out_h)
    travel = path.max_travel()

    # Pad the photo (mirrored) where the camera can see past its border.
    intrusion = border_intrusion(z, intrinsics, out_k, path, samples=getattr(path, "border_samples", 48))
    pad = int(min(math.ceil(intrusion * 1.1) + 2, max(h, w) // 2)) if intrusion > 0 else 0
    if pad:
        rgb_p = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
        z_p = np.pad(z, pad, mode="symmetric")
        valid_p = np.pad(valid, pad, mode="symmetric")
        k_p = Intrinsics(intrinsics.fx, intrinsics.fy, intrinsics.cx + pad, intrinsics.cy + pad, w + 2 * pad,
                         h + 2 * pad, intrinsics.source)
    else:
        rgb_p, z_p, valid_p, k_p = rgb, z, valid, intrinsics

    zone = edge_zone(z_p, valid_p, settings.edge_cut) if settings.edge_cut > 0 else np.zeros(z_p.shape, bool)
    z_sharp = sharpen_edges(z_p, valid_p, zone)
    stride = stride_for(k_p.width, k_p.height, int(settings.max_vertices))
    layers = [grid_layer(z_sharp, valid_p, k_p, rgb_p, stride=stride, cut=zone, edge_cut=settings.edge_cut, name="photo")]

    band = 0.0
    memory = None
    info: dict = {"stride": stride, "padding": pad, "travel": travel}
    if settings.fill.enabled and settings.edge_cut > 0:
        band = settings.fill.band_px if settings.fill.band_px is not None else reveal_width(z, valid, intrinsics.fx, travel)
        band = min(band * 1.25 + 2.0, 0.3 * max(h, w))
        layer, revealed = fill_layer(z_sharp, valid_p, zone, rgb_p, k_p, 2.0 * band, settings.edge_cut, settings.fill,
                                     reach=stride * 1.5, required=layers[0].cut_pixels, memory=fill_memory, pad=pad)
        memory = revealed.memory if revealed is not None else None
        if layer is not None and revealed is not None:
            layers.append(layer)
            info["fill_pixels"] = int(np.count_nonzero(revealed.band))
            if revealed.halo is not None and revealed.halo.any():
                # The photo's anti-aliased silhouettes leave foreground colour on the first pixels
                # of the background; repainted from the fill, they no longer trail the foreground
                # as a ghost outline when it moves.
                texture = rgb_p.copy()
                texture[revealed.halo] = layer.texture[revealed.halo]
                layers[0].texture = texture
    info["faces"] = sum(layer.face_count for layer in layers)
    return ParallaxLayers(layers, intrinsics, path, steady, pad, band, stride, info, memory)


class ParallaxRenderer:
    """Renders parallax frames of one photo; owns its GL scene and offscreen target.

    ``depth`` is a DepthMap (mapped through ``mapping``) or a (z, valid) pair of planar depth.
    ``intrinsics`` defaults to what the photo's EXIF / the flags in ``camera`` say.
    """

    def __init__(self, photo, depth, settings: ParallaxSettings | None = None, intrinsics: Intrinsics | None = None,
                 camera: CameraSettings | None = None, mapping: DepthMapping | None = None, ctx=None):
        from depthstudio.geometry.pipeline import photo_intrinsics, surface
        from depthstudio.io.images import as_photo
        from depthstudio.render.gl import offscreen_context
        from depthstudio.render.scene import OffscreenRenderer, Scene

        self.settings = (settings or ParallaxSettings()).validate()
        self.photo = as_photo(photo)
        if isinstance(depth, DepthMap):
            z, valid = surface(self.photo, depth, mapping)
            if intrinsics is None:
                intrinsics = photo_intrinsics(self.photo, depth, camera)
        else:
            z, valid = (np.asarray(a) for a in depth)
            if z.shape != (self.photo.height, self.photo.width):
                raise SettingsError(f"depth is {z.shape[1]}x{z.shape[0]}, the photo {self.photo.width}x{self.photo.height}")
            if intrinsics is None:
                from depthstudio.geometry.camera import resolve_intrinsics

                intrinsics = resolve_intrinsics(self.photo.width, self.photo.height, camera, self.photo.exif)
        self.size = output_size(self.photo.width, self.photo.height, self.settings.size)
        self.prepared = prepare_layers(self.photo.rgb, z, valid, intrinsics, self.settings, self.size, self.photo.alpha)
        self.out_intrinsics = fit_intrinsics(intrinsics, *self.size)
        self.ctx = ctx or offscreen_context()
        self.scene = Scene(self.ctx, self.prepared.layers)
        self.target = OffscreenRenderer(self.ctx, self.size, samples=self.settings.samples)

    @property
    def path(self) -> CameraPath:
        return self.prepared.path

    def frame_count(self) -> int:
        return self.path.frame_count(self.settings.fps)

    def pose(self, u: float) -> CameraPose:
        return self.path.pose(u)

    def frame(self, u: float = 0.0) -> np.ndarray:
        """The frame at clip position u (0 = start; see CameraPath.frame_times)."""
        return self.render_pose(self.path.pose(float(u)))

    def render_pose(self, pose: CameraPose) -> np.ndarray:
        return self.target.render(self.scene, pose, self.out_intrinsics, self.settings.background)

    def draw(self, u: float, framebuffer, size: tuple[int, int] | None = None, viewport=None) -> None:
        """Draw the frame at u into another framebuffer of this renderer's context (a GUI
        viewport: ``ctx.detect_framebuffer()``), fitted to ``size`` (default: the export size)."""
        k = fit_intrinsics(self.prepared.intrinsics, *size) if size else self.out_intrinsics
        self.scene.draw_pose(self.path.pose(float(u)), k, framebuffer, background=self.settings.background,
                             viewport=viewport or (0, 0, k.width, k.height))

    def frames(self):
        """Every frame of the clip, one at a time (nothing is kept)."""
        for u in self.path.frame_times(self.frame_count()):
            yield self.frame(float(u))

    def write_video(self, path, progress: bool = False, job: Job | None = None) -> Path:
        """Encode every frame to ``path``; ``job`` counts frames and can cancel between them."""
        from depthstudio.video.writer import VideoWriter

        n = self.frame_count()
        if job is not None:
            job.start(n, Path(path).name)
        with VideoWriter(path, self.settings.fps, self.size, quality=self.settings.quality, progress=progress,
                         total=n, desc=Path(path).name) as video:
            for frame in self.frames():
                check(job)
                video.write(frame)
                advance(job)
        return Path(path)

    def release(self) -> None:
        self.target.release()
        self.scene.release()

    def __enter__(self) -> ParallaxRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def render_parallax(photo, depth, output, settings: ParallaxSettings | None = None, camera: CameraSettings | None = None,
                    mapping: DepthMapping | None = None, progress: bool = False, job: Job | None = None) -> Path:
    """Photo + depth -> a parallax video at ``output`` (.mp4, .webm or .gif)."""
    from depthstudio.video.writer import FORMATS

    suffix = Path(output).suffix.lower()
    if suffix not in (".mp4", ".webm", ".gif", ".mov", ".mkv", ".m4v"):
        raise SettingsError(f"{output}: cannot write a parallax video as '{suffix or '(no extension)'}'; "
                            f"use .mp4, .webm or .gif")
    assert suffix in FORMATS
    with ParallaxRenderer(photo, depth, settings, camera=camera, mapping=mapping) as renderer:
        return renderer.write_video(output, progress=progress, job=job)
