"""The "Image to Depth Mesh" operator, its menu entries and the drag-and-drop FileHandler."""
from __future__ import annotations

import os
import traceback

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper
from bpy_extras.object_utils import AddObjectHelper, object_data_add

from . import blender_data, engine
from .preferences import addon_prefs

#: Photos the core reads (HEIC/HEIF through the bundled pillow-heif).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".heic", ".heif")


#: The redo panel's sections after Depth (label, properties, closed by default), as in Blender's importers.
REDO_SECTIONS = (
    ("Camera", ("fov", "focal_mm", "create_camera"), False),
    ("Geometry", ("as_points", "edge_cut", "stride", "max_faces"), False),
    ("Material", ("material",), False),
    ("Transform", ("align", "location", "rotation"), True),
)


class DEPTHSTUDIO_OT_image_to_depth_mesh(bpy.types.Operator, ImportHelper, AddObjectHelper):
    """Turn a photo into a textured depth mesh (or point cloud) with a matching camera"""

    bl_idname = "depthstudio.image_to_depth_mesh"
    bl_label = "Image to Depth Mesh"
    bl_options = {"REGISTER", "UNDO", "PRESET"}

    filepath: StringProperty(name="Image", subtype="FILE_PATH", options={"SKIP_SAVE"})
    filter_glob: StringProperty(default=";".join("*" + e for e in IMAGE_EXTENSIONS), options={"HIDDEN"})
    filter_image: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    filter_folder: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})

    # Depth
    model: StringProperty(
        name="Model",
        description="Catalogue name (da2-small: Apache-2.0; da2-base/large: CC-BY-NC-4.0), a .onnx file or a "
                    "transformers folder. Empty: the add-on preferences' default",
        default="",
    )
    depth_filepath: StringProperty(
        name="Depth File", subtype="FILE_PATH",
        description="Bring your own depth (EXR from a render, a phone depth map, PNG 16-bit, TIFF, NPY); "
                    "then no model runs",
        default="",
    )
    depth_kind: EnumProperty(
        name="Depth Kind",
        items=(("DISPARITY", "Disparity", "Relative inverse depth (larger = nearer), mapped through near/far"),
               ("METRIC", "Metric", "Distance along the optical axis in metres")),
        default="DISPARITY",
        description="What the depth file holds (a model's output carries its own kind)",
    )
    near: FloatProperty(name="Near", description="Distance of the nearest disparity", default=1.0,
                        min=1e-4, soft_max=100.0, unit="LENGTH")
    far: FloatProperty(name="Far", description="Distance of the farthest disparity", default=10.0,
                       min=1e-3, soft_max=1000.0, unit="LENGTH")
    # Camera
    fov: FloatProperty(name="Field of View", description="Horizontal, in degrees; 0 = from EXIF, else 60",
                       default=0.0, min=0.0, max=179.0)
    focal_mm: FloatProperty(name="Focal Length (35 mm)", description="35 mm-equivalent focal length; 0 = unused",
                            default=0.0, min=0.0, soft_max=600.0)
    create_camera: BoolProperty(name="Create Camera", default=True,
                                description="Add a camera that reproduces the photo's framing and make it active")
    # Mesh
    edge_cut: FloatProperty(name="Edge Cut", default=0.04, min=0.0, soft_max=1.0, precision=3,
                            description="Relative depth jump above which triangles are cut; 0 keeps all")
    max_faces: IntProperty(name="Max Faces", default=2_000_000, min=0,  # the core's MeshSettings.max_faces
                           description="Decimate to at most this many triangles; 0 = full resolution")
    stride: IntProperty(name="Pixel Step", default=1, min=1, max=64,
                        description="Use every n-th pixel (lower resolution, faster)")
    as_points: BoolProperty(name="Points", default=False, description="A point cloud instead of a mesh")
    material: EnumProperty(
        name="Material",
        items=(("EMISSION", "Emission", "The photo's colours, unlit"),
               ("SHADED", "Shaded", "Principled BSDF with the photo as base colour")),
        default="EMISSION",
    )

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        header, body = layout.panel("depthstudio_depth", default_closed=False)
        header.label(text="Depth")
        if body:
            body.prop(self, "model")
            body.prop(self, "depth_filepath")
            col = body.column()
            col.active = bool(self.depth_filepath)
            col.prop(self, "depth_kind")
            body.prop(self, "near")
            body.prop(self, "far")
        for label, props, closed in REDO_SECTIONS:
            header, body = layout.panel(f"depthstudio_{label.lower()}", default_closed=closed)
            header.label(text=label)
            if body:
                for prop in props:
                    body.prop(self, prop)

    def invoke(self, context, event):
        if self.filepath:  # dropped on the viewport: ask for settings, no file browser
            return self.invoke_popup(context) if hasattr(self, "invoke_popup") \
                else context.window_manager.invoke_props_dialog(self)
        return ImportHelper.invoke(self, context, event)

    def request(self, context) -> engine.Request:
        prefs = addon_prefs(context)
        return engine.Request(
            filepath=bpy.path.abspath(self.filepath),
            depth_filepath=bpy.path.abspath(self.depth_filepath) if self.depth_filepath else "",
            depth_kind=self.depth_kind.lower(),
            near=self.near, far=self.far, fov=self.fov, focal_mm=self.focal_mm,
            edge_cut=self.edge_cut, max_faces=self.max_faces, stride=self.stride, as_points=self.as_points,
            model=self.model or (prefs.default_model if prefs else "") or engine.default_model(),
            route=prefs.route if prefs else os.environ.get("DEPTHSTUDIO_BLENDER_ROUTE", "AUTO"),
            executable=prefs.executable if prefs else "",
            input_size=prefs.input_size if prefs else 518,
            online=bool(getattr(bpy.app, "online_access", True)),
        )

    def execute(self, context):
        wm = context.window_manager
        wm.progress_begin(0, 100)
        status = getattr(context, "workspace", None)

        def progress(fraction: float, message: str) -> None:
            wm.progress_update(int(100 * fraction))
            if status is not None:
                status.status_text_set(f"DepthStudio: {message}")

        try:
            result = engine.build(self.request(context), progress)
            created = self.create(context, result)
        except Exception as exc:  # every failure is a report, never a traceback in the user's face
            message = str(exc) or type(exc).__name__
            if not _is_user_error(exc):
                traceback.print_exc()
                message = f"{type(exc).__name__}: {message}"
            self.report({"ERROR"}, f"Image to Depth Mesh: {message}")
            return {"CANCELLED"}
        finally:
            wm.progress_end()
            if status is not None:
                status.status_text_set(None)
        self.report({"INFO"}, f"{created.name}: {_summary(result)}")
        return {"FINISHED"}

    def create(self, context, result: engine.Result):
        """Blender data from the core's arrays; on failure nothing stays half-created."""
        created = []
        images_before = set(bpy.data.images)
        name = os.path.splitext(os.path.basename(self.filepath))[0] or "Depth"
        geo = result.geometry
        intr = result.intrinsics
        emission = self.material == "EMISSION"
        try:
            if self.as_points:
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
                image = blender_data.load_photo_image(result.photo, self.filepath)
                if image not in images_before:
                    created.append(image)
                mat = blender_data.photo_material(name, image, emission)
            created.append(mat)
            mesh.materials.append(mat)
            obj = object_data_add(context, mesh, operator=self)  # at the 3D cursor, selected and active
            created.append(obj)
            if self.as_points:
                # half the gap between neighbouring samples at each point's depth, a little more to close it
                spacing = np.abs(verts[:, 1]) * (max(1, self.stride) / max(intr.fx, 1.0))
                blender_data.points_modifier(obj, mat, radius=0.6 * spacing)
                created.append(obj.modifiers[-1].node_group)
            metric = result.depth.kind == "metric"
            unit_scale = context.scene.unit_settings.scale_length or 1.0
            if metric and context.scene.unit_settings.system != "NONE" and unit_scale != 1.0:
                obj.scale = obj.scale * (1.0 / unit_scale)  # vertices are metres; scene units are not
            obj["depthstudio"] = {
                **_plain(result.metadata),
                "image": os.path.abspath(self.filepath),
                "route": result.route,
                "units": "metres" if metric else "scene units",
            }
            if self.create_camera:
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
                for key, value in render.items():
                    setattr(context.scene.render, key, value)
                context.scene.camera = cam_obj
        except BaseException:
            blender_data.remove_ids(reversed(created))
            raise
        return obj


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
    if isinstance(exc, engine.AddonError):
        return True
    try:
        from depthstudio.errors import DepthStudioError
    except ImportError:
        return False
    return isinstance(exc, DepthStudioError)


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
