"""Arrays from the core -> Blender data, with bulk foreach_set calls (no per-vertex Python loops).

The core's geometry is in the camera frame, glTF convention (x right, y up, looking down -z).
Blender is Z-up, so vertices are turned the way Blender's glTF importer turns them:
(x, y, z) -> (x, -z, y); the camera then looks along +Y. Rotations keep the triangles'
counter-clockwise order, so faces stay facing the camera.
"""
from __future__ import annotations

import math
import os

import bpy
import numpy as np
from mathutils import Matrix

#: Camera-frame (glTF) -> Blender object space.
GLTF_TO_BLENDER = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=np.float32)
#: Rotation that turns a Blender camera (looking down its local -Z, up +Y) to look along +Y, up +Z.
CAMERA_ROTATION = Matrix.Rotation(math.pi / 2.0, 4, "X")
UV_NAME = "UVMap"
#: Up to this many triangles the edge table is built with numpy (faster, see triangle_edges);
#: beyond it Blender's threaded edge search wins.
NUMPY_EDGES_MAX_FACES = 4_000_000
COLOR_NAME = "Col"


def to_blender_axes(points: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(points, dtype=np.float32) @ GLTF_TO_BLENDER.T)


def triangle_edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blender's edge table for triangles: (E, 2) int32 unique edges and, per face corner, the
    index of the edge from that corner to the next. Faces from a pixel grid come nearly sorted,
    so a stable (adaptive) sort beats Blender's own edge search (update(calc_edges=True)) up to
    a few million faces (about 3x at 2M); beyond that Blender's threaded search is faster."""
    n = len(faces)
    # corners column by column (all first corners, then seconds, thirds): each column of a grid's
    # faces is nearly sorted, so the stable sort merges a few long runs
    v0 = faces.T.ravel()
    v1 = faces[:, [1, 2, 0]].T.ravel()
    lo = np.minimum(v0, v1)
    hi = np.maximum(v0, v1)
    key = (lo.astype(np.int64) << 32) | hi
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    del key
    first = np.empty(len(sorted_key), bool)
    first[:1] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=first[1:])
    del sorted_key
    column_edge = np.empty(len(order), np.int32)
    column_edge[order] = np.cumsum(first, dtype=np.int32) - 1
    pick = order[first]
    edges = np.empty((len(pick), 2), np.int32)
    edges[:, 0] = lo[pick]
    edges[:, 1] = hi[pick]
    corner_edge = np.ascontiguousarray(column_edge.reshape(3, n).T).ravel()  # back to face-corner order
    return edges, corner_edge


def _set_attribute(mesh, name: str, field: str, values: np.ndarray) -> bool:
    attr = mesh.attributes.get(name)
    if attr is None:
        return False
    attr.data.foreach_set(field, values.ravel())
    return True


def mesh_from_arrays(name: str, vertices: np.ndarray, faces: np.ndarray | None = None,
                     uvs: np.ndarray | None = None, colors: np.ndarray | None = None,
                     smooth: bool = True) -> bpy.types.Mesh:
    """A new mesh from (N, 3) float vertices, (M, 3) int triangles, per-vertex (N, 2) UVs and
    (N, 3) uint8 colours. Every array goes in with one foreach_set on Blender's attribute arrays
    (position, .edge_verts, .corner_vert, .corner_edge, the UV map), which are plain copies."""
    vertices = np.ascontiguousarray(vertices, dtype=np.float32).reshape(-1, 3)
    mesh = bpy.data.meshes.new(name)
    try:
        mesh.vertices.add(len(vertices))
        if not _set_attribute(mesh, "position", "vector", vertices):
            mesh.vertices.foreach_set("co", vertices.ravel())
        if faces is not None and len(faces):
            faces = np.ascontiguousarray(faces, dtype=np.int32).reshape(-1, 3)
            n_faces = len(faces)
            mesh.loops.add(3 * n_faces)
            mesh.polygons.add(n_faces)
            mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * n_faces, 3, dtype=np.int32))
            if not _set_attribute(mesh, ".corner_vert", "value", faces):  # Blender < 4.0 layout
                mesh.loops.foreach_set("vertex_index", faces.ravel())
            numpy_edges = n_faces <= NUMPY_EDGES_MAX_FACES and bpy.app.version >= (4, 0, 0)
            if numpy_edges:
                edges, corner_edge = triangle_edges(faces)
                mesh.edges.add(len(edges))
                numpy_edges = _set_attribute(mesh, ".edge_verts", "value", edges) \
                    and _set_attribute(mesh, ".corner_edge", "value", corner_edge)
                del edges, corner_edge
            mesh.update(calc_edges=not numpy_edges)
            if uvs is not None:
                layer = mesh.uv_layers.new(name=UV_NAME)
                # one 8-byte item per vertex: a 1-D take is much faster than a row gather
                flat = np.ascontiguousarray(uvs, dtype=np.float32).view(np.int64).ravel()
                loop_uvs = np.take(flat, faces.ravel()).view(np.float32)
                if not _set_attribute(mesh, layer.name, "vector", loop_uvs):
                    layer.data.foreach_set("uv", loop_uvs.ravel())
        if colors is not None:
            attr = mesh.color_attributes.new(COLOR_NAME, "BYTE_COLOR", "POINT")
            rgba = np.ones((len(vertices), 4), dtype=np.float32)
            rgba[:, :3] = np.asarray(colors, dtype=np.float32)[:, :3] / 255.0
            attr.data.foreach_set("color_srgb", rgba.ravel())
            mesh.color_attributes.active_color = attr
        mesh.update()
        if smooth and len(mesh.polygons) and hasattr(mesh, "shade_smooth"):
            mesh.shade_smooth()
    except BaseException:
        bpy.data.meshes.remove(mesh)
        raise
    return mesh


#: Formats Blender reads itself: their images load lazily (decoded when first drawn or rendered).
BLENDER_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".exr", ".tga", ".hdr")


def load_photo_image(photo, filepath: str) -> bpy.types.Image:
    """The photo as a Blender image. Blender ignores EXIF orientation and reads no HEIC, so when
    its pixels would differ from what the core loaded, the core's pixels are packed instead.

    The file's size and orientation come from its header (Pillow), so Blender does not decode a
    12 MP photo inside the operator: it does that lazily, when the texture is first drawn."""
    image = None
    header = _header(filepath)
    lazy_ok = (header is not None and header[0] == (photo.width, photo.height) and header[1] in (None, 1)
               and os.path.splitext(filepath)[1].lower() in BLENDER_IMAGE_SUFFIXES)
    try:
        image = bpy.data.images.load(os.path.abspath(filepath), check_existing=True)
        size = (photo.width, photo.height) if lazy_ok else tuple(image.size)
    except RuntimeError:
        size = None
    if image is not None and size == (photo.width, photo.height) and (lazy_ok or _exif_orientation(filepath) in (None, 1)):
        return image
    if image is not None and image.users == 0:
        bpy.data.images.remove(image)
    name = os.path.basename(filepath)
    image = bpy.data.images.new(name, width=photo.width, height=photo.height, alpha=False)
    rgba = np.ones((photo.height, photo.width, 4), dtype=np.float32)
    rgba[..., :3] = photo.rgb[::-1].astype(np.float32) / 255.0  # Blender stores rows bottom-up
    image.pixels.foreach_set(rgba.ravel())
    image.pack()
    image["depthstudio_source"] = os.path.abspath(filepath)
    return image


def _header(filepath: str) -> tuple[tuple[int, int], int | None] | None:
    """(size, EXIF orientation) from the file's header without decoding its pixels (PNG: an eXIf
    chunk before the image data; after it, or in other formats, Pillow's getexif)."""
    try:
        from PIL import Image

        with Image.open(filepath) as img:
            if img.format == "PNG":
                raw = img.info.get("exif")
                if raw is None:
                    return img.size, None
                exif = Image.Exif()
                exif.load(raw)
                return img.size, int(exif.get(0x0112, 1))
            return img.size, int(img.getexif().get(0x0112, 1))
    except Exception:
        return None


def _exif_orientation(filepath: str) -> int | None:
    try:
        from PIL import Image

        with Image.open(filepath) as img:
            return int(img.getexif().get(0x0112, 1))
    except Exception:
        return None


def photo_material(name: str, image: bpy.types.Image, emission: bool) -> bpy.types.Material:
    """The photo as an image texture; "emission" shows its colours unlit, exactly as photographed."""
    mat = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    else:  # 5.0 materials always have a node tree; the Principled BSDF may not be created for us
        if mat.node_tree is None:
            mat.use_nodes = True
    tree = mat.node_tree
    nodes, links = tree.nodes, tree.links
    for node in list(nodes):
        nodes.remove(node)
    out = nodes.new("ShaderNodeOutputMaterial")
    out.location = (400, 0)
    tex = nodes.new("ShaderNodeTexImage")
    tex.location = (-400, 0)
    tex.image = image
    tex.extension = "EXTEND"  # no wrap-around bleeding at the photo's borders
    if emission:
        shader = nodes.new("ShaderNodeEmission")
        links.new(tex.outputs["Color"], shader.inputs["Color"])
    else:
        shader = nodes.new("ShaderNodeBsdfPrincipled")
        links.new(tex.outputs["Color"], shader.inputs["Base Color"])
        shader.inputs["Roughness"].default_value = 1.0
    shader.location = (100, 0)
    links.new(shader.outputs[0], out.inputs["Surface"])
    nodes.active = tex
    return mat


def points_material(name: str, emission: bool) -> bpy.types.Material:
    """Vertex colours of a point cloud (the "Col" attribute)."""
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    for node in list(nodes):
        nodes.remove(node)
    out = nodes.new("ShaderNodeOutputMaterial")
    attr = nodes.new("ShaderNodeAttribute")
    attr.attribute_name = COLOR_NAME
    shader = nodes.new("ShaderNodeEmission" if emission else "ShaderNodeBsdfPrincipled")
    links.new(attr.outputs["Color"], shader.inputs["Color" if emission else "Base Color"])
    links.new(shader.outputs[0], out.inputs["Surface"])
    return mat


def points_modifier(obj: bpy.types.Object, material: bpy.types.Material, radius: np.ndarray) -> None:
    """Geometry Nodes "Mesh to Points" so that renderers draw the cloud's vertices as discs, each
    with its own radius (stored as the "radius" point attribute: farther points cover more)."""
    attr = obj.data.attributes.new("radius", "FLOAT", "POINT")
    attr.data.foreach_set("value", np.ascontiguousarray(radius, dtype=np.float32))
    group = bpy.data.node_groups.new(f"{obj.name} points", "GeometryNodeTree")
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = group.nodes, group.links
    gin = nodes.new("NodeGroupInput")
    gout = nodes.new("NodeGroupOutput")
    to_points = nodes.new("GeometryNodeMeshToPoints")
    named = nodes.new("GeometryNodeInputNamedAttribute")
    named.data_type = "FLOAT"
    named.inputs["Name"].default_value = "radius"
    links.new(named.outputs[0], to_points.inputs["Radius"])
    set_mat = nodes.new("GeometryNodeSetMaterial")
    set_mat.inputs["Material"].default_value = material
    links.new(gin.outputs[0], to_points.inputs["Mesh"])
    links.new(to_points.outputs["Points"], set_mat.inputs["Geometry"])
    links.new(set_mat.outputs["Geometry"], gout.inputs[0])
    mod = obj.modifiers.new("DepthStudio points", "NODES")
    mod.node_group = group


def camera_data(name: str, intr, clip_end: float) -> tuple[bpy.types.Camera, dict]:
    """A camera whose lens, sensor and shift reproduce fx, fy, cx, cy for a W x H render.

    Returns the camera and the render settings it needs (resolution and pixel aspect): Blender's
    focal length is horizontal here (sensor_fit HORIZONTAL), fy != fx becomes a non-square pixel.
    """
    w, h = int(intr.width), int(intr.height)
    fx, fy, cx, cy = float(intr.fx), float(intr.fy), float(intr.cx), float(intr.cy)
    # Blender: fy / fx = pixel_aspect_x / pixel_aspect_y, and both must be >= 1.
    if fy >= fx:
        pax, pay = fy / fx, 1.0
    else:
        pax, pay = 1.0, fx / fy
    cam = bpy.data.cameras.new(name)
    cam.type = "PERSP"
    cam.sensor_fit = "HORIZONTAL"
    cam.sensor_width = 36.0
    cam.sensor_height = 36.0 * (h * pay) / (w * pax)
    cam.lens = fx * cam.sensor_width / w
    # With a horizontal sensor fit both shifts are fractions of the width, measured in widths of
    # a pixel; a pixel is pay / pax of them tall.
    cam.shift_x = (w / 2.0 - cx) / w
    cam.shift_y = (cy - h / 2.0) * (pay / pax) / w
    cam.clip_start = 0.01
    cam.clip_end = max(100.0, clip_end)
    render = {"resolution_x": w, "resolution_y": h, "pixel_aspect_x": pax, "pixel_aspect_y": pay}
    return cam, render


def remove_ids(ids) -> None:
    """Remove data-blocks created by a failed run (objects first, then their data)."""
    kinds = (bpy.types.Object, bpy.types.Camera, bpy.types.Mesh, bpy.types.Material, bpy.types.Image,
             bpy.types.NodeTree)
    collections = {bpy.types.Object: bpy.data.objects, bpy.types.Camera: bpy.data.cameras,
                   bpy.types.Mesh: bpy.data.meshes, bpy.types.Material: bpy.data.materials,
                   bpy.types.Image: bpy.data.images, bpy.types.NodeTree: bpy.data.node_groups}
    for kind in kinds:
        for item in list(ids):
            try:
                if isinstance(item, kind):
                    collections[kind].remove(item)
            except ReferenceError:
                pass


def read_exr(path: str) -> np.ndarray:
    """An EXR's first channel, (H, W) float32, top row first, through Blender's image loader."""
    from .engine import AddonError

    try:
        image = bpy.data.images.load(os.path.abspath(path), check_existing=False)
    except RuntimeError as exc:
        raise AddonError(f"{path}: cannot read EXR ({exc})") from None
    try:
        w, h = image.size
        channels = image.channels
        if w == 0 or h == 0:
            raise AddonError(f"{path}: cannot read EXR (no pixels); the file may be corrupt")
        pixels = np.empty(w * h * channels, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return np.ascontiguousarray(pixels.reshape(h, w, channels)[::-1, :, 0])
