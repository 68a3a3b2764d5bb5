"""Geometry: camera intrinsics, depth mapping, unprojection, edge-cut meshes, point clouds, export.

Pure numpy at import time; trimesh, fast-simplification, open3d and pxr are imported by the
functions that need them.
"""
from depthstudio.geometry.camera import CameraSettings, Intrinsics, resolve_intrinsics
from depthstudio.geometry.depth import DepthMapping, read_depth_file, to_depth
from depthstudio.geometry.mesh import DepthMesh, MeshSettings, cut_edge_mask, cut_edges, depth_mesh
from depthstudio.geometry.points import PointCloud, depth_points
from depthstudio.geometry.unproject import project, unproject

__all__ = [
    "CameraSettings", "Intrinsics", "resolve_intrinsics", "DepthMapping", "read_depth_file", "to_depth",
    "DepthMesh", "MeshSettings", "cut_edge_mask", "cut_edges", "depth_mesh", "PointCloud", "depth_points",
    "project", "unproject", "export", "build_mesh",
]


def export(*args, **kwargs):
    from depthstudio.geometry.export import export as _export

    return _export(*args, **kwargs)


def build_mesh(*args, **kwargs):
    from depthstudio.geometry.pipeline import build_mesh as _build

    return _build(*args, **kwargs)
