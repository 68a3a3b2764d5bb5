"""Photo + depth -> mesh or point cloud: the one call every front end (CLI, GUI, Blender) makes."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from depthstudio import __version__
from depthstudio.depthmap import DepthMap
from depthstudio.geometry.camera import CameraSettings, Intrinsics, resolve_intrinsics
from depthstudio.geometry.depth import DepthMapping, resize_depth, to_depth
from depthstudio.geometry.mesh import DepthMesh, MeshSettings, depth_mesh
from depthstudio.geometry.points import PointCloud, depth_points
from depthstudio.io.images import Photo, as_photo
from depthstudio.settings import SETTINGS_VERSION


def photo_intrinsics(photo: Photo, depth: DepthMap | None = None, camera: CameraSettings | None = None) -> Intrinsics:
    """Intrinsics for ``photo``: flags, then EXIF, then the model's focal estimate (``depth.focal_px``,
    scaled from the depth map's width to the photo's), then the 60-degree default."""
    model_focal = depth.focal_for(photo.width) if depth is not None else None
    return resolve_intrinsics(photo.width, photo.height, camera, photo.exif, model_focal)


def source_width(depth: DepthMap) -> int:
    """Width of the depth before it was resized to the photo: the network's output for a model,
    the file's own size for depth you bring, else the map's width."""
    for key in ("network_size", "source_size"):
        size = depth.meta.get(key)
        if size and int(size[0]) > 0:
            return int(size[0])
    return depth.width


def edge_cut_for(depth: DepthMap, width: int, edge_cut: float | None) -> float | None:
    """The edge-cut threshold per pixel of a ``width``-wide photo for ``edge_cut`` per pixel of the
    depth's own resolution. Upsampling spreads a depth step over several photo pixels, each with a
    fraction of the step; dividing by the upsampling factor keeps the test what it was at the
    depth's resolution (smooth slopes scale the same way, so they are still kept)."""
    if not edge_cut:
        return edge_cut
    return float(edge_cut) / max(1.0, width / source_width(depth))


def surface(photo: Photo, depth: DepthMap, mapping: DepthMapping | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(z, valid) at the photo's resolution; the photo's alpha masks pixels out."""
    if depth.shape != (photo.height, photo.width):
        depth = resize_depth(depth, (photo.width, photo.height))
    z, valid = to_depth(depth, mapping)
    if photo.alpha is not None:
        valid &= photo.alpha
        z[~valid] = 0
    return z, valid


def build_mesh(photo, depth: DepthMap, camera: CameraSettings | None = None, mapping: DepthMapping | None = None,
               mesh: MeshSettings | None = None) -> tuple[DepthMesh | PointCloud, Intrinsics, dict]:
    """Photo + depth -> (a textured DepthMesh, or a PointCloud when ``mesh.points``; the intrinsics;
    the metadata for ``<stem>.camera.json``)."""
    photo = as_photo(photo)
    mapping = (mapping or DepthMapping()).validate()
    mesh = (mesh or MeshSettings()).validate()
    intrinsics = photo_intrinsics(photo, depth, camera)
    z, valid = surface(photo, depth, mapping)
    if mesh.points:
        result: DepthMesh | PointCloud = depth_points(z, valid, intrinsics, photo.rgb, stride=mesh.stride)
    else:
        settings = replace(mesh, edge_cut=edge_cut_for(depth, photo.width, mesh.edge_cut))
        result = depth_mesh(z, valid, intrinsics, photo.rgb, settings)
    normals_from = "depth"
    if depth.normals is not None:
        normals_from = use_model_normals(result, depth, photo.width, photo.height, intrinsics)
    meta = camera_metadata(photo, depth, intrinsics, mapping, mesh, camera)
    meta["mesh"]["normals_from"] = normals_from if (not mesh.points or normals_from == "model") else None
    if not mesh.points:
        meta["mesh"]["edge_cut_per_photo_pixel"] = edge_cut_for(depth, photo.width, mesh.edge_cut)
    return result, intrinsics, meta


def splat_source(photo, depth: DepthMap, camera: CameraSettings | None = None, mapping: DepthMapping | None = None,
                 mesh: MeshSettings | None = None) -> DepthMesh:
    """The mesh whose vertices become Gaussian splats: a pixel grid (every ``stride``-th pixel) with as
    many vertices as the face budget allows faces / 2, so one Gaussian stands for one grid cell and
    neighbours tile the surface evenly (quadric decimation leaves big, sparse triangles on flat areas,
    which splats at the vertices would not cover)."""
    import math

    photo = as_photo(photo)
    mapping = (mapping or DepthMapping()).validate()
    mesh = (mesh or MeshSettings()).validate()
    intrinsics = photo_intrinsics(photo, depth, camera)
    z, valid = surface(photo, depth, mapping)
    stride = int(mesh.stride)
    if mesh.max_faces:
        n_valid = int(np.count_nonzero(valid))
        stride = max(stride, math.ceil(math.sqrt(2 * n_valid / mesh.max_faces)))
    settings = replace(mesh, max_faces=0, stride=stride, edge_cut=edge_cut_for(depth, photo.width, mesh.edge_cut))
    return depth_mesh(z, valid, intrinsics, photo.rgb, settings)


def use_model_normals(obj, depth: DepthMap, width: int, height: int, intrinsics: Intrinsics) -> str:
    """Replace the computed normals of a mesh or point cloud by the model's own (MoGe-2 predicts
    them), sampled at each vertex's pixel; returns "model" when they were used."""
    from depthstudio.geometry.unproject import project

    if depth.shape != (height, width):
        depth = resize_depth(depth, (width, height))
    normals = depth.normals
    if normals is None:
        return "depth"
    vertices = obj.vertices if isinstance(obj, DepthMesh) else obj.points
    if len(vertices) == 0:
        return "depth"
    pixels = project(vertices, intrinsics)
    cols = np.clip(np.floor(pixels[:, 0]).astype(np.intp), 0, width - 1)
    rows = np.clip(np.floor(pixels[:, 1]).astype(np.intp), 0, height - 1)
    sampled = normals[rows, cols]
    ok = np.einsum("ij,ij->i", sampled, sampled) > 0.25
    current = obj.normals
    if current is None:
        current = np.zeros_like(sampled)
        current[:, 2] = 1.0
    obj.normals = np.where(ok[:, None], sampled, current).astype(np.float32)
    return "model"


def camera_metadata(photo: Photo, depth: DepthMap, intrinsics: Intrinsics, mapping: DepthMapping,
                    mesh: MeshSettings, camera: CameraSettings | None = None) -> dict:
    """What ``<stem>.camera.json`` records: intrinsics and their source, depth kind and mapping,
    model id, image size, and the settings that made the geometry."""
    meta: dict[str, Any] = {
        "depthstudio": __version__,
        "image": {"path": str(photo.path) if photo.path else None, "width": photo.width, "height": photo.height},
        "intrinsics": intrinsics.to_dict(),
        "focal_source": intrinsics.source,
        "depth": {
            "kind": depth.kind,
            "model_id": depth.model_id,
            "units": "metres" if depth.kind == "metric" else "scene units (near/far mapping of disparity)",
            "mapping": mapping.to_dict() if depth.kind == "disparity" else None,
        },
        "mesh": mesh.to_dict(),
        "camera_settings": camera.to_dict() if camera else None,
        "frame": "camera frame, glTF convention: x right, y up, camera at the origin looking down -z",
        # the same block a settings file holds: `--settings <stem>.camera.json` reads it back
        "depthstudio_settings": SETTINGS_VERSION,
        "settings": {"camera": (camera or CameraSettings()).to_dict(), "mapping": mapping.to_dict(),
                     "mesh": mesh.to_dict()},
    }
    if depth.focal_px is not None:
        meta["depth"]["model_focal_px"] = depth.focal_for(photo.width)
    if depth.meta.get("depth_file"):
        meta["depth"]["file"] = str(depth.meta["depth_file"])
    return meta
