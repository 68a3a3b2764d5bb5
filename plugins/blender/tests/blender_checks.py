"""Helpers for checks that run INSIDE Blender (the bpy module): install the extension, run the
operator, inspect what it made. Scripts in this folder import it; pytest never does."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import bpy
import numpy as np

ADDON_DIR = Path(__file__).resolve().parents[1]
MODULE = "bl_ext.user_default.depthstudio"


def install_from_folder(src: Path = ADDON_DIR) -> str:
    """Copy the extension folder into the user repository (as a developer would link it) and enable it."""
    repo_dir = Path(bpy.utils.user_resource("EXTENSIONS", path="user_default", create=True))
    target = repo_dir / "depthstudio"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(src, target, ignore=shutil.ignore_patterns("tests", "__pycache__", "wheels", "*.pyc"))
    bpy.ops.extensions.repo_refresh_all()
    enable()
    return MODULE


def install_from_zip(zip_path: Path) -> str:
    result = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}, result
    assert MODULE in bpy.context.preferences.addons, list(bpy.context.preferences.addons.keys())
    return MODULE


def enable() -> None:
    result = bpy.ops.preferences.addon_enable(module=MODULE)
    assert result == {"FINISHED"}, result
    assert hasattr(bpy.ops.depthstudio, "image_to_depth_mesh")


def disable() -> None:
    bpy.ops.preferences.addon_disable(module=MODULE)


def prefs():
    return bpy.context.preferences.addons[MODULE].preferences


def clear_scene() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)


def data_counts() -> dict:
    return {name: len(getattr(bpy.data, name)) for name in
            ("objects", "meshes", "materials", "images", "cameras", "node_groups")}


def run_operator(**props):
    """Run the operator like a script does; returns (result set, error reports)."""
    reports = []
    try:
        result = bpy.ops.depthstudio.image_to_depth_mesh(**props)
    except RuntimeError as exc:  # bpy turns {'ERROR'} reports of a cancelled operator into RuntimeError
        reports.append(str(exc))
        result = {"CANCELLED"}
    return result, reports


def mesh_arrays(obj):
    me = obj.data
    co = np.empty(len(me.vertices) * 3, np.float32)
    me.vertices.foreach_get("co", co)
    tris = np.empty(len(me.loops), np.int32)
    me.loops.foreach_get("vertex_index", tris)
    return co.reshape(-1, 3), tris.reshape(-1, 3)


def project_through_camera(obj, cam_obj, scene=None):
    """Pixel coordinates (x right, y down, pixel centres at +0.5) of the mesh's vertices seen
    through the Blender camera, with bpy_extras.object_utils.world_to_camera_view."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    scene = scene or bpy.context.scene
    w = scene.render.resolution_x
    h = scene.render.resolution_y
    co, _ = mesh_arrays(obj)
    mw = obj.matrix_world
    out = np.empty((len(co), 2), np.float64)
    for i, p in enumerate(co):
        ndc = world_to_camera_view(scene, cam_obj, mw @ Vector(p))
        out[i] = (ndc.x * w, (1.0 - ndc.y) * h)
    return out


def emit(result: dict) -> None:
    """Print a JSON line the pytest side reads back."""
    print("RESULT " + json.dumps(result, default=float))
    sys.stdout.flush()
