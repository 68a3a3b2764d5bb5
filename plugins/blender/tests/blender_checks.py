"""Helpers for checks that run INSIDE Blender (the bpy module): install the extension, run the
operator, inspect what it made. Scripts in this folder import it; pytest never does."""
from __future__ import annotations

import json
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
    """Run the operator like a script does; returns (result set, error reports). JSON lists given for
    ENUM_FLAG properties (format) become the sets bpy wants."""
    reports = []
    rna = bpy.ops.depthstudio.image_to_depth_mesh.get_rna_type().properties
    for key, value in list(props.items()):
        if isinstance(value, list) and key in rna and getattr(rna[key], "is_enum_flag", False):
            props[key] = set(value)
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


def loop_uvs(obj) -> np.ndarray:
    layer = obj.data.uv_layers.active
    uv = np.empty(len(obj.data.loops) * 2, np.float32)
    layer.data.foreach_get("uv", uv)
    return uv.reshape(-1, 2)


def reprojection_error(obj, cam_obj, samples: int = 3000, seed: int = 0) -> float:
    """Largest distance in pixels between where a vertex lands through the Blender camera
    (bpy_extras.object_utils.world_to_camera_view) and the pixel it came from (its UV)."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    scene = bpy.context.scene
    w, h = scene.render.resolution_x, scene.render.resolution_y
    co, tris = mesh_arrays(obj)
    per_vertex_uv = np.zeros((len(co), 2), np.float64)
    per_vertex_uv[tris.ravel()] = loop_uvs(obj)
    used = np.unique(tris.ravel())
    pick = np.random.default_rng(seed).choice(used, size=min(samples, len(used)), replace=False)
    mw = obj.matrix_world
    err = 0.0
    for i in pick:
        ndc = world_to_camera_view(scene, cam_obj, mw @ Vector(co[i].tolist()))
        px = np.array([ndc.x * w, (1.0 - ndc.y) * h])
        src = np.array([per_vertex_uv[i, 0] * w, (1.0 - per_vertex_uv[i, 1]) * h])
        err = max(err, float(np.abs(px - src).max()))
    return err


def new_objects(before: set) -> list:
    return [o for o in bpy.data.objects if o not in before]


def truth_errors(obj, cam_obj, truth: dict, samples: int = 3000, seed: int = 1) -> dict:
    """Against the TRUE intrinsics of a synthetic scene (fx, fy, cx, cy): where the true camera sees
    each mesh vertex, versus (a) where the created Blender camera sees it (world_to_camera_view) and
    (b) the pixel the vertex came from (its UV). Largest errors in pixels."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    apply_render(cam_obj)
    scene = bpy.context.scene
    w, h = scene.render.resolution_x, scene.render.resolution_y
    co, tris = mesh_arrays(obj)
    per_vertex_uv = np.zeros((len(co), 2), np.float64)
    per_vertex_uv[tris.ravel()] = loop_uvs(obj)
    used = np.unique(tris.ravel())
    pick = np.random.default_rng(seed).choice(used, size=min(samples, len(used)), replace=False)
    # object space (Blender axes) -> camera frame (glTF: x right, y up, looking down -z)
    x, y, z = co[pick, 0].astype(np.float64), co[pick, 2].astype(np.float64), -co[pick, 1].astype(np.float64)
    true_px = np.stack([truth["cx"] + truth["fx"] * x / -z, truth["cy"] - truth["fy"] * y / -z], axis=1)
    source_px = np.stack([per_vertex_uv[pick, 0] * w, (1.0 - per_vertex_uv[pick, 1]) * h], axis=1)
    mw = obj.matrix_world
    camera_px = np.array([[(ndc := world_to_camera_view(scene, cam_obj, mw @ Vector(co[i].tolist()))).x * w,
                           (1.0 - ndc.y) * h] for i in pick])
    return {"camera_vs_truth_px": float(np.abs(camera_px - true_px).max()),
            "mesh_vs_truth_px": float(np.abs(source_px - true_px).max())}


def apply_render(cam_obj) -> None:
    """The scene's render size and pixel aspect for this camera (the add-on stores them on it)."""
    render = cam_obj.get("depthstudio_render")
    if render is not None:
        for key, value in render.to_dict().items():
            setattr(bpy.context.scene.render, key, value)
        bpy.context.view_layer.update()


def describe(obj, cam_obj=None) -> dict:
    """What a check needs to know about the created object (and camera)."""
    me = obj.data
    co, _ = mesh_arrays(obj)
    out = {
        "name": obj.name,
        "type": obj.type,
        "vertices": len(me.vertices),
        "faces": len(me.polygons),
        "triangles_only": bool(len(me.polygons) == 0 or len(me.loops) == 3 * len(me.polygons)),
        "edges": len(me.edges),
        "valid": not me.validate(),  # validate() returns True when it had to fix something
        "uv_layers": list(me.uv_layers.keys()),
        "color_attributes": list(me.color_attributes.keys()),
        "materials": [m.name for m in me.materials if m],
        "scale": list(obj.scale),
        "location": list(obj.location),
        "depth_range": [float(co[:, 1].min()), float(co[:, 1].max())] if len(co) else [0, 0],
        "bounds_min": co.min(0).tolist() if len(co) else [],
        "bounds_max": co.max(0).tolist() if len(co) else [],
        "props": obj["depthstudio"].to_dict() if "depthstudio" in obj else {},
        "modifiers": [m.type for m in obj.modifiers],
        "unit_system": bpy.context.scene.unit_settings.system,
        "unit_scale": bpy.context.scene.unit_settings.scale_length,
    }
    mat = me.materials[0] if len(me.materials) else None
    if mat is not None and mat.node_tree is not None:
        images = [n.image for n in mat.node_tree.nodes if n.type == "TEX_IMAGE" and n.image]
        out["image_paths"] = [bpy.path.abspath(i.filepath) if i.filepath else i.get("depthstudio_source", "")
                              for i in images]
        out["image_sizes"] = [list(i.size) for i in images]
        out["shaders"] = sorted(n.type for n in mat.node_tree.nodes)
    if cam_obj is not None:
        cam = cam_obj.data
        is_scene_camera = bpy.context.scene.camera == cam_obj
        apply_render(cam_obj)
        render = bpy.context.scene.render
        out["camera"] = {
            "lens": cam.lens, "sensor_width": cam.sensor_width, "sensor_fit": cam.sensor_fit,
            "shift_x": cam.shift_x, "shift_y": cam.shift_y, "is_scene_camera": is_scene_camera,
            "resolution": [render.resolution_x, render.resolution_y],
            "pixel_aspect": [render.pixel_aspect_x, render.pixel_aspect_y],
            "parent": cam_obj.parent.name if cam_obj.parent else None,
        }
        if len(me.polygons):
            out["reprojection_px"] = reprojection_error(obj, cam_obj)
    return out


def run_and_describe(truth: dict | None = None, **props) -> dict:
    """Run the operator and describe what it created (or the error it reported): the first mesh at the
    top level, every mesh (in creation order) under "objects"."""
    before_objects = set(bpy.data.objects)
    before = data_counts()
    scene_camera = None
    result, reports = run_operator(**props)
    created = new_objects(before_objects)
    meshes = [o for o in bpy.data.objects if o in created and o.type == "MESH"]
    meshes.sort(key=lambda o: o.get("depthstudio", {}).get("image", ""))
    out = {"result": sorted(result), "reports": reports, "before": before, "after": data_counts(),
           "created": sorted(o.type for o in created)}
    scene_camera = bpy.context.scene.camera
    described = []
    for mesh in meshes:
        cams = [o for o in created if o.type == "CAMERA" and o.parent == mesh]
        item = describe(mesh, cams[0] if cams else None)
        if truth is not None and cams:
            item.update(truth_errors(mesh, cams[0], truth))
        described.append(item)
        bpy.context.scene.camera = scene_camera
    if scene_camera is not None:
        apply_render(scene_camera)
    if described:
        first = next((d for d in described if d.get("camera", {}).get("is_scene_camera")), described[0])
        out.update(first)
        out["objects"] = described
    return out


def emit(result: dict) -> None:
    """Print a JSON line the pytest side reads back."""
    print("RESULT " + json.dumps(result, default=float))
    sys.stdout.flush()
