"""Camera motion for parallax: presets as functions of time, keyframed paths, and the pinhole camera.

World = the photo's camera frame (glTF: x right, y up, looking down -z), so the identity pose with
the photo's intrinsics reproduces the photo. Travel is measured in units of the *steady depth* D,
the distance whose plane does not move on screen: every preset keeps it still with a lens shift
(an off-axis frustum, the way a view camera's shift works) instead of turning the camera, so the
whole plane stays put, not only its centre; the dolly zoom also scales the focal length.

Loops: ``none`` runs once (the last frame is the end of the move), ``pingpong`` goes out and back,
``cycle`` repeats a periodic move. Looping clips are seamless: the frame after the last is the first.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from depthstudio.errors import InputError, SettingsError
from depthstudio.geometry.camera import Intrinsics
from depthstudio.settings import Settings, setting

LOOPS = ("none", "pingpong", "cycle")


# -- easing -----------------------------------------------------------------------------------
def _smooth(u):
    return u * u * (3.0 - 2.0 * u)


EASINGS: dict[str, Callable[[float], float]] = {
    "linear": lambda u: u,
    "ease-in-out": lambda u: 0.5 - 0.5 * math.cos(math.pi * u),
    "ease-in": lambda u: 1.0 - math.cos(0.5 * math.pi * u),
    "ease-out": lambda u: math.sin(0.5 * math.pi * u),
    "smoothstep": _smooth,
}


# -- presets ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    """A motion ``offset(e) -> (x, y, z)`` for progress e in [0, 1], in units of amplitude x D."""

    offset: Callable[[float], tuple[float, float, float]]
    amplitude: float  # camera travel at intensity 1, as a fraction of the steady depth
    loop: str = "pingpong"
    easing: str = "ease-in-out"
    periodic: bool = False  # offset(0) == offset(1): can cycle
    dolly_zoom: bool = False  # scale the focal length so the steady plane keeps its size
    help: str = ""


PRESETS: dict[str, Preset] = {
    "zoom-in": Preset(lambda e: (0.0, 0.0, -e), 0.15, help="dolly towards the scene"),
    "zoom-out": Preset(lambda e: (0.0, 0.0, e), 0.15, help="dolly away from the scene"),
    "dolly-zoom": Preset(lambda e: (0.0, 0.0, e), 0.3, dolly_zoom=True,
                         help="vertigo: dolly out while zooming in; the steady plane keeps its size"),
    "swing": Preset(lambda e: (math.sin(2 * math.pi * e), 0.0, 0.0), 0.05, loop="cycle", easing="linear",
                    periodic=True, help="side to side"),
    "swing-vertical": Preset(lambda e: (0.0, math.sin(2 * math.pi * e), 0.0), 0.05, loop="cycle", easing="linear",
                             periodic=True, help="up and down"),
    "circle": Preset(lambda e: (math.sin(2 * math.pi * e), 1.0 - math.cos(2 * math.pi * e), 0.0), 0.04,
                     loop="cycle", easing="linear", periodic=True, help="orbit around the steady point"),
    "ken-burns": Preset(lambda e: (0.6 * e, 0.25 * e, -e), 0.12, help="slow pan and push in"),
}
ALIASES = {
    "dolly-in": "zoom-in", "dolly-out": "zoom-out", "vertigo": "dolly-zoom", "horizontal": "swing",
    "swing-horizontal": "swing", "vertical": "swing-vertical", "orbit": "circle", "kenburns": "ken-burns",
}


def preset_names() -> list[str]:
    return list(PRESETS)


def find_preset(name: str) -> Preset:
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in PRESETS:
        raise SettingsError(f"unknown parallax preset '{name}'; choose one of {', '.join(PRESETS)} "
                            f"or give a keyframe file (.json)")
    return PRESETS[key]


# -- the camera -------------------------------------------------------------------------------
@dataclass
class CameraPose:
    """Where the camera is, relative to the photo's camera (world frame, scene units)."""

    position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))  # camera-to-world
    zoom: float = 1.0  # focal length multiplier
    steady_depth: float | None = None  # the lens shift keeps the point on the axis at this depth still

    def view_matrix(self) -> np.ndarray:
        """4x4 world-to-camera."""
        r = np.asarray(self.rotation, np.float64)
        view = np.eye(4)
        view[:3, :3] = r.T
        view[:3, 3] = -r.T @ np.asarray(self.position, np.float64)
        return view

    def intrinsics(self, base: Intrinsics) -> Intrinsics:
        """The pinhole camera of this pose: ``base`` zoomed, with the lens shift that keeps the
        steady point still."""
        fx, fy = base.fx * self.zoom, base.fy * self.zoom
        cx, cy = base.cx, base.cy
        if self.steady_depth:
            # The steady point, in this camera's frame: shift the principal point onto it.
            p = self.rotation.T @ (np.array([0.0, 0.0, -self.steady_depth]) - self.position)
            if p[2] < 0:
                cx = base.cx - fx * p[0] / -p[2]
                cy = base.cy + fy * p[1] / -p[2]
        return Intrinsics(fx, fy, cx, cy, base.width, base.height, base.source)


def projection_matrix(k: Intrinsics, near: float, far: float) -> np.ndarray:
    """4x4 OpenGL projection for pinhole intrinsics (pixel centres at +0.5, y down in pixels)."""
    w, h = k.width, k.height
    m = np.zeros((4, 4))
    m[0, 0] = 2.0 * k.fx / w
    m[0, 2] = 1.0 - 2.0 * k.cx / w
    m[1, 1] = 2.0 * k.fy / h
    m[1, 2] = 2.0 * k.cy / h - 1.0
    m[2, 2] = -(far + near) / (far - near)
    m[2, 3] = -2.0 * far * near / (far - near)
    m[3, 2] = -1.0
    return m


def fit_intrinsics(photo: Intrinsics, width: int, height: int, fit: str = "cover") -> Intrinsics:
    """The photo's camera for an output of ``width`` x ``height``, centred: "cover" fills the output
    (cropping the photo's overhang), "contain" shows the whole photo (bands where the aspect differs)."""
    if fit not in ("cover", "contain"):
        raise ValueError(f"fit must be cover or contain, got {fit!r}")
    pick = max if fit == "cover" else min
    scale = pick(width / photo.width, height / photo.height)
    return Intrinsics(photo.fx * scale, photo.fy * scale,
                      photo.cx * scale - (photo.width * scale - width) / 2.0,
                      photo.cy * scale - (photo.height * scale - height) / 2.0, width, height, photo.source)


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation from degrees: yaw about +y (left), pitch about +x (up), roll about -z."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


# -- keyframes --------------------------------------------------------------------------------
@dataclass
class Keyframe:
    t: float  # 0..1 along the clip
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)  # units of the steady depth
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)  # yaw, pitch, roll in degrees
    zoom: float = 1.0



def _triple(values) -> tuple[float, float, float]:
    """Three floats from a JSON list (a keyframe's position or rotation)."""
    x, y, z = (float(v) for v in values)
    return x, y, z

@dataclass
class KeyframePath:
    """A custom path: keyframes interpolated smoothly (Catmull-Rom) or linearly.

    JSON::

        {"duration": 4, "loop": "none", "easing": "linear", "interpolation": "smooth",
         "dolly_zoom": false,
         "keyframes": [{"t": 0, "position": [0, 0, 0]},
                       {"t": 0.5, "position": [0.05, 0.02, -0.1], "zoom": 1.0, "rotation": [2, 0, 0]},
                       {"t": 1, "position": [0, 0, 0]}]}

    ``t`` runs from 0 to 1 over the clip; positions are in units of the steady depth (x right,
    y up, z towards the viewer: negative z moves into the scene); rotation is yaw, pitch, roll in
    degrees. Start at the origin to begin on the photo.
    """

    keyframes: list[Keyframe]
    duration: float | None = None
    loop: str = "none"
    easing: str = "linear"
    interpolation: str = "smooth"
    dolly_zoom: bool = False

    @classmethod
    def load(cls, path: str | os.PathLike) -> KeyframePath:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: keyframe file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: not a readable JSON keyframe file ({exc})") from None
        try:
            return cls.from_dict(data)
        except SettingsError as exc:
            raise InputError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: dict) -> KeyframePath:
        if not isinstance(data, dict) or not isinstance(data.get("keyframes"), list) or not data["keyframes"]:
            raise SettingsError('a keyframe path needs a non-empty "keyframes" list')
        frames = []
        for i, item in enumerate(data["keyframes"]):
            try:
                t = float(item["t"])
                position = [float(v) for v in item.get("position", (0, 0, 0))]
                rotation = [float(v) for v in item.get("rotation", (0, 0, 0))]
                zoom = float(item.get("zoom", 1.0))
            except (KeyError, TypeError, ValueError):
                raise SettingsError(f'keyframe {i} needs "t" (0..1) and numeric "position" [x, y, z], '
                                    f'"rotation" [yaw, pitch, roll], "zoom"') from None
            if len(position) != 3 or len(rotation) != 3 or not zoom > 0 or not 0 <= t <= 1:
                raise SettingsError(f"keyframe {i}: t must be in [0, 1], position and rotation need 3 numbers, zoom > 0")
            frames.append(Keyframe(t=t, position=(position[0], position[1], position[2]),
                                   rotation=(rotation[0], rotation[1], rotation[2]), zoom=zoom))
        frames.sort(key=lambda k: k.t)
        path = cls(frames, duration=data.get("duration"), loop=str(data.get("loop", "none")),
                   easing=str(data.get("easing", "linear")), interpolation=str(data.get("interpolation", "smooth")),
                   dolly_zoom=bool(data.get("dolly_zoom", False)))
        if path.loop not in LOOPS:
            raise SettingsError(f"loop must be one of {', '.join(LOOPS)}, got '{path.loop}'")
        if path.easing not in EASINGS:
            raise SettingsError(f"easing must be one of {', '.join(EASINGS)}, got '{path.easing}'")
        if path.interpolation not in ("smooth", "linear"):
            raise SettingsError(f"interpolation must be 'smooth' or 'linear', got '{path.interpolation}'")
        if path.duration is not None and not (float(path.duration) > 0):
            raise SettingsError(f"duration must be positive, got {path.duration}")
        return path

    def sample(self, e: float) -> tuple[np.ndarray, np.ndarray, float]:
        """(position, rotation degrees, zoom) at progress e in [0, 1]."""
        ts = np.array([k.t for k in self.keyframes])
        values = np.array([[*k.position, *k.rotation, k.zoom] for k in self.keyframes], np.float64)
        if len(ts) == 1 or e <= ts[0]:
            v = values[0]
        elif e >= ts[-1]:
            v = values[-1]
        else:
            i = int(np.searchsorted(ts, e, side="right") - 1)
            span = ts[i + 1] - ts[i]
            s = (e - ts[i]) / span if span > 0 else 1.0
            if self.interpolation == "linear":
                v = values[i] + s * (values[i + 1] - values[i])
            else:  # Catmull-Rom through the keyframes, end tangents from the end segments
                p0 = values[max(i - 1, 0)]
                p1, p2 = values[i], values[i + 1]
                p3 = values[min(i + 2, len(values) - 1)]
                s2, s3 = s * s, s * s * s
                v = 0.5 * (2 * p1 + (p2 - p0) * s + (2 * p0 - 5 * p1 + 4 * p2 - p3) * s2 + (3 * p1 - p0 - 3 * p2 + p3) * s3)
        return v[:3], v[3:6], float(v[6])


# -- the path ---------------------------------------------------------------------------------
@dataclass
class PathSettings(Settings):
    """What moves the camera. ``preset`` is a name from PRESETS or a keyframe .json path."""

    section = "path"

    preset: str = setting("circle", label="Camera move", metavar="P",
                          help=f"camera move: {', '.join(PRESETS)} or a keyframe .json")
    duration: float = setting(4.0, label="Duration", unit="s", minimum=0.0, maximum=3600.0, min_exclusive=True,
                              metavar="S", decimals=1, step=0.5, help="clip length in seconds")
    intensity: float = setting(1.0, label="Intensity", minimum=0.0, maximum=20.0, metavar="X", decimals=2,
                               step=0.1, help="scale of the camera travel")
    loop: str | None = setting(None, label="Loop", choices=LOOPS, auto="the preset's",
                               help="none, pingpong (out and back) or cycle")
    easing: str | None = setting(None, label="Easing", choices=tuple(EASINGS), auto="the preset's", help="time curve")
    steady: float = setting(0.5, label="Steady point", minimum=0.0, maximum=1.0, metavar="F", decimals=2, step=0.05,
                            help="which depth stays still: 0 = the far end of the scene, 1 = the near end")
    steady_depth: float | None = setting(None, label="Steady distance", unit="scene units", minimum=0.0,
                                         min_exclusive=True, metavar="D", auto="from steady point", decimals=2,
                                         help="or the distance that stays still, in scene units / metres")

    def check(self) -> None:
        if not str(self.preset).lower().endswith(".json"):
            find_preset(self.preset)


def steady_distance(z: np.ndarray, valid: np.ndarray, steady: float = 0.5) -> float:
    """The distance that stays still: ``steady`` of the way from far (0) to near (1) in inverse
    depth, between robust (2nd / 98th percentile) ends of the scene."""
    values = z[valid] if valid is not None else z[z > 0]
    if values.size == 0:
        return 1.0
    if values.size > 200_000:
        values = values[:: values.size // 200_000]
    near, far = np.percentile(values, [2.0, 98.0])
    inv = 1.0 / far + steady * (1.0 / near - 1.0 / far)
    return float(1.0 / inv)


class CameraPath:
    """Poses along a preset or keyframe path for a scene whose steady plane is at ``steady_depth``."""

    def __init__(self, settings: PathSettings, steady_depth: float):
        self.settings = settings.validate()
        self.steady_depth = float(settings.steady_depth or steady_depth)
        if not self.steady_depth > 0:
            raise SettingsError(f"steady depth must be positive, got {self.steady_depth}")
        name = str(settings.preset)
        self.keyframes: KeyframePath | None = None
        self.preset: Preset | None = None
        if name.lower().endswith(".json"):
            keyframes = self.keyframes = KeyframePath.load(name)
            self.loop = settings.loop or keyframes.loop
            self.easing = settings.easing or keyframes.easing
            self.periodic = self._keyframes_periodic(keyframes)
        else:
            preset = self.preset = find_preset(name)
            self.loop = settings.loop or preset.loop
            self.easing = settings.easing or preset.easing
            self.periodic = preset.periodic
        if self.loop == "cycle" and not self.periodic:
            self.loop = "pingpong"  # a one-way move cannot cycle without a jump: go out and back

    @staticmethod
    def _keyframes_periodic(keyframes: KeyframePath) -> bool:
        a, b = keyframes.keyframes[0], keyframes.keyframes[-1]
        return np.allclose([*a.position, *a.rotation, a.zoom], [*b.position, *b.rotation, b.zoom])

    @property
    def duration(self) -> float:
        if self.keyframes is not None and self.keyframes.duration and self.settings.duration == PathSettings.duration:
            return float(self.keyframes.duration)
        return float(self.settings.duration)

    def frame_count(self, fps: float) -> int:
        return max(1, int(round(self.duration * fps)))

    def progress(self, u: float) -> float:
        """Clip time u in [0, 1] (0 = first frame; 1 = one period later when looping) -> move progress."""
        if self.loop == "pingpong":
            u = 1.0 - abs(1.0 - 2.0 * (u % 1.0))
        elif self.loop == "cycle":
            u = u % 1.0
        return EASINGS[self.easing](min(max(u, 0.0), 1.0))

    def frame_times(self, n: int) -> np.ndarray:
        """u for each of n frames: looping clips stop one step short of the start (seamless)."""
        if self.loop == "none":
            return np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
        return np.arange(n) / float(n)

    def pose(self, u: float) -> CameraPose:
        e = self.progress(u)
        d = self.steady_depth
        if self.keyframes is not None:
            position, euler, zoom = self.keyframes.sample(e)
            position = position * d
            rotation = rotation_from_euler(*euler)
            dolly = self.keyframes.dolly_zoom
        else:
            preset = self.preset
            assert preset is not None  # a path is either keyframes or a preset
            amp = preset.amplitude * self.settings.intensity
            position = np.asarray(preset.offset(e), np.float64) * amp * d
            rotation, zoom, dolly = np.eye(3), 1.0, preset.dolly_zoom
        if dolly:  # the steady plane keeps its size: focal grows with the distance to it
            zoom *= (d + position[2]) / d
        return CameraPose(position=position, rotation=rotation, zoom=zoom, steady_depth=d)

    def poses(self, fps: float):
        n = self.frame_count(fps)
        for u in self.frame_times(n):
            yield self.pose(float(u))

    def max_travel(self, samples: int = 64) -> float:
        """Largest camera displacement along the path (scene units): sizes the revealed-area fill."""
        us = np.linspace(0.0, 1.0, samples)
        return float(max(np.linalg.norm(self.pose(float(u)).position) for u in us))
