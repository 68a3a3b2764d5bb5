"""Coloured point clouds from depth, and Open3D clean-up where it is installed."""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from depthstudio.errors import InputError
from depthstudio.geometry.camera import Intrinsics
from depthstudio.geometry.unproject import pixel_rays
from depthstudio.settings import Settings, setting


@dataclass
class PointCloud:
    points: np.ndarray  # (N, 3) float32, camera frame (glTF)
    colors: np.ndarray | None = None  # (N, 3) uint8
    normals: np.ndarray | None = None  # (N, 3) float32
    intrinsics: Intrinsics | None = None

    def __len__(self) -> int:
        return int(len(self.points))

    def to_open3d(self):
        import open3d as o3d

        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(self.points.astype(np.float64)))
        if self.colors is not None:
            cloud.colors = o3d.utility.Vector3dVector(self.colors.astype(np.float64) / 255.0)
        if self.normals is not None:
            cloud.normals = o3d.utility.Vector3dVector(self.normals.astype(np.float64))
        return cloud

    @classmethod
    def from_open3d(cls, cloud, intrinsics: Intrinsics | None = None) -> PointCloud:
        colors = np.round(np.asarray(cloud.colors) * 255).astype(np.uint8) if cloud.has_colors() else None
        normals = np.asarray(cloud.normals, dtype=np.float32) if cloud.has_normals() else None
        return cls(np.asarray(cloud.points, dtype=np.float32), colors, normals, intrinsics)


def depth_points(z: np.ndarray, valid: np.ndarray, intrinsics: Intrinsics, colors: np.ndarray | None = None,
                 stride: int = 1) -> PointCloud:
    """One point per valid pixel (every ``stride``-th pixel in each direction), coloured by the photo."""
    z = np.asarray(z, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        valid = np.asarray(valid, dtype=bool) & (z > 0) & (z < np.inf)
    stride = max(1, int(stride))
    rx, ry = pixel_rays(intrinsics)
    if stride > 1:
        z, valid = z[::stride, ::stride], valid[::stride, ::stride]
        rx, ry = rx[::stride], ry[::stride]
        if colors is not None:
            colors = colors[::stride, ::stride]
    n = int(np.count_nonzero(valid))
    if n == 0:
        raise InputError("the depth map has no valid pixels (all 0, NaN, inf or masked): no points")
    points = np.empty((n, 3), np.float32)
    if n == valid.size:  # every pixel is a surface: straight broadcasting, no compaction
        grid = points.reshape(z.shape + (3,))
        np.multiply(z, rx[None, :], out=grid[..., 0])
        np.multiply(z, ry[:, None], out=grid[..., 1])
        np.negative(z, out=grid[..., 2])
        rgb = np.array(colors[..., :3], dtype=np.uint8, order="C").reshape(-1, 3) if colors is not None else None
        return PointCloud(points, rgb, None, intrinsics)
    zv = z[valid]
    np.multiply(np.broadcast_to(rx[None, :], z.shape)[valid], zv, out=points[:, 0])
    np.multiply(np.broadcast_to(ry[:, None], z.shape)[valid], zv, out=points[:, 1])
    np.negative(zv, out=points[:, 2])
    rgb = masked_pixels(np.asarray(colors, dtype=np.uint8)[..., :3], valid) if colors is not None else None
    return PointCloud(points, rgb, None, intrinsics)


def masked_pixels(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, C) pixels of an (H, W, C) image where ``mask``, in row-major order. Each pixel is moved as
    one C-byte item, several times faster than numpy's (H, W, C)[mask]."""
    image = np.ascontiguousarray(image)
    h, w, c = image.shape
    items = image.view(np.dtype((np.void, c * image.itemsize))).reshape(h, w)
    return items[mask].view(image.dtype).reshape(-1, c)


def voxel_downsample(cloud: PointCloud, voxel_size: float) -> PointCloud:
    """Open3D voxel-grid downsampling (colours and normals averaged per voxel)."""
    return PointCloud.from_open3d(cloud.to_open3d().voxel_down_sample(float(voxel_size)), cloud.intrinsics)


def remove_outliers(cloud: PointCloud, neighbours: int = 20, std_ratio: float = 2.0) -> PointCloud:
    """Open3D statistical outlier removal: drops points far from their neighbours."""
    kept, _ = cloud.to_open3d().remove_statistical_outlier(nb_neighbors=int(neighbours), std_ratio=float(std_ratio))
    return PointCloud.from_open3d(kept, cloud.intrinsics)


def estimate_normals(cloud: PointCloud, neighbours: int = 30) -> PointCloud:
    """Open3D normals from the nearest neighbours, oriented toward the camera at the origin."""
    import open3d as o3d

    pc = cloud.to_open3d()
    pc.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(int(neighbours)))
    pc.orient_normals_towards_camera_location(np.zeros(3))
    return PointCloud.from_open3d(pc, cloud.intrinsics)


@dataclass
class PointCleanup(Settings):
    """Optional Open3D clean-up of a point cloud, in this order."""

    section = "points"

    voxel_size: float | None = setting(None, label="Voxel size", unit="scene units", minimum=0.0,
                                       min_exclusive=True, metavar="S", auto="off", decimals=4,
                                       help="with --points: merge points per voxel of size S (Open3D)")
    remove_outliers: bool = setting(False, label="Remove outliers",
                                    help="with --points: statistical outlier removal of flying pixels (Open3D)")
    normals: bool = setting(False, label="Estimate normals", flag="--point-normals",
                            help="with --points: estimate normals (Open3D)")

    @property
    def active(self) -> bool:
        return bool(self.voxel_size) or self.remove_outliers or self.normals


def clean_points(cloud: PointCloud, cleanup: PointCleanup) -> PointCloud:
    """Apply ``cleanup`` (needs Open3D; a clear error when it is missing)."""
    if not cleanup.active:
        return cloud
    if not open3d_available():
        from depthstudio.errors import SettingsError

        raise SettingsError("point-cloud clean-up (voxel size, outliers, normals) needs Open3D: "
                            "pip install 'depthstudio[open3d]'")
    if cleanup.voxel_size:
        cloud = voxel_downsample(cloud, cleanup.voxel_size)
    if cleanup.remove_outliers:
        cloud = remove_outliers(cloud)
    if cleanup.normals:
        cloud = estimate_normals(cloud)
    return cloud


def open3d_available() -> bool:
    try:
        importlib.import_module("open3d")
    except Exception:  # ImportError, or a missing system library (libusb, libGL)
        return False
    return True
