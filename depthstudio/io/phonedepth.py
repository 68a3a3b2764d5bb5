"""Depth that phones store inside the photo: the depth image of an iPhone portrait / LiDAR HEIC
(read through pillow-heif) and the GDepth depth map of a Google camera JPEG (XMP).

``read_embedded_depth(path)`` returns a DepthMap at the depth image's own resolution:
- HEIC: the first depth image libheif finds. Its representation (ISO/IEC 23002-3, as libheif
  reports it) decides the kind: uniform Z / inverse Z with d_min / d_max in metres -> metric;
  disparity -> disparity (larger = nearer). Without a range the values stay disparity.
- GDepth (XMP namespace http://ns.google.com/photos/1.0/depth/): GDepth:Data is a base64 PNG
  (or JPEG) of normalised depth d in [0, 1]; GDepth:Format RangeLinear gives depth = near + d (far -
  near), RangeInverse gives depth = far near / (far - d (far - near)); Near / Far in GDepth:Units
  (metres unless stated). The data often sits in the JPEG's extended XMP segments, which are joined.
"""
from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import numpy as np

from depthstudio.depthmap import DepthKind, DepthMap
from depthstudio.errors import InputError

GDEPTH_NS = "http://ns.google.com/photos/1.0/depth/"
_XMP_STANDARD = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_EXTENDED = b"http://ns.adobe.com/xmp/extension/\x00"
HEIF_SUFFIXES = (".heic", ".heif", ".hif")
#: libheif's depth representation types (heif_depth_representation_type).
UNIFORM_INVERSE_Z, UNIFORM_DISPARITY, UNIFORM_Z, NONUNIFORM_DISPARITY = 0, 1, 2, 3


def read_embedded_depth(path: str | os.PathLike) -> DepthMap:
    """The depth map stored inside a photo; InputError naming the file when there is none."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: photo not found")
    if path.suffix.lower() in HEIF_SUFFIXES:
        depth = _read_heif_depth(path)
    else:
        depth = _oriented(_read_gdepth(path), path)
    depth.meta["depth_file"] = f"{path} (embedded)"
    return depth


#: EXIF orientation -> the numpy steps that ImageOps.exif_transpose applies to the photo.
_ORIENT = {2: ("fliplr",), 3: ("rot180",), 4: ("flipud",), 5: ("transpose",), 6: ("rot270",), 7: ("transverse",), 8: ("rot90",)}


def _oriented(depth: DepthMap, path: Path) -> DepthMap:
    """The depth map turned as the photo is turned when loaded (EXIF orientation)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            orientation = int(img.getexif().get(0x0112, 1))
    except Exception:  # unreadable EXIF: as stored
        return depth
    steps = _ORIENT.get(orientation)
    if not steps:
        return depth
    v = depth.values
    v = {"fliplr": lambda a: a[:, ::-1], "rot180": lambda a: a[::-1, ::-1], "flipud": lambda a: a[::-1],
         "transpose": lambda a: a.T, "rot270": lambda a: np.rot90(a, -1), "transverse": lambda a: np.rot90(a, 2).T,
         "rot90": lambda a: np.rot90(a, 1)}[steps[0]](v)
    return DepthMap(np.ascontiguousarray(v), depth.kind, depth.model_id, None, depth.meta)


# ---- HEIC --------------------------------------------------------------------------------------
def _read_heif_depth(path: Path) -> DepthMap:
    try:
        import pillow_heif
    except ImportError:
        raise InputError(f"{path}: reading the depth inside HEIC photos needs pillow-heif: "
                         f"pip install 'depthstudio[heic]'") from None
    try:
        heif = pillow_heif.open_heif(str(path), convert_hdr_to_8bit=False)
        images = heif.info.get("depth_images") or []
    except Exception as exc:  # libheif's own error types
        raise InputError(f"{path}: cannot read HEIC ({str(exc).splitlines()[0][:160]})") from None
    if not images:
        raise InputError(f"{path}: this HEIC holds no depth image (portrait or LiDAR photos do); "
                         f"use a model, or --depth FILE")
    image = images[0]
    raw = np.asarray(image.to_pillow())
    if raw.ndim == 3:
        raw = raw[..., 0]
    top = float(np.iinfo(raw.dtype).max) if np.issubdtype(raw.dtype, np.integer) else 1.0
    values = raw.astype(np.float32) / np.float32(top)
    return heif_depth_values(values, image.info.get("metadata") or {}, source=str(path))


def heif_depth_values(v: np.ndarray, metadata: dict, source: str = "HEIC") -> DepthMap:
    """Normalised depth-image samples v in [0, 1] and libheif's representation info -> DepthMap."""
    kind_code = metadata.get("representation_type")
    d_min, d_max = _number(metadata.get("d_min")), _number(metadata.get("d_max"))
    span = (d_min, d_max) if d_min is not None and d_max is not None and d_max > d_min else None
    v = np.asarray(v, np.float32)
    kind: DepthKind
    # non-uniform or unstated: the samples as disparity, 0 stays "no surface"
    values, kind = v, "disparity"
    if span is not None:
        lo, hi = span
        if kind_code == UNIFORM_Z and lo > 0:
            values, kind = lo + v * np.float32(hi - lo), "metric"
        elif kind_code == UNIFORM_INVERSE_Z and lo > 0:
            inverse = np.float32(1.0 / hi) + v * np.float32(1.0 / lo - 1.0 / hi)
            values, kind = 1.0 / inverse, "metric"
        elif kind_code == UNIFORM_DISPARITY:
            values, kind = lo + v * np.float32(hi - lo), "disparity"
    depth = DepthMap(np.where(v > 0, values, 0).astype(np.float32), kind, model_id="embedded:heic")
    depth.meta["embedded"] = {"format": "heic", "representation_type": kind_code, "d_min": d_min, "d_max": d_max}
    return depth


# ---- GDepth JPEG -------------------------------------------------------------------------------
def jpeg_xmp(data: bytes) -> tuple[bytes, bytes]:
    """(standard XMP packet, extended XMP joined in offset order) of a JPEG's APP1 segments."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    standard, chunks = b"", {}
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end: no more metadata
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        body = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and body.startswith(_XMP_STANDARD):
            standard = body[len(_XMP_STANDARD) :]
        elif marker == 0xE1 and body.startswith(_XMP_EXTENDED):
            rest = body[len(_XMP_EXTENDED) :]
            offset = int.from_bytes(rest[36:40], "big")
            chunks[offset] = rest[40:]
        pos += 2 + length
    return standard, b"".join(chunks[k] for k in sorted(chunks))


def _gdepth_fields(xmp: str) -> dict:
    """GDepth properties, written either as attributes (GDepth:Near="...") or as elements."""
    prefixes = set(re.findall(r'xmlns:([\w-]+)\s*=\s*"' + re.escape(GDEPTH_NS) + '"', xmp)) or {"GDepth"}
    fields: dict[str, str] = {}
    for prefix in prefixes:
        for key, value in re.findall(rf"{re.escape(prefix)}:(\w+)\s*=\s*\"([^\"]*)\"", xmp):
            fields.setdefault(key, value)
        for key, value in re.findall(rf"<{re.escape(prefix)}:(\w+)>([^<]*)</{re.escape(prefix)}:\1>", xmp):
            fields.setdefault(key, value.strip())
    return fields


def _read_gdepth(path: Path) -> DepthMap:
    data = path.read_bytes()
    try:
        standard, extended = jpeg_xmp(data)
    except ValueError:
        raise InputError(f"{path}: no embedded depth (phone depth is read from HEIC portrait photos "
                         f"and Google camera JPEGs with GDepth XMP)") from None
    fields = _gdepth_fields(standard.decode("utf-8", "replace"))
    more = _gdepth_fields(extended.decode("utf-8", "replace"))
    fields.update({k: v for k, v in more.items() if k not in fields or k == "Data"})
    if "Data" not in fields:
        raise InputError(f"{path}: this JPEG holds no GDepth depth map (its XMP has no GDepth:Data); "
                         f"use a model, or --depth FILE")
    return gdepth_to_depth(fields, str(path))


def gdepth_to_depth(fields: dict, source: str = "GDepth") -> DepthMap:
    from PIL import Image, UnidentifiedImageError

    try:
        blob = base64.b64decode("".join(fields["Data"].split()), validate=False)
        with Image.open(io.BytesIO(blob)) as img:
            img.load()
            raw = np.asarray(img if img.mode in ("I;16", "I;16B", "I;16L", "I", "F", "L") else img.convert("L"))
    except (ValueError, UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{source}: the GDepth depth image cannot be decoded ({exc})") from None
    if raw.ndim == 3:
        raw = raw[..., 0]
    top = 65535.0 if raw.dtype in (np.uint16, np.int32) and raw.max() > 255 else 255.0
    if raw.dtype == np.float32:
        top = 1.0
    d = raw.astype(np.float32) / np.float32(top)
    near, far = _number(fields.get("Near")), _number(fields.get("Far"))
    fmt = fields.get("Format", "RangeInverse")
    units = fields.get("Units", "m").lower()
    to_metres = {"m": 1.0, "mm": 0.001, "cm": 0.01}.get(units)
    if near is None or far is None or not far > near > 0:
        raise InputError(f"{source}: GDepth needs Near and Far with 0 < Near < Far, got Near={fields.get('Near')}, "
                         f"Far={fields.get('Far')}")
    if to_metres is None or fmt not in ("RangeInverse", "RangeLinear"):
        raise InputError(f"{source}: unsupported GDepth Format {fmt!r} / Units {units!r} "
                         f"(RangeInverse or RangeLinear, in m, cm or mm)")
    near, far = near * to_metres, far * to_metres
    if fmt == "RangeLinear":
        z = near + d * np.float32(far - near)
    else:
        z = np.float32(far * near) / (np.float32(far) - d * np.float32(far - near))
    depth = DepthMap(z.astype(np.float32), "metric", model_id="embedded:gdepth")
    depth.meta["embedded"] = {"format": "gdepth", "range": fmt, "near": near, "far": far, "units": units}
    return depth


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None
