"""Every export imports into real Blender (the bpy wheel in its own venv): OBJ, GLB and USDZ with the
texture attached, GLB and USDZ with the photo's camera, PLY and splat PLY with their vertices."""
from __future__ import annotations

import json

import numpy as np
import pytest

from depthstudio.depthmap import DepthMap
from depthstudio.geometry.camera import CameraSettings
from depthstudio.geometry.export import export
from depthstudio.geometry.pipeline import build_mesh

pytestmark = pytest.mark.blender

IMPORT_SCRIPT = r'''
import json, sys
import bpy

path, kind = sys.argv[1], sys.argv[2]
bpy.ops.wm.read_factory_settings(use_empty=True)
if kind == "obj":
    bpy.ops.wm.obj_import(filepath=path)
elif kind in ("ply", "splat"):
    bpy.ops.wm.ply_import(filepath=path)
elif kind == "usdz":
    bpy.ops.wm.usd_import(filepath=path)
else:
    bpy.ops.preferences.addon_enable(module="io_scene_gltf2")
    bpy.ops.import_scene.gltf(filepath=path)
meshes = [o for o in bpy.context.scene.objects if o.type == "MESH"]
report = {"objects": len(meshes)}
cameras = [o for o in bpy.context.scene.objects if o.type == "CAMERA"]
report["cameras"] = [{"angle_x": o.data.angle_x, "angle_y": o.data.angle_y, "sensor_fit": o.data.sensor_fit,
                      "shift_x": o.data.shift_x, "shift_y": o.data.shift_y,
                      "location": list(o.matrix_world.translation),
                      "forward": list(o.matrix_world.to_3x3() @ __import__("mathutils").Vector((0, 0, -1)))}
                     for o in cameras]
if meshes:
    obj = meshes[0]
    me = obj.data
    report.update(vertices=len(me.vertices), polygons=len(me.polygons), uv_layers=len(me.uv_layers))
    images = []
    for slot in obj.material_slots:
        mat = slot.material
        if not (mat and mat.use_nodes):
            continue
        for node in mat.node_tree.nodes:
            if node.type == "TEX_IMAGE" and node.image is not None:
                linked = any(link.to_node.type == "BSDF_PRINCIPLED" and link.to_socket.name == "Base Color"
                             for link in node.outputs["Color"].links)
                images.append({"size": list(node.image.size), "linked_to_base_color": linked,
                               "linked": bool(node.outputs["Color"].links),
                               "has_data": node.image.has_data or node.image.pixels[:] is not None})
    report["images"] = images
    # the UV of the first loop, to check the mapping survives the trip
    if me.uv_layers:
        uv = me.uv_layers.active.data
        report["uv_range"] = [min(d.uv[0] for d in uv), max(d.uv[0] for d in uv),
                              min(d.uv[1] for d in uv), max(d.uv[1] for d in uv)]
    world = [obj.matrix_world @ v.co for v in me.vertices]
    report["z_range"] = [min(c.z for c in world), max(c.z for c in world)]
    report["depth_range"] = [min(c.y for c in world), max(c.y for c in world)]
print("REPORT " + json.dumps(report))
'''


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    from tests.blender_env import require_blender

    require_blender()
    out = tmp_path_factory.mktemp("blender-export")
    h, w = 48, 64
    photo = np.random.default_rng(2).integers(0, 255, (h, w, 3), dtype=np.uint8)
    z = np.full((h, w), 5.0, np.float32)
    z[10:30, 10:30] = 2.0
    mesh, _, meta = build_mesh(photo, DepthMap(z, "metric"), CameraSettings(fov_deg=60))
    export(mesh, out, "bl", ("obj", "glb", "ply", "usdz", "splat"), meta)
    return out, mesh, (w, h)


def blender_report(path, kind) -> dict:
    from tests.blender_env import run_in_blender

    result = run_in_blender(IMPORT_SCRIPT, path, kind, timeout=600)
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    return json.loads(lines[-1][len("REPORT "):])


@pytest.mark.parametrize("kind", ["glb", "usdz"])
def test_camera_imports_in_blender(exports, kind):
    import math

    out, mesh, (w, h) = exports
    report = blender_report(out / f"bl.{kind}", kind)
    assert len(report["cameras"]) == 1
    camera = report["cameras"][0]
    if kind == "usdz":  # glTF's importer fits the sensor vertically: its angle_x follows Blender's 36 mm sensor
        assert math.degrees(camera["angle_x"]) == pytest.approx(60.0, abs=0.05)
    assert math.degrees(camera["angle_y"]) == pytest.approx(math.degrees(2 * math.atan(math.tan(math.radians(30)) * h / w)),
                                                            abs=0.05)
    assert camera["location"] == pytest.approx([0, 0, 0], abs=1e-5)
    assert camera["forward"] == pytest.approx([0, 1, 0], abs=1e-5)  # looks at the mesh (Blender +y)
    if kind == "usdz":
        assert report["images"] and report["images"][0]["size"] == [w, h] and report["images"][0]["linked"]
        assert report["polygons"] == mesh.face_count and report["vertices"] == len(mesh.vertices)


@pytest.mark.parametrize("kind", ["ply", "splat"])
def test_ply_and_splat_import_in_blender(exports, kind):
    out, mesh, _ = exports
    report = blender_report(out / ("bl.splat.ply" if kind == "splat" else "bl.ply"), kind)
    assert report["vertices"] == len(mesh.vertices)
    assert report["polygons"] == (mesh.face_count if kind == "ply" else 0)


@pytest.mark.parametrize("kind", ["obj", "glb"])
def test_import_in_blender_with_texture(exports, kind):
    out, mesh, size = exports
    report = blender_report(out / f"bl.{kind}", kind)
    assert report["objects"] == 1
    assert report["polygons"] == mesh.face_count
    assert report["vertices"] == len(mesh.vertices)
    assert report["uv_layers"] == 1
    assert report["images"] and report["images"][0]["size"] == list(size)
    # the OBJ's texture is the base colour; the GLB's is unlit (KHR_materials_unlit: an emission set-up)
    assert report["images"][0]["linked_to_base_color"] if kind == "obj" else report["images"][0]["linked"]
    lo, hi = report["uv_range"][0], report["uv_range"][1]
    assert 0 < lo < 0.02 and 0.98 < hi < 1  # pixel centres: 0.5 / W ... 1 - 0.5 / W
    # both importers turn glTF/OBJ Y-up into Blender's Z-up: camera-frame heights become Blender z
    ys = mesh.vertices[:, 1]
    assert report["z_range"] == pytest.approx([float(ys.min()), float(ys.max())], abs=1e-4)
    # and the camera's -z (forward) becomes Blender's +y (the front view looks at the mesh)
    zs = mesh.vertices[:, 2]
    assert report["depth_range"] == pytest.approx([float(-zs.max()), float(-zs.min())], abs=1e-4)
