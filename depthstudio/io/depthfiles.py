"""Writing depth maps: raw float32 NPY, 16-bit PNG (near = bright), EXR, colour-mapped preview."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depthstudio.depthmap import DepthMap
from depthstudio.errors import OutputError
from depthstudio.io.atomic import atomic_path, write_error
from depthstudio.io.images import save_png
from depthstudio.settings import Settings, setting


@dataclass
class DepthOutputSettings(Settings):
    """Which files ``depthstudio depth`` writes besides ``<stem>_depth.npy`` and ``<stem>_depth.png``."""

    section = "depth_output"

    exr: bool = setting(False, label="EXR", help="also write <stem>_depth.exr (float32)")
    color: bool = setting(False, label="Colour preview", help="also write a colour-mapped preview <stem>_depth_color.png")


def write_exr(target: str | Path, values: np.ndarray, channel: str = "Z") -> Path:
    """Single-channel float32 EXR (ZIP compressed); the channel is "Z", as depth passes are."""
    try:
        import OpenEXR
    except ImportError:
        raise OutputError("writing EXR needs the OpenEXR package: pip install 'depthstudio[exr]'") from None
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with atomic_path(target) as tmp:
        try:
            with OpenEXR.File(header, {channel: np.ascontiguousarray(values, np.float32)}) as f:
                f.write(str(tmp))
        except (RuntimeError, OSError) as exc:  # OpenEXR: RuntimeError("Failed to write pixel data")
            raise write_error(target, exc) from None
    return Path(target)


def colorize(normalized: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """[0, 1] (near = 1) -> uint8 RGB with the perceptually uniform 'inferno' map; invalid = black."""
    try:
        import cv2
    except ImportError:
        raise OutputError("colour-mapped previews need OpenCV: pip install 'depthstudio[render]'") from None
    gray = np.clip(normalized * 255.0 + 0.5, 0, 255).astype(np.uint8)
    bgr = cv2.applyColorMap(gray, cv2.COLORMAP_INFERNO)
    rgb = bgr[..., ::-1].copy()
    if valid is not None:
        rgb[~valid] = 0
    return rgb


def depth_outputs(out_dir: Path, stem: str, exr: bool = False, color: bool = False) -> list[Path]:
    names = [f"{stem}_depth.npy", f"{stem}_depth.png"]
    if exr:
        names.append(f"{stem}_depth.exr")
    if color:
        names.append(f"{stem}_depth_color.png")
    return [out_dir / n for n in names]


def sidecar_path(depth_file: Path) -> Path:
    """``<stem>_depth.json`` beside ``<stem>_depth.npy``: what the model knew besides depth."""
    return Path(depth_file).with_suffix(".json")


def write_sidecar(depth: DepthMap, path: Path) -> Path:
    """The model's focal estimate (and kind, model id, size) as JSON, so that meshes made later from
    the depth file, and the Blender add-on's external route, keep the camera source "model"."""
    import json

    from depthstudio.io.atomic import atomic_write

    data = {"model_id": depth.model_id, "kind": depth.kind, "width": depth.width, "height": depth.height,
            "focal_px": depth.focal_px}
    if depth.focal_px:
        import math

        data["hfov_deg"] = math.degrees(2 * math.atan(0.5 * depth.width / depth.focal_px))
    with atomic_write(path, "w") as handle:
        json.dump(data, handle, indent=2)
    return Path(path)


def read_sidecar(depth_file: Path) -> dict | None:
    """The JSON written beside a depth file by write_sidecar, or None."""
    import json

    path = sidecar_path(depth_file)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_sidecar_focal(depth_file: Path, width: int) -> float | None:
    """The focal estimate stored beside a depth file, in pixels of a ``width``-wide map (None if absent)."""
    data = read_sidecar(depth_file)
    if data is None:
        return None
    try:
        focal, source_width = float(data["focal_px"]), float(data["width"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (np.isfinite(focal) and focal > 0 and source_width > 0):
        return None
    return focal * width / source_width


def write_depth(depth: DepthMap, out_dir: Path, stem: str, exr: bool = False, color: bool = False) -> list[Path]:
    """Write every requested file of ``depthstudio depth`` for one image; each write is atomic.
    A model that estimates the focal length also gets ``<stem>_depth.json`` (see write_sidecar)."""
    npy, png, *extra = depth_outputs(out_dir, stem, exr, color)
    written = [depth.save_npy(npy), save_png(png, depth.to_png16())]
    if depth.focal_px is not None:
        written.append(write_sidecar(depth, sidecar_path(npy)))
    for path in extra:
        if path.suffix == ".exr":
            written.append(write_exr(path, np.where(depth.valid, depth.values, 0)))
        else:
            written.append(save_png(path, colorize(depth.normalized(), depth.valid)))
    return written
