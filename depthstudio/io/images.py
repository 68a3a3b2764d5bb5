"""Loading photos the way real cameras and editors write them.

EXIF orientation is applied, every colour mode becomes 8-bit RGB (16-bit is scaled, CMYK and
palette are converted), alpha is kept as a validity mask, and a pixel limit turns
decompression bombs into a clear error.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from depthstudio.errors import InputError
from depthstudio.io.files import check_input, read_error

#: Largest image accepted, in pixels (a 16k x 12k panorama passes, a decompression bomb does not).
MAX_PIXELS = 200_000_000

IMAGE_SUFFIXES = {
    ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".heic", ".heif", ".avif",
}

_heif_registered = False


def _register_heif() -> None:
    global _heif_registered
    if _heif_registered:
        return
    _heif_registered = True
    try:  # optional plugin: HEIC/HEIF/AVIF straight from phones
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:
        pass


@dataclass
class Photo:
    """An RGB photo ready for the pipeline."""

    rgb: np.ndarray  # (H, W, 3) uint8
    path: Path | None = None
    alpha: np.ndarray | None = None  # (H, W) bool, True where the pixel is opaque enough to keep
    exif: dict = field(default_factory=dict)  # focal lengths etc., see camera_exif()

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def stem(self) -> str:
        return self.path.stem if self.path else "image"


def camera_exif(img: Image.Image) -> dict:
    """The EXIF fields that fix a camera's focal length, as plain floats (absent when missing)."""
    out: dict = {}
    try:
        exif = img.getexif()
        sub = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:  # broken EXIF blocks are common; they must not stop loading
        return out
    tags = {**dict(exif), **dict(sub)}

    def number(tag: int) -> float | None:
        raw = tags.get(tag)
        if raw is None:
            return None
        try:
            value = float(raw)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        return value if np.isfinite(value) else None

    for key, tag in (
        ("focal_length_mm", ExifTags.Base.FocalLength),
        ("focal_length_35mm", ExifTags.Base.FocalLengthIn35mmFilm),
        ("focal_plane_x_resolution", ExifTags.Base.FocalPlaneXResolution),
        ("focal_plane_y_resolution", ExifTags.Base.FocalPlaneYResolution),
    ):
        value = number(tag)
        if value is not None:
            out[key] = value
    unit = tags.get(ExifTags.Base.FocalPlaneResolutionUnit)
    if unit is not None:
        out["focal_plane_resolution_unit"] = int(unit)
    for key, tag in (("make", ExifTags.Base.Make), ("model", ExifTags.Base.Model)):
        if isinstance(tags.get(tag), str):
            out[key] = tags[tag].strip("\x00 ")
    return out


def to_rgb_and_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert any Pillow mode to (uint8 RGB, alpha mask or None)."""
    alpha = None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        alpha = np.asarray(rgba)[..., 3] >= 128
        if alpha.all():
            alpha = None
        return np.ascontiguousarray(np.asarray(rgba)[..., :3]), alpha
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        gray = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), None
    return np.ascontiguousarray(np.asarray(img.convert("RGB"))), None


def load_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> Photo:
    """Read a photo from disk. Raises InputError with a message a user can act on."""
    _register_heif()
    path = check_input(path, "file")
    old_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # we check ourselves, with a clearer message
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise InputError(
                        f"{path}: image is {w}x{h} ({w * h / 1e6:.0f} MP), over the limit of "
                        f"{max_pixels / 1e6:.0f} MP; downscale it first"
                    )
                if w < 2 or h < 2:
                    raise InputError(f"{path}: image is {w}x{h}; at least 2x2 pixels are needed")
                exif = camera_exif(img)
                img.load()
                img = ImageOps.exif_transpose(img)
                rgb, alpha = to_rgb_and_alpha(img)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image DepthStudio can open (JPEG, PNG, TIFF, WebP…), or the file is damaged") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, OSError) and (error := read_error(path, exc)) is not None:
            raise error from None
        raise InputError(f"{path}: cannot read image ({exc}); the file may be truncated or corrupt") from None
    except MemoryError:
        raise InputError(f"{path}: image too large to load into memory") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit
    return Photo(rgb=rgb, path=path, alpha=alpha, exif=exif)


def as_photo(image) -> Photo:
    """Accept a path, a Photo, a PIL image or an (H, W, 3|4) uint8 array."""
    if isinstance(image, Photo):
        return image
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if isinstance(image, Image.Image):
        rgb, alpha = to_rgb_and_alpha(ImageOps.exif_transpose(image))
        return Photo(rgb=rgb, alpha=alpha, exif=camera_exif(image))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InputError(f"expected an (H, W, 3) image array, got shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(array.astype(np.float64) * (255.0 if array.max(initial=0) <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    alpha = array[..., 3] >= 128 if array.shape[2] == 4 else None
    return Photo(rgb=np.ascontiguousarray(array[..., :3]), alpha=alpha)


def save_png(target, array: np.ndarray, compress_level: int = 1) -> Path:
    """Atomically save an 8-bit RGB/gray or a 16-bit gray (uint16) array as PNG.

    Level 1 compresses twice as fast as Pillow's default 6 for files about 2% larger: writing
    must keep up with inference in a batch.
    """
    from depthstudio.io.atomic import atomic_path

    with atomic_path(target) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG", compress_level=compress_level)
    return Path(target)


def find_inputs(items, suffixes=IMAGE_SUFFIXES) -> list[Path]:
    """Expand the command line's INPUT...: files, folders (recursive), and .txt lists of paths.

    Missing paths are kept so that the caller reports them as failed inputs.
    """
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes))
        elif path.suffix.lower() == ".txt" and path.is_file():
            base = path.parent
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    entry = Path(line)
                    found.extend(find_inputs([entry if entry.is_absolute() else base / entry], suffixes))
        else:
            found.append(path)
    seen, unique = set(), []
    for p in found:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """File stems, made unique by the parent folder's name when two inputs share one."""
    counts: dict[str, int] = {}
    for p in paths:
        counts[p.stem] = counts.get(p.stem, 0) + 1
    return {p: (f"{p.parent.name}_{p.stem}" if counts[p.stem] > 1 else p.stem) for p in paths}
