"""Pinhole intrinsics and where the focal length comes from.

Sources, in the order DESIGN.md fixes: explicit flags, EXIF (35 mm-equivalent focal length, else
focal length + focal-plane resolution), a model's own estimate, else 60 degrees horizontal FoV.
Pixel (col, row) has its centre at (col + 0.5, row + 0.5); the default principal point is (W/2, H/2).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from depthstudio.errors import SettingsError
from depthstudio.settings import Settings, setting

SOURCES = ("flags", "exif-35mm", "exif-sensor", "model", "default")
DEFAULT_HFOV_DEG = 60.0
#: Diagonal of a 36 x 24 mm frame: the 35 mm-equivalent focal length is defined on the diagonal (CIPA DC-008).
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
#: Horizontal FoV a plausible camera has; EXIF values outside it are treated as nonsense and ignored.
PLAUSIBLE_HFOV_DEG = (1.0, 150.0)
# EXIF FocalPlaneResolutionUnit -> millimetres per unit (2 = inch, 3 = cm, 4 = mm, 5 = micrometre).
_UNIT_MM = {1: 25.4, 2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}


def fov_to_focal(fov_deg: float, size: float) -> float:
    """Focal length in pixels that spans ``fov_deg`` across ``size`` pixels."""
    if not 0.0 < fov_deg < 180.0:
        raise SettingsError(f"field of view must be between 0 and 180 degrees, got {fov_deg}")
    return 0.5 * size / math.tan(math.radians(fov_deg) / 2.0)


def focal_to_fov(focal_px: float, size: float) -> float:
    """Field of view in degrees that ``size`` pixels span at a focal length of ``focal_px`` pixels."""
    if not focal_px > 0:
        raise SettingsError(f"focal length must be positive, got {focal_px}")
    return math.degrees(2.0 * math.atan(0.5 * size / focal_px))


@dataclass
class Intrinsics:
    """Pinhole camera in pixels, for an image of ``width`` x ``height``."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    source: str = "default"

    def __post_init__(self) -> None:
        self.fx, self.fy, self.cx, self.cy = (float(v) for v in (self.fx, self.fy, self.cx, self.cy))
        self.width, self.height = int(self.width), int(self.height)
        if not (np.isfinite([self.fx, self.fy]).all() and self.fx > 0 and self.fy > 0):
            raise SettingsError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")
        if not np.isfinite([self.cx, self.cy]).all():
            raise SettingsError(f"principal point must be finite, got ({self.cx}, {self.cy})")
        if self.width < 1 or self.height < 1:
            raise SettingsError(f"image size must be positive, got {self.width}x{self.height}")

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG, source: str = "default") -> Intrinsics:
        f = fov_to_focal(hfov_deg, width)
        return cls(f, f, width / 2.0, height / 2.0, width, height, source)

    @classmethod
    def from_focal_35mm(cls, width: int, height: int, focal_35mm: float, source: str = "flags") -> Intrinsics:
        """From a 35 mm-equivalent focal length (defined on the frame diagonal, as cameras write it)."""
        f = focal_35mm * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM
        return cls(f, f, width / 2.0, height / 2.0, width, height, source)

    @property
    def hfov_deg(self) -> float:
        return focal_to_fov(self.fx, self.width)

    @property
    def vfov_deg(self) -> float:
        return focal_to_fov(self.fy, self.height)

    def focal_mm(self, sensor_width_mm: float = 36.0) -> float:
        """Focal length in mm for a sensor ``sensor_width_mm`` wide (Blender's "sensor fit: horizontal")."""
        return self.fx * sensor_width_mm / self.width

    @property
    def focal_35mm(self) -> float:
        """35 mm-equivalent focal length (diagonal definition)."""
        return self.fx * FULL_FRAME_DIAGONAL_MM / math.hypot(self.width, self.height)

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera for the image resized to ``width`` x ``height``."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height, self.source)

    @property
    def matrix(self) -> np.ndarray:
        """3x3 K for pixel coordinates with centres at +0.5 (OpenCV convention, y down)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def principal_offset(self) -> tuple[float, float]:
        """Principal point offset from the image centre as a fraction of the width / height
        (x right, y up): what Blender's camera shift needs, with the larger side's fraction."""
        return ((self.cx - self.width / 2.0) / self.width, (self.height / 2.0 - self.cy) / self.height)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(hfov_deg=self.hfov_deg, vfov_deg=self.vfov_deg, focal_35mm=self.focal_35mm)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Intrinsics:
        width, height = int(data["width"]), int(data["height"])
        if "fx" in data:
            fx = float(data["fx"])
            fy = float(data.get("fy", fx))
        elif "hfov_deg" in data:
            fx = fy = fov_to_focal(float(data["hfov_deg"]), width)
        else:
            raise SettingsError("camera data needs fx (and fy) or hfov_deg")
        return cls(fx, fy, float(data.get("cx", width / 2.0)), float(data.get("cy", height / 2.0)),
                   width, height, str(data.get("source", "flags")))


@dataclass
class CameraSettings(Settings):
    """What the user asked for; anything left None is taken from EXIF / the model / the default."""

    section = "camera"

    fov_deg: float | None = setting(
        None, label="Field of view", unit="deg", minimum=0.0, maximum=180.0, min_exclusive=True,
        max_exclusive=True, flag="--fov", metavar="DEG", exclusive="focal", auto="EXIF, model or 60 deg",
        decimals=1, step=1.0, help="horizontal field of view")
    focal_mm: float | None = setting(
        None, label="Focal length (35 mm)", unit="mm", minimum=0.0, min_exclusive=True, metavar="MM",
        exclusive="focal", auto="EXIF, model or 60 deg", decimals=1, step=1.0,
        help="35 mm-equivalent focal length")
    fx: float | None = setting(
        None, label="fx", unit="px", minimum=0.0, min_exclusive=True, metavar="F", exclusive="focal",
        auto="EXIF, model or 60 deg", decimals=1, help="focal length in pixels (x)")
    fy: float | None = setting(
        None, label="fy", unit="px", minimum=0.0, min_exclusive=True, metavar="F", auto="fx",
        decimals=1, help="focal length in pixels (y)")
    cx: float | None = setting(None, label="Principal point x", unit="px", metavar="X", auto="W/2", decimals=1,
                               help="principal point x in pixels")
    cy: float | None = setting(None, label="Principal point y", unit="px", metavar="Y", auto="H/2", decimals=1,
                               help="principal point y in pixels")

    def check(self) -> None:
        if self.fy is not None and (self.fov_deg is not None or self.focal_mm is not None):
            flag = "--fov" if self.fov_deg is not None else "--focal-mm"
            raise SettingsError(f"{flag} and --fy cannot be used together: give --fx with --fy")


def _plausible(f_px: float, width: int) -> bool:
    if not (math.isfinite(f_px) and f_px > 0):
        return False
    lo, hi = PLAUSIBLE_HFOV_DEG
    return lo <= focal_to_fov(f_px, width) <= hi


def exif_focal_px(width: int, height: int, exif: dict | None) -> tuple[float, str] | None:
    """Focal length in pixels from EXIF and which rule gave it, or None when EXIF cannot say."""
    if not exif:
        return None
    f35 = _number(exif.get("focal_length_35mm"))
    if f35 is not None and f35 > 0:
        f_px = f35 * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM
        if _plausible(f_px, width):
            return f_px, "exif-35mm"
    f_mm = _number(exif.get("focal_length_mm"))
    xres = _number(exif.get("focal_plane_x_resolution"))
    unit = exif.get("focal_plane_resolution_unit", 2)  # the EXIF default unit is the inch
    try:
        mm_per_unit = _UNIT_MM.get(int(unit))
    except (TypeError, ValueError):
        mm_per_unit = None
    if f_mm and f_mm > 0 and xres and xres > 0 and mm_per_unit:
        # focal plane resolution is pixels per unit on the sensor at the camera's full width; an
        # image that was resized since gives an implausible FoV and is rejected below.
        f_px = f_mm * xres / mm_per_unit
        if _plausible(f_px, width):
            return f_px, "exif-sensor"
    return None


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def resolve_intrinsics(width: int, height: int, settings: CameraSettings | None = None, exif: dict | None = None,
                       model_focal_px: float | None = None) -> Intrinsics:
    """Intrinsics for a ``width`` x ``height`` image from the first source that knows the focal length."""
    s = (settings or CameraSettings()).validate()
    if s.fx is not None:  # one of fx / fy given: the other is the same
        fx, fy = s.fx, (s.fy if s.fy is not None else s.fx)
        source = "flags"
    elif s.fy is not None:
        fx = fy = s.fy
        source = "flags"
    elif s.fov_deg is not None:
        fx = fy = fov_to_focal(s.fov_deg, width)
        source = "flags"
    elif s.focal_mm is not None:
        fx = fy = Intrinsics.from_focal_35mm(width, height, s.focal_mm).fx
        source = "flags"
    else:
        found = exif_focal_px(width, height, exif)
        model_f = _number(model_focal_px)
        if found is not None:
            (fx, source), fy = found, found[0]
        elif model_f is not None and _plausible(model_f, width):
            fx = fy = model_f
            source = "model"
        else:
            fx = fy = fov_to_focal(DEFAULT_HFOV_DEG, width)
            source = "default"
    cx = s.cx if s.cx is not None else width / 2.0
    cy = s.cy if s.cy is not None else height / 2.0
    assert fx is not None and fy is not None
    return Intrinsics(fx, fy, cx, cy, width, height, source)
