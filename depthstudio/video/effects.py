"""Effects on moving footage: depth of field (fixed focus, tracked point, focus pull) and parallax.

Each effect is created in the pipeline's encode thread (so an OpenGL context belongs to the thread
that uses it) and called once per frame with the frame, its stabilised depth and the time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from depthstudio.errors import SettingsError
from depthstudio.render.camera_path import PathSettings
from depthstudio.render.dof import DofSettings
from depthstudio.settings import Settings, nested, setting


# -- focus over time -----------------------------------------------------------------------------
def parse_keys(text) -> tuple:
    """"T0:D0,T1:D1,..." (seconds : metres or scene units) -> ((t, d), ...), sorted by time."""
    if isinstance(text, (tuple, list)):
        keys = [(float(t), float(d)) for t, d in text]
    else:
        try:
            keys = [(float(t), float(d)) for t, d in (part.split(":") for part in str(text).split(","))]
        except ValueError:
            raise SettingsError(f"focus pull must look like 0:2,3:8 (seconds:distance,...), got {text!r}") from None
    if not keys:
        raise SettingsError("a focus pull needs at least one time:distance pair")
    for t, d in keys:
        if not (np.isfinite(t) and t >= 0):
            raise SettingsError(f"focus pull time must be a non-negative number of seconds, got {t}")
        if not (np.isfinite(d) and d > 0):
            raise SettingsError(f"focus pull distance must be positive, got {d}")
    return tuple(sorted(keys))


@dataclass
class VideoDofSettings(Settings):
    """Depth of field on a clip. Focus: ``pull`` keyframes, else ``lens.focus_distance``, else
    ``lens.focus_point`` (tracked through the clip), else the centre of the picture."""

    section = "video_dof"

    lens: DofSettings = nested(DofSettings)
    pull: tuple | None = setting(None, label="Focus pull", flag="--focus-pull", metavar="T:D,...", parse=parse_keys,
                                 show=lambda keys: ",".join(f"{t:g}:{d:g}" for t, d in keys), auto="none",
                                 help="focus distance keyframes, seconds:distance (e.g. 0:1.5,3:8)")
    track: bool = setting(True, label="Track focus point",
                          help="follow the focus point as the picture moves (--no-track keeps it at its pixel)")
    focus_smoothing: float = setting(0.6, label="Focus smoothing", minimum=0.0, maximum=1.0, max_exclusive=True,
                                     flag="", advanced=True,
                                     help="how much the tracked focus distance is averaged over time (no hunting)")

    def check(self) -> None:
        if self.pull is not None:
            object.__setattr__(self, "pull", parse_keys(self.pull))

    @property
    def preview(self) -> bool:
        return self.lens.preview


def pull_distance(keys: list[tuple[float, float]], t: float) -> float:
    """Focus distance at time ``t`` for keyframes [(t, d), ...]: held before the first and after the
    last; between two, eased in and out and even in 1/distance (as a focus ring moves)."""
    keys = sorted(keys)
    if t <= keys[0][0]:
        return float(keys[0][1])
    if t >= keys[-1][0]:
        return float(keys[-1][1])
    for (t0, d0), (t1, d1) in zip(keys, keys[1:]):
        if t0 <= t <= t1:
            u = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
            e = 0.5 - 0.5 * np.cos(np.pi * u)
            return float(1.0 / (1.0 / d0 + e * (1.0 / d1 - 1.0 / d0)))
    return float(keys[-1][1])


class PointTracker:
    """Follows one picture point from frame to frame (pyramidal Lucas-Kanade on a small patch of
    points around it, forward-backward checked; the median motion moves the point)."""

    def __init__(self, point: tuple[float, float]):
        self.point = np.array(point, np.float32)
        self._prev: np.ndarray | None = None
        self._offsets: np.ndarray | None = None

    def update(self, rgb: np.ndarray) -> tuple[float, float]:
        import cv2

        grey: Any = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        h, w = grey.shape
        if self._offsets is None:
            r = max(3.0, min(h, w) / 40.0)
            g = np.linspace(-r, r, 5, dtype=np.float32)
            self._offsets = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
        if self._prev is not None and self._prev.shape == grey.shape:
            p0 = (self.point + self._offsets).reshape(-1, 1, 2).astype(np.float32)
            lk: dict[str, Any] = dict(winSize=(21, 21), maxLevel=3,
                                      criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
            flow: Any = cv2.calcOpticalFlowPyrLK  # its stubs do not allow nextPts=None, which it takes
            p1, st1, _ = flow(self._prev, grey, p0, None, **lk)
            back, st2, _ = flow(grey, self._prev, p1, None, **lk)
            fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
            ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < 1.0)
            if ok.sum() >= 3:
                motion = np.median((p1 - p0).reshape(-1, 2)[ok], axis=0)
                self.point = self.point + motion.astype(np.float32)
            self.point = np.clip(self.point, [0, 0], [w - 1, h - 1]).astype(np.float32)
        self._prev = grey
        return float(self.point[0]), float(self.point[1])


def _intrinsics(camera, width: int, height: int):
    from depthstudio.geometry.camera import resolve_intrinsics

    return resolve_intrinsics(width, height, camera)


class DofEffect:
    """Lens blur per frame, focus fixed, tracked, or pulled over time."""

    def __init__(self, settings, paths: dict[str, Path], info, size: tuple[int, int]):
        self.settings = settings
        self.paths = paths
        self.dof: VideoDofSettings = (settings.dof or VideoDofSettings()).validate()
        self.intrinsics = _intrinsics(settings.camera, *size)
        lens = self.dof.lens
        self.tracker = None
        self.fixed_point: tuple[float, float] | None = None
        if self.dof.pull is None and lens.focus_distance is None:
            w, h = size
            point = lens.focus_point if lens.focus_point is not None else (w / 2.0, h / 2.0)
            if 0 <= point[0] <= 1 and 0 <= point[1] <= 1 and lens.focus_point is not None:
                point = (point[0] * w, point[1] * h)  # fractions of the picture
            if not (0 <= point[0] < w and 0 <= point[1] < h):
                raise SettingsError(f"focus point ({point[0]:g}, {point[1]:g}) is outside the {w}x{h} picture")
            if self.dof.track and lens.focus_point is not None:
                self.tracker = PointTracker(point)
            else:
                self.fixed_point = point
        self._inv_focus: float | None = None
        self.focus_log: list[tuple[float, float, tuple[float, float] | None]] = []  # (time, distance, point)

    def writers(self, info, size):
        return {"effect": {"size": size, "quality": self.settings.quality}}

    def focus_distance(self, frame, z: np.ndarray, valid: np.ndarray) -> tuple[float, tuple[float, float] | None]:
        from depthstudio.render import lens as lens_maths

        lens = self.dof.lens
        if self.dof.pull is not None:
            return pull_distance(list(self.dof.pull), frame.time), None
        if lens.focus_distance is not None:
            return float(lens.focus_distance), None
        point = self.tracker.update(frame.rgb) if self.tracker is not None else self.fixed_point
        assert point is not None  # a tracker or a fixed point whenever focus is not given otherwise
        try:
            d = lens_maths.focus_depth_at(z, valid, point)
        except SettingsError:  # no surface under the point this frame: keep the last focus
            d = 1.0 / self._inv_focus if self._inv_focus else float(np.median(z[valid])) if valid.any() else 1.0
        # smooth in 1/distance so the focus does not hunt with depth noise
        inv = 1.0 / d
        if self._inv_focus is not None:
            a = self.dof.focus_smoothing
            inv = a * self._inv_focus + (1.0 - a) * inv
        self._inv_focus = inv
        return 1.0 / inv, point

    def render(self, frame, nearness, valid, z_of) -> dict[str, np.ndarray]:
        from depthstudio.render.dof import render_dof

        z = z_of()
        distance, point = self.focus_distance(frame, z, valid)
        self.focus_log.append((frame.time, distance, point))
        image = render_dof(frame.rgb, z, valid, self.intrinsics, self.dof.lens, preview=self.dof.preview,
                           focus_distance=distance)
        return {"effect": image}

    def close(self) -> None:
        pass


# -- parallax ------------------------------------------------------------------------------------------
@dataclass
class VideoParallaxSettings(Settings):
    """A camera move over the moving footage: one-way presets span the clip, periodic ones repeat
    every ``period`` seconds (``path.duration`` when ``period`` is None)."""

    section = "video_parallax"

    path: PathSettings = nested(PathSettings, preset="zoom-in")
    period: float | None = setting(None, label="Period", unit="s", minimum=0.0, min_exclusive=True, metavar="S",
                                   auto="the clip's length for one-way moves, 4 s for swings",
                                   help="seconds per move")

    @property
    def fit_clip(self) -> bool:
        return self.period is None


class ParallaxEffect:
    """The photo-parallax renderer applied to every frame: each frame's picture and stabilised depth
    become fresh mesh layers (re-uploaded to the same GL scene), seen from the camera path's pose
    at that frame's time."""

    def __init__(self, settings, paths: dict[str, Path], info, size: tuple[int, int]):
        from dataclasses import replace

        from depthstudio.render.gl import create_context
        from depthstudio.render.parallax import ParallaxSettings
        from depthstudio.render.scene import OffscreenRenderer, Scene

        self.settings = settings
        self.video: VideoParallaxSettings = (settings.parallax or VideoParallaxSettings()).validate()
        path = self.video.path
        from depthstudio.render.camera_path import find_preset

        clip_seconds = info.duration or ((info.frames or 1) / float(info.fps))
        if settings.max_frames is not None:
            clip_seconds = min(clip_seconds, settings.max_frames / float(info.fps))
        periodic = not str(path.preset).lower().endswith(".json") and find_preset(path.preset).periodic
        if self.video.period is not None:
            path = replace(path, duration=self.video.period)
        elif not periodic:
            # one move over the whole clip, ending on the last frame
            path = replace(path, duration=max(clip_seconds - 1.0 / float(info.fps), 1e-3),
                           loop=path.loop or "none")
        self.path_settings = path
        self.size = size
        self.intrinsics = _intrinsics(settings.camera, *size)
        self.options = ParallaxSettings(path=path, size=size, quality=settings.quality)
        self.ctx = create_context()
        self.scene = Scene(self.ctx)
        self.target = OffscreenRenderer(self.ctx, size, samples=self.options.samples)
        self._steady: float | None = None
        self._fill_memory: Any = None  # the previous frame's fill (render.fill.FillMemory), reused where the scene did not change
        self.faces: list[int] = []

    def writers(self, info, size):
        return {"effect": {"size": size, "quality": self.settings.quality}}

    def render(self, frame, nearness, valid, z_of) -> dict[str, np.ndarray]:
        from dataclasses import replace

        from depthstudio.render.camera_path import fit_intrinsics, steady_distance
        from depthstudio.render.parallax import prepare_layers

        z = z_of()
        if self._steady is None:
            # the plane that stays still is chosen once: a per-frame choice would wobble
            self._steady = self.path_settings.steady_depth or steady_distance(z, valid, self.path_settings.steady)
            self.options = replace(self.options, path=replace(self.path_settings, steady_depth=self._steady))
        prepared = prepare_layers(frame.rgb, z, valid, self.intrinsics, self.options, self.size,
                                  fill_memory=self._fill_memory)
        self._fill_memory = prepared.fill_memory
        self.scene.clear()
        for layer in prepared.layers:
            self.scene.add(layer)
        self.faces.append(self.scene.face_count)
        u = frame.time / prepared.path.duration
        pose = prepared.path.pose(float(u))
        out_k = fit_intrinsics(self.intrinsics, *self.size)
        return {"effect": self.target.render(self.scene, pose, out_k, self.options.background)}

    def close(self) -> None:
        self.target.release()
        self.scene.release()
        self.ctx.release()


# -- stereo ----------------------------------------------------------------------------------------------
#: Layouts a video can take (one picture per frame).
VIDEO_LAYOUTS = ("sbs", "sbs-half", "tb", "tb-half", "cross", "anaglyph", "vr180")


def check_video_stereo(stereo):
    """The stereo settings, validated for video (one picture per frame); SettingsError otherwise."""
    stereo.validate()
    if stereo.layout not in VIDEO_LAYOUTS:
        raise SettingsError(f"layout {stereo.layout!r} is for photos; a stereo video takes one of "
                            f"{', '.join(VIDEO_LAYOUTS)}")
    return stereo


class StereoEffect:
    """Two eyes per frame (render/stereo.py) composed into the layout's picture.

    The baseline and convergence are planned once, on the first frame, and kept for the clip (a
    per-frame choice would make the depth breathe); the frame's stabilised depth and picture become
    fresh layers in the same GL scene, seen from both eyes. A vr180 MP4 / MOV gets the spherical
    video boxes (st3d, sv3d) when it is complete (``finish``).
    """

    def __init__(self, settings, paths: dict[str, Path], info, size: tuple[int, int]):
        from dataclasses import replace

        from depthstudio.render.gl import create_context
        from depthstudio.render.scene import OffscreenRenderer, Scene
        from depthstudio.render.stereo import StereoSettings

        self.settings = settings
        stereo = check_video_stereo(getattr(settings, "stereo", None) or StereoSettings())
        target = paths.get("effect")
        if stereo.layout == "vr180" and target is not None and target.suffix.lower() not in (".mp4", ".mov", ".m4v"):
            raise SettingsError(f"{target}: VR180 video metadata goes into .mp4 or .mov files")
        self.stereo = replace(stereo, render=replace(stereo.render, size=size, quality=settings.quality))
        self.paths = paths
        self.size = size
        self.intrinsics = _intrinsics(settings.camera, *size)
        from depthstudio.render.camera_path import fit_intrinsics

        self.out_k = fit_intrinsics(self.intrinsics, *size)
        self.rig: Any = None  # a StereoRig, planned on the first frame
        self._fill_memory: Any = None  # the previous frame's fill (render.fill.FillMemory), reused where the scene did not change
        self.warnings: list[str] = []
        self.ctx = create_context()
        self.scene = Scene(self.ctx, mipmaps=False)  # the eyes see the layers at the photo's scale
        self.target = OffscreenRenderer(self.ctx, size, samples=self.stereo.render.samples)
        self._maps: Any = None

    def picture_size(self) -> tuple[int, int]:
        from depthstudio.render.stereo import composed_size, vr_eye_size

        return composed_size(self.stereo.layout, self.size, vr_eye_size(self.out_k, self.stereo.vr_size))

    def writers(self, info, size):
        return {"effect": {"size": self.picture_size(), "quality": self.settings.quality}}

    def render(self, frame, nearness, valid, z_of) -> dict[str, np.ndarray]:
        from depthstudio.render.parallax import prepare_layers
        from depthstudio.render.stereo import StereoTrack, compose, equirect_maps, plan_rig, to_equirect, vr_eye_size

        z = z_of()
        if self.rig is None:
            self.rig, self.warnings = plan_rig(self.stereo, z, valid, self.out_k)
            for line in self.warnings:
                import logging

                logging.getLogger(__name__).warning("%s", line)
        prepared = prepare_layers(frame.rgb, z, valid, self.intrinsics, self.stereo.render, self.size,
                                  path=StereoTrack(self.rig), fill_memory=self._fill_memory)
        self._fill_memory = prepared.fill_memory
        self.scene.clear()
        for layer in prepared.layers:
            self.scene.add(layer)
        background = self.stereo.render.background
        left = self.target.render(self.scene, self.rig.left, self.out_k, background)
        right = self.target.render(self.scene, self.rig.right, self.out_k, background)
        if self.stereo.layout == "vr180":
            if self._maps is None:
                self._maps = equirect_maps(self.out_k, vr_eye_size(self.out_k, self.stereo.vr_size))
            picture = np.concatenate([to_equirect(left, self._maps), to_equirect(right, self._maps)], axis=1)
        else:
            picture = compose(left, right, self.stereo.layout, self.stereo.anaglyph)
        return {"effect": picture}

    def finish(self, paths: dict[str, Path]) -> None:
        """After the file is complete: the spherical video metadata for vr180."""
        if self.stereo.layout == "vr180" and "effect" in paths:
            from depthstudio.render.vr180 import add_spherical_boxes

            add_spherical_boxes(paths["effect"])

    def close(self) -> None:
        self.target.release()
        self.scene.release()
        self.ctx.release()
