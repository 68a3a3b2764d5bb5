"""Renders docs/images/blender_room.png with Blender itself (Cycles, CPU).

    python -c "from tests.blender_env import run_in_blender as r; \
               print(r('docs/images/blender_render.py', '../shared/scenes/room', 'docs/images', timeout=1800).stderr)"

Left: the room scene rebuilt by "Image to Depth Mesh" from rgb.png + depth.exr, rendered through
the camera the add-on created (emission material: it should look like the photo). Right: the
same mesh, shaded, seen from above and to the side: the geometry, and the cut edges that leave
the areas hidden behind the sphere and the pillar open instead of stretching a skin over them.
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "plugins", "blender", "tests"))

import blender_checks as bc  # noqa: E402
import bpy  # noqa: E402
import numpy as np  # noqa: E402
from mathutils import Vector  # noqa: E402

room, out_dir = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
camera = json.load(open(os.path.join(room, "camera.json")))
bc.clear_scene()
bc.install_from_folder()
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 16
scene.cycles.use_denoising = False
scene.view_settings.view_transform = "Standard"  # the photo's colours, not Filmic/AgX


def run(material):
    before = set(bpy.data.objects)
    result = bpy.ops.depthstudio.image_to_depth_mesh(
        filepath=os.path.join(room, "rgb.png"), depth=os.path.join(room, "depth.exr"),
        depth_kind="metric", fov=camera["hfov_deg"], material=material)
    assert result == {"FINISHED"}, result
    new = [o for o in bpy.data.objects if o not in before]
    return [o for o in new if o.type == "MESH"][0], [o for o in new if o.type == "CAMERA"][0]


def render(path):
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)
    return path


world = bpy.data.worlds.new("World")
scene.world = world
world.color = (0.05, 0.05, 0.06)

obj, cam = run("EMISSION")
through = render(os.path.join(out_dir, "_through_camera.png"))

# the shaded mesh, from above-left, with a sun
bpy.data.objects.remove(obj)
shaded, cam2 = run("SHADED")
bpy.data.objects.remove(cam2)
sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
sun.data.energy = 3.0
sun.rotation_euler = (math.radians(50), 0, math.radians(-30))
scene.collection.objects.link(sun)
view = bpy.data.objects.new("Side view", bpy.data.cameras.new("Side view"))
view.data.lens = 22
scene.collection.objects.link(view)
center = Vector((0.5, 8.5, 1.0))
view.location = Vector((-6.5, 0.5, 5.5))
view.rotation_euler = (center - view.location).to_track_quat("-Z", "Y").to_euler()
scene.camera = view
side = render(os.path.join(out_dir, "_side.png"))

# side by side, via Blender's own image API
a = bpy.data.images.load(through)
b = bpy.data.images.load(side)
w, h = a.size
pa = np.empty(w * h * 4, np.float32)
pb = np.empty(w * h * 4, np.float32)
a.pixels.foreach_get(pa)
b.pixels.foreach_get(pb)
gap = 8
both = np.ones((h, 2 * w + gap, 4), np.float32)
both[:, :w] = pa.reshape(h, w, 4)
both[:, w + gap:] = pb.reshape(h, w, 4)
img = bpy.data.images.new("both", 2 * w + gap, h, alpha=False)
img.pixels.foreach_set(both.ravel())
img.filepath_raw = os.path.join(out_dir, "blender_room.png")
img.file_format = "PNG"
img.save()
os.remove(through)
os.remove(side)
print("wrote", img.filepath_raw)
