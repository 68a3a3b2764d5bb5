"""Runs INSIDE Blender: bpy properties generated from the core's settings (settings_props.py) on a
registered PropertyGroup: names, labels, ranges and defaults from the spec, "auto" values, the
panel's behaviour (update callbacks fire on assignment, as in the UI) and the read/write round trip.
Prints "RESULT {...}"."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import blender_checks as bc  # noqa: E402
import bpy  # noqa: E402
import settings_props as sp  # noqa: E402

from depthstudio.errors import SettingsError  # noqa: E402
from depthstudio.geometry.camera import CameraSettings  # noqa: E402
from depthstudio.geometry.export import ExportSettings  # noqa: E402
from depthstudio.geometry.mesh import MeshSettings  # noqa: E402
from depthstudio.source import DepthFileSettings  # noqa: E402


class DSTEST_PG_settings(bpy.types.PropertyGroup):
    pass


DSTEST_PG_settings.__annotations__["resolved"] = bpy.props.StringProperty()
for cls in (CameraSettings, MeshSettings, DepthFileSettings, ExportSettings):
    sp.generate(DSTEST_PG_settings, cls)
bpy.utils.register_class(DSTEST_PG_settings)
bpy.types.Scene.dstest = bpy.props.PointerProperty(type=DSTEST_PG_settings)
bc.clear_scene()
pg = bpy.context.scene.dstest
rna = DSTEST_PG_settings.bl_rna.properties
out = {"names": sorted(p.identifier for p in rna if p.identifier not in ("rna_type", "name", "resolved"))}


def prop(name):
    p = rna[name]
    d = {"label": p.name, "description": p.description, "type": p.type}
    if p.type in ("FLOAT", "INT"):
        d.update(min=p.hard_min, max=p.hard_max, soft_min=p.soft_min, default=p.default)
    if p.type == "ENUM":
        d.update(items=[i.identifier for i in p.enum_items], flag=p.is_enum_flag)
    return d


out["props"] = {n: prop(n) for n in ("fov", "fx", "cx", "use_cx", "edge_cut", "use_edge_cut", "max_faces", "stride",
                                     "depth", "depth_kind", "format")}
out["defaults_are_the_core's"] = (sp.read(pg, CameraSettings) == CameraSettings()
                                  and sp.read(pg, MeshSettings) == MeshSettings()
                                  and sp.read(pg, DepthFileSettings) == DepthFileSettings()
                                  and sp.read(pg, ExportSettings) == ExportSettings())

steps = {}
pg.fov = 50.0
steps["fov"] = sp.read(pg, CameraSettings).to_dict()
pg.fx = 600.0  # fov and fx together (one exclusive group): an error naming both, nothing silently dropped
steps["conflicts"] = sorted(sp.conflicts(pg))
try:
    sp.read(pg, CameraSettings)
    steps["both"] = None
except SettingsError as exc:
    steps["both"] = str(exc)
pg.fov = 0.0
steps["fx"] = sp.read(pg, CameraSettings).to_dict()
pg.cx = 12.5  # editing a number with a checkbox ticks it
steps["cx_ticks"] = [pg.use_cx, sp.read(pg, CameraSettings).cx]
pg.use_cx = False
steps["cx_unticked"] = sp.read(pg, CameraSettings).cx
sp.remember(pg, {"cx": 80.0, "cy": 60.0})
pg.use_cy = True  # ticking starts from the last run's value
steps["cy_from_last_run"] = sp.read(pg, CameraSettings).cy
pg.max_faces = 0
pg.use_edge_cut = False
steps["mesh_auto"] = sp.read(pg, MeshSettings).to_dict()
precise = CameraSettings(fx=150.123456789, fy=151.1, cx=70.987654321, cy=-3.25)
sp.write(pg, precise)
steps["write_read_exact"] = sp.read(pg, CameraSettings, base=precise) == precise
steps["write_read_float32"] = sp.read(pg, CameraSettings).to_dict()
mesh = MeshSettings(edge_cut=0.0123, max_faces=5000, stride=3, points=True)
sp.write(pg, mesh)
steps["mesh_round_trip"] = sp.read(pg, MeshSettings) == mesh
sp.write(pg, ExportSettings(formats=("ply", "glb")))
steps["formats"] = list(sp.read(pg, ExportSettings).formats)
pg.stride = 64
pg.max_faces = 1  # below the core's minimum: the core's check names it
try:
    sp.read(pg, MeshSettings)
    steps["max_faces_1"] = None
except SettingsError as exc:
    steps["max_faces_1"] = str(exc)
out["steps"] = steps
bc.emit(out)
