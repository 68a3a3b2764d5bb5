"""Flags shared by the commands that turn photos into geometry or effects (mesh, parallax, dof, video).

    add_model_flags(p); add_camera_flags(p); add_depth_flags(p)
    camera, mapping = settings_from_args(args)
    source = DepthSource.from_args(args); depth = source.depth_for(photo)
"""
from __future__ import annotations

import argparse
from pathlib import Path

from depthstudio.depthmap import KINDS, DepthMap
from depthstudio.errors import SettingsError
from depthstudio.geometry.camera import CameraSettings
from depthstudio.geometry.depth import DepthMapping, find_depth_file, read_depth_file
from depthstudio.geometry.mesh import DEFAULT_EDGE_CUT, MeshSettings
from depthstudio.io.images import Photo, as_photo


def size_arg(text: str, minimum: int = 1) -> tuple[int, int]:
    """argparse type for "WxH" sizes (``functools.partial(size_arg, minimum=...)`` for a larger floor)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, got {text!r}") from None
    if w < minimum or h < minimum:
        raise argparse.ArgumentTypeError(f"size must be at least {minimum}x{minimum}, got {text!r}")
    return w, h


def point_arg(text: str) -> tuple[float, float]:
    """argparse type for "X,Y" points: pixels, or 0..1 fractions of the picture when both lie in [0, 1]."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"point must look like X,Y (pixels or 0..1 fractions), got {text!r}") from None
    return x, y


def add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default=None, metavar="M",
                   help="catalogue name (depthstudio models list), a local .onnx file or a transformers folder "
                        "(default: da2-small)")
    g.add_argument("--backend", default="auto", choices=("auto", "onnx", "torch"), help="inference backend")
    g.add_argument("--input-size", type=int, default=518, metavar="N",
                   help="shorter side of the network input, a multiple of 14 (default 518)")


def add_camera_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("camera (default: EXIF, else 60 degrees horizontal)")
    g.add_argument("--fov", type=float, default=None, metavar="DEG", help="horizontal field of view in degrees")
    g.add_argument("--focal-mm", type=float, default=None, metavar="MM", help="35 mm-equivalent focal length")
    g.add_argument("--fx", type=float, default=None, metavar="F", help="focal length in pixels (x)")
    g.add_argument("--fy", type=float, default=None, metavar="F", help="focal length in pixels (y; default fx)")
    g.add_argument("--cx", type=float, default=None, metavar="X", help="principal point x in pixels (default W/2)")
    g.add_argument("--cy", type=float, default=None, metavar="Y", help="principal point y in pixels (default H/2)")


def add_depth_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("depth")
    g.add_argument("--depth", type=Path, default=None, metavar="FILE|DIR",
                   help="bring your own depth (PNG 8/16-bit, EXR, TIFF, NPY); a folder pairs files by stem. "
                        "No model runs.")
    g.add_argument("--depth-kind", choices=KINDS, default="disparity",
                   help="what --depth holds: disparity (larger = nearer) or metric (metres; integer PNG/TIFF "
                        "in millimetres)")
    g.add_argument("--near", type=float, default=DepthMapping.near, metavar="N",
                   help=f"distance of the nearest disparity (default {DepthMapping.near})")
    g.add_argument("--far", type=float, default=DepthMapping.far, metavar="F",
                   help=f"distance of the farthest disparity (default {DepthMapping.far})")


def add_mesh_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("mesh")
    g.add_argument("--edge-cut", type=float, default=DEFAULT_EDGE_CUT, metavar="R",
                   help=f"cut edges whose depths differ by more than this relative amount, as |ln(z1/z2)| "
                        f"(default {DEFAULT_EDGE_CUT}; 0 keeps every edge)")
    g.add_argument("--max-faces", type=int, default=None, metavar="N", help="decimate to at most N faces")
    g.add_argument("--stride", type=int, default=1, metavar="S", help="use every S-th pixel (default 1)")
    g.add_argument("--points", action="store_true", help="a point cloud instead of a mesh")
    g.add_argument("--voxel-size", type=float, default=None, metavar="S",
                   help="with --points: merge points per voxel of size S (Open3D)")
    g.add_argument("--remove-outliers", action="store_true",
                   help="with --points: statistical outlier removal of flying pixels (Open3D)")
    g.add_argument("--point-normals", action="store_true", help="with --points: estimate normals (Open3D)")


def settings_from_args(args) -> tuple[CameraSettings, DepthMapping]:
    camera = CameraSettings(
        fov_deg=getattr(args, "fov", None), focal_mm=getattr(args, "focal_mm", None),
        fx=getattr(args, "fx", None), fy=getattr(args, "fy", None),
        cx=getattr(args, "cx", None), cy=getattr(args, "cy", None),
    ).validate()
    mapping = DepthMapping(near=getattr(args, "near", DepthMapping.near), far=getattr(args, "far", DepthMapping.far))
    return camera, mapping.validate()


def mesh_settings_from_args(args) -> MeshSettings:
    return MeshSettings(edge_cut=getattr(args, "edge_cut", DEFAULT_EDGE_CUT), max_faces=getattr(args, "max_faces", None),
                        stride=getattr(args, "stride", 1), points=getattr(args, "points", False)).validate()


def point_cleanup_from_args(args):
    from depthstudio.geometry.points import PointCleanup

    voxel = getattr(args, "voxel_size", None)
    if voxel is not None and not voxel > 0:
        raise SettingsError(f"--voxel-size must be positive, got {voxel}")
    return PointCleanup(voxel, getattr(args, "remove_outliers", False), getattr(args, "point_normals", False))


class DepthSource:
    """Where depth comes from: files the user brings (``--depth``), else the model, loaded once."""

    def __init__(self, depth: Path | None = None, depth_kind: str = "disparity", model: str | None = None,
                 backend: str = "auto", input_size: int = 518):
        if depth_kind not in KINDS:
            raise SettingsError(f"--depth-kind must be one of {', '.join(KINDS)}")
        self.depth, self.depth_kind = (Path(depth) if depth else None), depth_kind
        self.model, self.backend, self.input_size = model, backend, input_size
        self._estimator = None

    @classmethod
    def from_args(cls, args) -> "DepthSource":
        return cls(getattr(args, "depth", None), getattr(args, "depth_kind", "disparity"), getattr(args, "model", None),
                   getattr(args, "backend", "auto"), getattr(args, "input_size", 518))

    def __getstate__(self):  # the loaded model stays in its process (Ray actors load their own)
        return {**self.__dict__, "_estimator": None}

    @property
    def uses_model(self) -> bool:
        return self.depth is None

    def estimator(self):
        if self._estimator is None:
            from depthstudio.models.estimator import load_estimator

            self._estimator = load_estimator(self.model, self.backend, self.input_size)
        return self._estimator

    def depth_file_for(self, image_path) -> Path:
        return find_depth_file(image_path, self.depth)

    def depth_for(self, photo: Photo | str | Path) -> DepthMap:
        """The DepthMap for one photo, at the photo's resolution."""
        photo = as_photo(photo)
        if self.depth is not None:
            path = self.depth_file_for(photo.path if photo.path else "image")
            return read_depth_file(path, self.depth_kind, size=(photo.width, photo.height))
        return self.estimator().predict(photo)
