"""Depth maps to distances: the near/far mapping of disparity, and bring-your-own depth files."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depthstudio.depthmap import KINDS, DepthMap, is_depth_kind
from depthstudio.errors import InputError, SettingsError
from depthstudio.io.files import check_input, read_error
from depthstudio.settings import Settings, setting

DEPTH_SUFFIXES = (".npy", ".png", ".exr", ".tif", ".tiff")
#: Reads an EXR's depth as an (H, W) float32 array where the OpenEXR package is missing: the Blender
#: add-on sets it to Blender's own image loader (Blender's Python has no OpenEXR).
exr_fallback: Callable[[Path], np.ndarray] | None = None
#: Integer (PNG / TIFF) metric depth is stored in millimetres, as phones, Kinect and RealSense write it.
INTEGER_METRIC_SCALE = 0.001


@dataclass
class DepthMapping(Settings):
    """How relative depth (disparity) becomes distance: normalised disparity 1 -> ``near``, 0 -> ``far``."""

    section = "mapping"

    near: float = setting(1.0, label="Near", unit="scene units", minimum=0.0, min_exclusive=True, metavar="N",
                          decimals=3, step=0.1, help="distance of the nearest disparity")
    far: float = setting(10.0, label="Far", unit="scene units", minimum=0.0, min_exclusive=True, metavar="F",
                         decimals=3, step=1.0, help="distance of the farthest disparity")

    def check(self) -> None:
        if not self.near < self.far:
            raise SettingsError(f"need near < far (--near, --far), got near={self.near:g}, far={self.far:g}")


def disparity_to_depth(d: np.ndarray, near: float, far: float) -> np.ndarray:
    """depth = 1 / (1/far + d * (1/near - 1/far)) for d normalised to [0, 1]."""
    inv_far = np.float32(1.0 / far)
    return (1.0 / (inv_far + d * np.float32(1.0 / near - 1.0 / far))).astype(np.float32, copy=False)


def to_depth(depth: DepthMap, mapping: DepthMapping | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(z, valid): z float32 HxW, positive distance along the optical axis; valid bool HxW.

    Disparity is normalised over its valid pixels to [0, 1] and mapped through near/far;
    metric depth passes through. Invalid pixels get z = 0.
    """
    valid = depth.valid
    z = np.zeros(depth.shape, np.float32)
    if not valid.any():
        return z, valid
    values = depth.values[valid]
    if depth.kind == "metric":
        z[valid] = values
    else:
        m = (mapping or DepthMapping()).validate()
        lo, hi = float(values.min()), float(values.max())
        d = (values - np.float32(lo)) * np.float32(1.0 / (hi - lo)) if hi > lo else np.ones_like(values)
        z[valid] = disparity_to_depth(d, m.near, m.far)
    return z, valid


def resize_depth(depth: DepthMap, size: tuple[int, int]) -> DepthMap:
    """Resize to ``size`` = (W, H): bilinear inside surfaces, and no surface wherever an invalid
    pixel would leak into the interpolation (so 0 / NaN never blend into real depth)."""
    from PIL import Image

    w, h = size
    if (depth.width, depth.height) == (w, h):
        return depth
    valid = depth.valid
    values = np.where(valid, depth.values, 0).astype(np.float32)
    out = np.asarray(Image.fromarray(values, mode="F").resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    weight = np.asarray(Image.fromarray(valid.astype(np.float32), mode="F").resize((w, h), Image.Resampling.BILINEAR))
    ok = weight > 0.999
    out = np.where(ok, out, 0).astype(np.float32)
    meta = dict(depth.meta)
    meta.setdefault("source_size", [depth.width, depth.height])
    return DepthMap(out, depth.kind, depth.model_id, None, meta, focal_px=depth.focal_for(w),
                    normals=_resize_vectors(depth.normals, (w, h), ok, unit=True),
                    points=_resize_vectors(depth.points, (w, h), ok))


def _resize_vectors(vectors: np.ndarray | None, size: tuple[int, int], ok: np.ndarray, unit: bool = False) -> np.ndarray | None:
    """(H, W, 3) per-pixel vectors resized bilinearly (normals renormalised); 0 where ``ok`` is False."""
    if vectors is None:
        return None
    from PIL import Image

    out = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(vectors[..., i], np.float32), mode="F")
                               .resize(size, Image.Resampling.BILINEAR), np.float32) for i in range(3)], -1)
    if unit:
        length = np.linalg.norm(out, axis=-1)
        ok = ok & (length > 1e-6)
        out /= np.where(ok, length, 1.0)[..., None]
    out[~ok] = 0
    return out


def _read_exr(path: Path) -> np.ndarray:
    try:
        import OpenEXR
    except ImportError:
        if exr_fallback is not None:
            return np.asarray(exr_fallback(path), dtype=np.float32)
        raise InputError(f"{path}: reading EXR needs the OpenEXR package (pip install OpenEXR)") from None
    try:
        with OpenEXR.File(str(path)) as f:
            channels = f.channels()
            for name in ("Z", "Y", "R", "V", "depth", "Depth", "Z.V", "RGB", "RGBA"):
                if name in channels:
                    pixels = np.asarray(channels[name].pixels)
                    break
            else:
                name = sorted(channels)[0]
                pixels = np.asarray(channels[name].pixels)
    except InputError:
        raise
    except Exception as exc:
        if isinstance(exc, OSError) and (error := read_error(path, exc)) is not None:
            raise error from None
        raise InputError(f"{path}: cannot read EXR ({exc})") from None
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    return pixels.astype(np.float32)


def _read_image_depth(path: Path, kind: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                values = np.asarray(img, dtype=np.float32)
                integer = mode != "F"
            elif mode in ("L", "P", "1"):
                values = np.asarray(img.convert("L"), dtype=np.float32)
                integer = True
            else:  # a colour image holding gray depth: use the first channel
                values = np.asarray(img.convert("RGB"), dtype=np.float32)[..., 0]
                integer = True
    except UnidentifiedImageError:
        raise InputError(f"{path}: not a depth image DepthStudio can read (PNG, TIFF, EXR, NPY) or the file is damaged") from None
    except (OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, OSError) and (error := read_error(path, exc)) is not None:
            raise error from None
        raise InputError(f"{path}: cannot read depth image ({exc}); the file may be truncated or corrupt") from None
    if integer and kind == "metric":
        values = values * np.float32(INTEGER_METRIC_SCALE)
    return values


def read_depth_file(path: str | os.PathLike, kind: str = "disparity", size: tuple[int, int] | None = None) -> DepthMap:
    """Load depth you bring: PNG (8/16-bit), EXR, TIFF or NPY; optionally resized to ``size`` = (W, H).

    ``kind`` says what the numbers mean: ``disparity`` (larger = nearer, any scale) or ``metric``
    (metres; integer PNG/TIFF are read as millimetres). 0, NaN and inf are "no surface".
    """
    path = Path(path)
    if not is_depth_kind(kind):
        raise SettingsError(f"depth kind must be one of {', '.join(KINDS)}, got {kind!r}")
    check_input(path, "depth file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            if isinstance(exc, OSError) and (error := read_error(path, exc)) is not None:
                raise error from None
            raise InputError(f"{path}: cannot read .npy depth ({exc})") from None
    elif suffix == ".exr":
        values = _read_exr(path)
    elif suffix in (".png", ".tif", ".tiff"):
        values = _read_image_depth(path, kind)
    else:
        raise InputError(f"{path}: unknown depth format; use PNG (8/16-bit), EXR, TIFF or NPY")
    values = np.asarray(values)
    if values.ndim == 3 and values.shape[-1] in (1, 3, 4):
        values = values[..., 0]
    if values.ndim != 2 or min(values.shape) < 2 or not np.issubdtype(values.dtype, np.number):
        raise InputError(f"{path}: depth must be a 2-D numeric array, got shape {values.shape} ({values.dtype})")
    depth = DepthMap(values.astype(np.float32), kind=kind, model_id=f"file:{path.name}")
    depth.meta["depth_file"] = str(path)
    from depthstudio.io.depthfiles import read_sidecar_focal

    depth.focal_px = read_sidecar_focal(path, depth.width)  # written by `depthstudio depth` for Depth Pro, MoGe-2
    if size is not None:
        depth = fit_to_photo(depth, size, str(path))
    return depth


def fit_to_photo(depth: DepthMap, size: tuple[int, int], name: str) -> DepthMap:
    """``depth`` resized to the photo's ``size`` = (W, H); InputError when the aspect ratios differ."""
    w, h = size
    if abs(depth.width / depth.height - w / h) > 0.01 * (w / h):
        raise InputError(
            f"{name}: depth is {depth.width}x{depth.height} but the image is {w}x{h} "
            "(a different aspect ratio); give the depth map of this image"
        )
    source = depth.meta.get("depth_file")
    depth = resize_depth(depth, (w, h))
    if source:
        depth.meta["depth_file"] = source
    return depth


def find_depth_file(image_path: str | os.PathLike, depth: str | os.PathLike) -> Path:
    """The depth file for an image: ``depth`` itself when it is a file, else the file in the
    folder ``depth`` whose stem is the image's stem (also ``<stem>_depth`` and ``<stem>.depth``)."""
    depth = Path(depth)
    if depth.is_file():
        return depth
    if not depth.is_dir():
        if os.path.lexists(depth):
            check_input(depth, "depth file")  # says why: symlink loop, permission denied, ...
        raise InputError(f"{depth}: depth file or folder not found")
    stem = Path(image_path).stem
    for name in (stem, f"{stem}_depth", f"{stem}.depth"):
        for suffix in DEPTH_SUFFIXES:
            for candidate in (depth / f"{name}{suffix}", depth / f"{name}{suffix.upper()}"):
                if candidate.is_file() and not _same_file(candidate, image_path):
                    return candidate
    raise InputError(f"{image_path}: no depth file named {stem}.(npy|png|exr|tif) in {depth}")


def _same_file(a: Path, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
