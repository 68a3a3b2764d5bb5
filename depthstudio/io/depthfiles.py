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


def write_depth(depth: DepthMap, out_dir: Path, stem: str, exr: bool = False, color: bool = False) -> list[Path]:
    """Write every requested file of ``depthstudio depth`` for one image; each write is atomic."""
    npy, png, *extra = depth_outputs(out_dir, stem, exr, color)
    written = [depth.save_npy(npy), save_png(png, depth.to_png16())]
    for path in extra:
        if path.suffix == ".exr":
            written.append(write_exr(path, np.where(depth.valid, depth.values, 0)))
        else:
            written.append(save_png(path, colorize(depth.normalized(), depth.valid)))
    return written
