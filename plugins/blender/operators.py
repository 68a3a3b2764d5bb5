"""The "Image to Depth Mesh" operator, its menu entries and the drag-and-drop FileHandler.

The operator's settings are the core's (see settings_props.py for how fields become bpy properties);
this module only says which appear in which redo-panel section, runs the engine for every chosen
photo, and turns the core's arrays into Blender data.

Settings file (``settings``): a ``<stem>.settings.json`` that ``depthstudio mesh``, the GUI or this
operator wrote. Choosing it loads its values into the panel's settings (a script's own keyword
arguments win over the file, as command-line flags do); fields the panel does not show (the model's
input size and backend) come from the file too. With ``export_dir`` set, every photo is also exported
there (the files ``depthstudio mesh`` writes) with its ``<stem>.settings.json`` beside it.
"""
from __future__ import annotations

import os
import traceback

import bpy
import numpy as np
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, StringProperty
from bpy_extras.io_utils import ImportHelper
from bpy_extras.object_utils import AddObjectHelper, object_data_add
from mathutils import Vector

from depthstudio.geometry.camera import CameraSettings
from depthstudio.geometry.depth import DepthMapping
from depthstudio.geometry.export import ExportSettings
from depthstudio.geometry.mesh import MeshSettings
from depthstudio.jobs import Job
from depthstudio.settings import load_section, read_settings_file
from depthstudio.source import DepthFileSettings, ModelSettings

from . import blender_data, engine
from . import settings_props as sp
from .preferences import addon_prefs

#: Photos the core reads (HEIC/HEIF through the bundled pillow-heif).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".heic", ".heif")

#: Which core settings the operator shows: (class, fields or None for all).
SETTINGS = (
    (DepthFileSettings, None),
    (ModelSettings, ("model",)),  # backend and input size: the add-on preferences (or the settings file)
    (DepthMapping, None),
    (CameraSettings, None),
    (MeshSettings, None),
    (ExportSettings, None),
)

#: The redo panel (label, properties, closed by default), as in Blender's importers.
REDO_SECTIONS = (
    ("Depth", ("model", "depth", "depth_kind", "near", "far"), False),
    ("Camera", ("fov", "focal_mm", "fx", "fy", "cx", "cy", "create_camera"), False),
    ("Geometry", ("points", "edge_cut", "stride", "max_faces"), False),
    ("Material", ("material",), False),
    ("Settings File and Export", ("settings", "export_dir", "format"), True),
    ("Transform", ("align", "location", "rotation"), True),
)

#: How the panel names where the focal length came from (depthstudio.geometry.camera.SOURCES).
SOURCE_NAMES = {"flags": "the settings above", "exif-35mm": "EXIF (35 mm equivalent)",
                "exif-sensor": "EXIF (focal length and sensor)", "model": "the depth model", "default": "the default"}


class DEPTHSTUDIO_OT_image_to_depth_mesh(bpy.types.Operator, ImportHelper, AddObjectHelper):
    """Turn photos into textured depth meshes (or point clouds) with matching cameras"""

    bl_idname = "depthstudio.image_to_depth_mesh"
    bl_label = "Image to Depth Mesh"
    bl_options = {"REGISTER", "UNDO", "PRESET"}

    filepath: StringProperty(name="Image", subtype="FILE_PATH", options={"SKIP_SAVE"})
    files: CollectionProperty(type=bpy.types.OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})
    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})
    filter_glob: StringProperty(default=";".join("*" + e for e in IMAGE_EXTENSIONS), options={"HIDDEN"})
    filter_image: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    filter_folder: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})

    create_camera: BoolProperty(name="Create Camera", default=True,
                                description="Add a camera that reproduces the photo's framing (the first photo's "
                                            "becomes the scene camera)")
    material: EnumProperty(
        name="Material",
        items=(("EMISSION", "Emission", "The photo's colours, unlit"),
               ("SHADED", "Shaded", "Principled BSDF with the photo as base colour")),
        default="EMISSION",
    )
    settings: StringProperty(
        name="Settings File", subtype="FILE_PATH",
        description="A <stem>.settings.json written by depthstudio, its GUI or this add-on: loads its settings "
                    "(the command line's --settings)",
    )
    export_dir: StringProperty(
        name="Export To", subtype="DIR_PATH",
        description="Also export every photo into this folder (the files `depthstudio mesh` writes) with its "
                    "<stem>.settings.json; empty: no export",
    )
    settings_applied: StringProperty(options={"HIDDEN", "SKIP_SAVE"})  # the settings file loaded last
    resolved: StringProperty(options={"HIDDEN", "SKIP_SAVE"})  # what the last run used (settings_props.RESOLVED)

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        clash = sp.conflicts(self)  # e.g. fov and fx both given: marked red, the run reports the error
        for label, props, closed in REDO_SECTIONS:
            header, body = layout.panel(f"depthstudio_{label.lower().replace(' ', '_')}", default_closed=closed)
            header.label(text=label)
            if not body:
                continue
            for prop in props:
                col = body.column()
                if prop == "depth_kind":
                    col.active = bool(self.depth)
                sp.draw(col, self, prop, alert=prop in clash)
            if label == "Camera":
                self.draw_camera_source(body)

    def draw_camera_source(self, layout) -> None:
        last = sp.resolved(self)
        if not last:
            return
        box = layout.box().column(align=True)
        box.label(text=f"From {SOURCE_NAMES.get(last['source'], last['source'])}"
                       + (f" ({last['photos']} photos; the first shown)" if last.get("photos", 1) > 1 else ""))
        box.label(text=f"fx {last['fx']:.1f}  fy {last['fy']:.1f} px,  {last['fov']:.1f}\u00b0 wide")
        box.label(text=f"Principal point {last['cx']:.1f}, {last['cy']:.1f} of {last['width']} x {last['height']}")

    def invoke(self, context, event):
        if self.filepath or len(self.files):  # dropped on the viewport: ask for settings, no file browser
            return self.invoke_popup(context) if hasattr(self, "invoke_popup") \
                else context.window_manager.invoke_props_dialog(self)
        return ImportHelper.invoke(self, context, event)

    def paths(self) -> list[str]:
        """The chosen photos: every selected file of the browser (or drop), else ``filepath``."""
        names = [f.name for f in self.files if f.name]
        if names:
            folder = bpy.path.abspath(self.directory) if self.directory \
                else os.path.dirname(bpy.path.abspath(self.filepath))
            return [os.path.join(folder, name) for name in names]
        return [bpy.path.abspath(self.filepath)] if self.filepath else []

    def core_settings(self, context) -> dict:
        """{section: core settings} from the properties (and the settings file, when one is chosen)."""
        saved = read_settings_file(bpy.path.abspath(self.settings)) if self.settings else None
        if saved is not None and self.settings != self.settings_applied:
            keep = sp.given_names(self) if not self.settings_applied else set()  # a script's arguments win
            for cls, _ in SETTINGS:
                sp.write(self, load_section(cls, saved), keep)
            self.settings_applied = self.settings
        prefs = addon_prefs(context)
        out = {}
        for cls, _ in SETTINGS:
            if saved is not None:
                base = load_section(cls, saved)
            elif cls is ModelSettings and prefs is not None:
                base = sp.read(prefs, ModelSettings)
            else:
                base = None
            out[cls.section] = sp.read(self, cls, base)
        return out

    def execute(self, context):
        wm = context.window_manager
        status = getattr(context, "workspace", None)

        def show(job: Job) -> None:
            wm.progress_update(int(1000 * (job.fraction or 0.0)))
            if status is not None and job.message:
                status.status_text_set(f"DepthStudio: {job.message}")

        paths = self.paths()
        job = Job(len(paths), "Image to Depth Mesh", listener=show)
        wm.progress_begin(0, 1000)
        created, errors, last = [], [], {}
        try:
            if not paths:
                raise engine.AddonError("no image chosen")
            settings = self.core_settings(context)
            prefs = addon_prefs(context)
            options = dict(route=prefs.route if prefs else os.environ.get("DEPTHSTUDIO_BLENDER_ROUTE", "AUTO"),
                           executable=prefs.executable if prefs else "",
                           online=bool(getattr(bpy.app, "online_access", True)))
            source = None
            for path in paths:
                step = job.sub(1)
                try:
                    request = engine.Request(path, model=settings["model"], files=settings["depth"],
                                             mapping=settings["mapping"], camera=settings["camera"],
                                             mesh=settings["mesh"], **options)
                    source = source or engine.depth_source(request)
                    result = engine.build(request, step, source)
                    if self.export_dir:
                        engine.export(result, request, bpy.path.abspath(self.export_dir), settings["export"])
                    created.append((self.create(context, result, path, [o for o, _ in created]), result))
                    step.advance(step.total - step.done)
                    if not last:
                        last = _resolved(result)
                except Exception as exc:  # one bad photo never stops the others
                    errors.append(_message(exc))
        except Exception as exc:
            errors.append(_message(exc))
        finally:
            wm.progress_end()
            if status is not None:
                status.status_text_set(None)
        if last:
            sp.remember(self, {**last, "photos": len(created)})
        if not created:
            for message in errors:
                self.report({"ERROR"}, f"Image to Depth Mesh: {message}")
            return {"CANCELLED"}
        for message in errors:
            self.report({"WARNING"}, f"Image to Depth Mesh: {message}")
        obj, result = created[0]
        more = f" and {len(created) - 1} more" if len(created) > 1 else ""
        self.report({"INFO"}, f"{obj.name}: {_summary(result)}{more}")
        return {"FINISHED"}

    def create(self, context, result: engine.Result, path: str, before: list = ()):
        """Blender data from the core's arrays; on failure nothing stays half-created. The first photo's
        camera becomes the scene camera; the objects of later photos are placed to the right of ``before``."""
        created = []
        images_before = set(bpy.data.images)
        name = os.path.splitext(os.path.basename(path))[0] or "Depth"
        geo = result.geometry
        intr = result.intrinsics
        emission = self.material == "EMISSION"
        points = result.metadata.get("mesh", {}).get("points", not hasattr(geo, "faces"))
        try:
            if points:
                verts = blender_data.to_blender_axes(geo.points)
                mesh = blender_data.mesh_from_arrays(name, verts, colors=geo.colors, smooth=False)
                created.append(mesh)
                mat = blender_data.points_material(f"{name} points", emission)
            else:
                verts = blender_data.to_blender_axes(geo.vertices)
                mesh = blender_data.mesh_from_arrays(name, verts, geo.faces, uvs=geo.uvs)
                created.append(mesh)
                if getattr(geo, "decimated", False):
                    mesh.validate()  # quadric decimation can leave a duplicate triangle; Blender drops it
                image = blender_data.load_photo_image(result.photo, path)
                if image not in images_before:
                    created.append(image)
                mat = blender_data.photo_material(name, image, emission)
            created.append(mat)
            mesh.materials.append(mat)
            obj = object_data_add(context, mesh, operator=self)  # at the 3D cursor, selected and active
            created.append(obj)
            if points:
                # half the gap between neighbouring samples at each point's depth, a little more to close it
                stride = max(1, int(result.metadata.get("mesh", {}).get("stride", 1)))
                spacing = np.abs(verts[:, 1]) * (stride / max(intr.fx, 1.0))
                blender_data.points_modifier(obj, mat, radius=0.6 * spacing)
                created.append(obj.modifiers[-1].node_group)
            metric = result.depth.kind == "metric"
            unit_scale = context.scene.unit_settings.scale_length or 1.0
            if metric and context.scene.unit_settings.system != "NONE" and unit_scale != 1.0:
                obj.scale = obj.scale * (1.0 / unit_scale)  # vertices are metres; scene units are not
            if before:
                self.place_beside(obj, verts, before)
            obj["depthstudio"] = {
                **_plain(result.metadata),
                "image": os.path.abspath(path),
                "route": result.route,
                "units": "metres" if metric else "scene units",
            }
            if self.create_camera:
                created += self.add_camera(context, obj, name, intr, verts, make_active=not before)
        except BaseException:
            blender_data.remove_ids(reversed(created))
            raise
        return obj

    @staticmethod
    def place_beside(obj, verts, before) -> None:
        """Move ``obj`` along its own x axis just past the right edge of the objects in ``before``."""
        axis = obj.matrix_basis.to_3x3().normalized() @ Vector((1.0, 0.0, 0.0))
        right = max(max(axis.dot(o.matrix_basis @ Vector(corner)) for corner in o.bound_box) for o in before)
        left = min(float(np.min(verts[:, 0])), 0.0) * obj.scale.x
        gap = 0.1 * float(np.ptp(verts[:, 0])) * obj.scale.x
        obj.location += axis * (right + gap - left - axis.dot(obj.location))

    def add_camera(self, context, obj, name: str, intr, verts, make_active: bool) -> list:
        """A camera child of ``obj`` whose lens, sensor and shift reproduce the intrinsics."""
        created = []
        # clip distances are in world units: the object's scale (scene units) applies
        far = float(np.abs(verts[:, 1]).max()) * max(obj.scale) if len(verts) else 100.0
        cam, render = blender_data.camera_data(f"{name} camera", intr, clip_end=2.0 * far)
        created.append(cam)
        cam_obj = bpy.data.objects.new(f"{name} camera", cam)
        created.append(cam_obj)
        context.collection.objects.link(cam_obj)
        # a child of the mesh: move or scale the mesh and the framing stays right
        cam_obj.parent = obj
        cam_obj.matrix_basis = blender_data.CAMERA_ROTATION
        cam_obj["depthstudio_intrinsics"] = _plain(intr.to_dict())
        cam_obj["depthstudio_render"] = render  # the render size and pixel aspect it needs
        if make_active:
            for key, value in render.items():
                setattr(context.scene.render, key, value)
            context.scene.camera = cam_obj
        return created


for _cls, _fields in SETTINGS:
    sp.generate(DEPTHSTUDIO_OT_image_to_depth_mesh, _cls, _fields,
                empty_auto={"model": "the add-on preferences' model"} if _cls is ModelSettings else None)


def _resolved(result: engine.Result) -> dict:
    intr = result.intrinsics
    return {"fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy, "fov": intr.hfov_deg,
            "focal_mm": intr.focal_35mm, "width": intr.width, "height": intr.height, "source": intr.source}


def _message(exc: Exception) -> str:
    message = str(exc) or type(exc).__name__
    if not _is_user_error(exc):  # a bug: the traceback goes to the console, the report stays one line
        traceback.print_exc()
        message = f"{type(exc).__name__}: {message}"
    return message


def _plain(value):
    """Custom properties accept only plain ints/floats/strings/lists/dicts."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _is_user_error(exc: Exception) -> bool:
    from depthstudio.errors import DepthStudioError

    return isinstance(exc, (engine.AddonError, DepthStudioError))


def _summary(result: engine.Result) -> str:
    geo = result.geometry
    if hasattr(geo, "faces"):
        what = f"{len(geo.vertices)} vertices, {len(geo.faces)} faces"
    else:
        what = f"{len(geo.points)} points"
    return f"{what}, depth via {result.route}, focal from {result.intrinsics.source}"


class DEPTHSTUDIO_FH_image_to_depth_mesh(bpy.types.FileHandler):
    bl_idname = "DEPTHSTUDIO_FH_image_to_depth_mesh"
    bl_label = "Image to Depth Mesh"
    bl_import_operator = "depthstudio.image_to_depth_mesh"
    bl_file_extensions = ";".join(IMAGE_EXTENSIONS)

    @classmethod
    def poll_drop(cls, context):
        return context.area is not None and context.area.type == "VIEW_3D"


def menu_func(self, context):
    self.layout.operator(DEPTHSTUDIO_OT_image_to_depth_mesh.bl_idname, text="Image to Depth Mesh", icon="IMAGE_DATA")


def menu_import(self, context):
    self.layout.operator(DEPTHSTUDIO_OT_image_to_depth_mesh.bl_idname, text="Image to Depth Mesh (.jpg, .png, ...)")


classes = (DEPTHSTUDIO_OT_image_to_depth_mesh, DEPTHSTUDIO_FH_image_to_depth_mesh)
MENUS = (("VIEW3D_MT_mesh_add", menu_func), ("TOPBAR_MT_file_import", menu_import))
