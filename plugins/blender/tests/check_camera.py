"""Runs INSIDE Blender: the camera built from intrinsics reproduces them, for square and
non-square pixels, centred and shifted principal points, landscape and portrait, with the object
moved and turned. Prints "RESULT {case: max reprojection error in pixels}"."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import blender_checks as bc  # noqa: E402
import blender_data  # noqa: E402
import bpy  # noqa: E402
import numpy as np  # noqa: E402
from mathutils import Euler, Matrix, Vector  # noqa: E402

from depthstudio.geometry.camera import Intrinsics  # noqa: E402
from depthstudio.geometry.mesh import MeshSettings, depth_mesh  # noqa: E402

CASES = {
    "centred": (500.0, 500.0, 320.0, 240.0, 640, 480),
    "tall_pixels_shifted": (500.0, 650.0, 250.3, 300.7, 640, 480),
    "wide_pixels_portrait": (700.0, 520.0, 100.0, 60.0, 300, 500),
}
results = {}
for name, (fx, fy, cx, cy, w, h) in CASES.items():
    bc.clear_scene()
    intr = Intrinsics(fx, fy, cx, cy, w, h, source="flags")
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    z = 2.0 + 0.5 * np.sin(xx / 40.0) + 0.3 * np.cos(yy / 25.0)
    mesh = depth_mesh(z, np.ones_like(z, bool), intr, settings=MeshSettings(edge_cut=0, stride=7))
    me = blender_data.mesh_from_arrays(name, blender_data.to_blender_axes(mesh.vertices), mesh.faces, uvs=mesh.uvs)
    obj = bpy.data.objects.new(name, me)
    bpy.context.collection.objects.link(obj)
    obj.matrix_world = Matrix.Translation(Vector((1.5, -2.0, 0.7))) @ Euler((0.2, -0.1, 0.6)).to_matrix().to_4x4()
    cam, render = blender_data.camera_data(name, intr, clip_end=100.0)
    cam_obj = bpy.data.objects.new(name + " camera", cam)
    bpy.context.collection.objects.link(cam_obj)
    cam_obj.matrix_world = obj.matrix_world @ blender_data.CAMERA_ROTATION
    for key, value in render.items():
        setattr(bpy.context.scene.render, key, value)
    bpy.context.view_layer.update()
    results[name] = {"error_px": bc.reprojection_error(obj, cam_obj, samples=1500),
                     "pixel_aspect": [render["pixel_aspect_x"], render["pixel_aspect_y"]],
                     "shift": [cam.shift_x, cam.shift_y], "lens": cam.lens}
bc.emit(results)
