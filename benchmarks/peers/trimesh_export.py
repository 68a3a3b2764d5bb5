"""The trimesh-based writers that depthstudio.geometry.export replaced (main at 5273a5e), kept verbatim
as the peer of benchmarks/bench_geometry.py: `depthstudio mesh` wall time and peak memory against them."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from depthstudio.errors import OutputError, SettingsError
from depthstudio.geometry.mesh import DepthMesh
from depthstudio.geometry.points import PointCloud
from depthstudio.io.atomic import atomic_path, ensure_dir, write_bytes, write_text

FORMATS = ("obj", "ply", "glb", "usdz")
#: AR Quick Look handles textures up to about this size per side; larger photos are downscaled in USDZ only.
USDZ_MAX_TEXTURE = 4096


def parse_formats(text: str | list | tuple) -> tuple[str, ...]:
    items = text.split(",") if isinstance(text, str) else list(text)
    formats = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in items if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise SettingsError(f"unknown export format {', '.join(unknown) or '(none)'}; choose from {','.join(FORMATS)}")
    return formats


def output_paths(out_dir: str | os.PathLike, stem: str, formats=FORMATS, textured: bool = True) -> list[Path]:
    """Every file an export of ``formats`` writes (the camera.json last)."""
    out = Path(out_dir)
    paths: list[Path] = []
    for fmt in parse_formats(formats):
        paths.append(out / f"{stem}.{fmt}")
        if fmt == "obj" and textured:
            paths += [out / f"{stem}.mtl", out / f"{stem}_texture.png"]
    paths.append(out / f"{stem}.camera.json")
    return paths


def is_complete(out_dir, stem: str, formats=FORMATS, textured: bool = True) -> bool:
    return all(p.is_file() and p.stat().st_size > 0 for p in output_paths(out_dir, stem, formats, textured))


def vertex_colors(obj: DepthMesh | PointCloud) -> np.ndarray | None:
    """(N, 3) uint8 colours: the photo sampled at each vertex's UV (nearest pixel)."""
    if isinstance(obj, PointCloud):
        return obj.colors
    if obj.texture is None:
        return None
    h, w = obj.texture.shape[:2]
    x = np.clip((obj.uvs[:, 0] * w).astype(np.int64), 0, w - 1)
    y = np.clip(((1.0 - obj.uvs[:, 1]) * h).astype(np.int64), 0, h - 1)
    return obj.texture[y, x, :3]


def _to_json(data) -> str:
    def default(value):
        if isinstance(value, (np.integer,)):
            return int(value)
        if isinstance(value, (np.floating,)):
            return float(value)
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, Path):
            return str(value)
        raise TypeError(f"not JSON serialisable: {type(value)}")

    return json.dumps(data, indent=2, default=default) + "\n"


def export(obj: DepthMesh | PointCloud, out_dir: str | os.PathLike, stem: str, formats=FORMATS,
           metadata: dict | None = None) -> list[Path]:
    """Write ``obj`` as each of ``formats`` into ``out_dir`` plus ``<stem>.camera.json``; returns the paths."""
    formats = parse_formats(formats)
    out = ensure_dir(out_dir)
    written: list[Path] = []
    for fmt in formats:
        writer = {"obj": _write_obj, "ply": _write_ply, "glb": _write_glb, "usdz": _write_usdz}[fmt]
        try:
            written += writer(obj, out, stem)
        except (OSError, MemoryError) as exc:
            raise OutputError(f"cannot write {out / (stem + '.' + fmt)}: {exc}") from None
    meta = dict(metadata or {})
    intrinsics = getattr(obj, "intrinsics", None)
    if "intrinsics" not in meta and intrinsics is not None:
        meta["intrinsics"] = intrinsics.to_dict()
    meta.setdefault("frame", "camera frame, glTF convention: x right, y up, camera at the origin looking down -z")
    meta["files"] = [p.name for p in written]
    if isinstance(obj, DepthMesh):
        meta["geometry"] = {"type": "mesh", "vertices": len(obj.vertices), "faces": obj.face_count,
                            "stride": obj.stride, "decimated": obj.decimated}
    else:
        meta["geometry"] = {"type": "points", "points": len(obj.points)}
    written.append(write_text(out / f"{stem}.camera.json", _to_json(meta)))
    return written


# --- OBJ -------------------------------------------------------------------------------------------

def _write_obj(obj, out: Path, stem: str) -> list[Path]:
    import trimesh
    from PIL import Image

    if isinstance(obj, PointCloud):
        cloud = trimesh.PointCloud(obj.points, colors=obj.colors)
        return [write_text(out / f"{stem}.obj", trimesh.exchange.obj.export_obj(cloud))]
    if obj.texture is None:
        mesh = trimesh.Trimesh(obj.vertices, obj.faces, vertex_normals=obj.normals, process=False)
        return [write_text(out / f"{stem}.obj", trimesh.exchange.obj.export_obj(mesh, include_texture=False))]
    material = trimesh.visual.material.SimpleMaterial(
        image=Image.fromarray(obj.texture), name=f"{stem}_texture",
        diffuse=[255, 255, 255, 255], ambient=[255, 255, 255, 255], specular=[0, 0, 0, 255], glossiness=1.0,
    )
    mesh = trimesh.Trimesh(obj.vertices, obj.faces, vertex_normals=obj.normals,
                           visual=trimesh.visual.TextureVisuals(uv=obj.uvs, material=material), process=False)
    text, files = trimesh.exchange.obj.export_obj(mesh, include_normals=True, return_texture=True,
                                                  mtl_name=f"{stem}.mtl")
    texture_name, mtl_name = f"{stem}_texture.png", f"{stem}.mtl"
    if set(files) != {texture_name, mtl_name}:  # trimesh names the texture after the material
        raise OutputError(f"unexpected OBJ side files from trimesh: {sorted(files)}")
    paths = [write_bytes(out / texture_name, files[texture_name]), write_bytes(out / mtl_name, files[mtl_name])]
    paths.insert(0, write_text(out / f"{stem}.obj", text))
    return paths


# --- PLY -------------------------------------------------------------------------------------------

def _write_ply(obj, out: Path, stem: str) -> list[Path]:
    import trimesh

    colors = vertex_colors(obj)
    if isinstance(obj, PointCloud) and obj.normals is not None:  # trimesh's PointCloud PLY has no normals
        import open3d as o3d

        target = out / f"{stem}.ply"
        with atomic_path(target) as tmp:
            if not o3d.io.write_point_cloud(str(tmp), obj.to_open3d(), write_ascii=False):
                raise OutputError(f"Open3D could not write {target}")
        return [target]
    if isinstance(obj, PointCloud):
        geometry = trimesh.PointCloud(obj.points, colors=colors)
        data = trimesh.exchange.ply.export_ply(geometry, encoding="binary")
    else:
        geometry = trimesh.Trimesh(obj.vertices, obj.faces, vertex_normals=obj.normals, vertex_colors=colors,
                                   process=False)
        data = trimesh.exchange.ply.export_ply(geometry, encoding="binary", vertex_normal=True)
    return [write_bytes(out / f"{stem}.ply", data)]


# --- GLB -------------------------------------------------------------------------------------------

def _write_glb(obj, out: Path, stem: str) -> list[Path]:
    import trimesh

    if isinstance(obj, PointCloud):
        geometry = trimesh.PointCloud(obj.points, colors=obj.colors)
    else:
        geometry = obj.to_trimesh()
        if obj.texture is None:
            geometry.visual = trimesh.visual.ColorVisuals(geometry)
    scene = trimesh.Scene()
    scene.add_geometry(geometry, node_name=stem, geom_name=stem)
    data = trimesh.exchange.gltf.export_glb(scene, include_normals=not isinstance(obj, PointCloud))
    return [write_bytes(out / f"{stem}.glb", data)]


# --- USDZ ------------------------------------------------------------------------------------------

def _write_usdz(obj, out: Path, stem: str) -> list[Path]:
    try:
        from pxr import Gf, Sdf, Usd, UsdGeom, UsdShade, UsdUtils, Vt
    except ImportError:
        raise OutputError("writing USDZ needs usd-core (pip install usd-core)") from None
    from PIL import Image

    target = out / f"{stem}.usdz"
    with tempfile.TemporaryDirectory(prefix="depthstudio-usd-") as tmp:
        layer = Path(tmp) / f"{stem}.usdc"
        stage = Usd.Stage.CreateNew(str(layer))
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
        UsdGeom.SetStageMetersPerUnit(stage, 1.0)
        root = UsdGeom.Xform.Define(stage, "/Root")
        stage.SetDefaultPrim(root.GetPrim())
        points = np.ascontiguousarray(obj.points if isinstance(obj, PointCloud) else obj.vertices, dtype=np.float32)
        lo, hi = points.min(axis=0), points.max(axis=0)
        extent = Vt.Vec3fArray([Gf.Vec3f(*map(float, lo)), Gf.Vec3f(*map(float, hi))])
        if isinstance(obj, PointCloud):
            prim = UsdGeom.Points.Define(stage, f"/Root/{_usd_name(stem)}")
            prim.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(points))
            prim.CreateExtentAttr(extent)
            size = float(np.linalg.norm(hi - lo)) / max(1.0, np.sqrt(len(points))) or 0.01
            prim.CreateWidthsAttr(Vt.FloatArray([size]))
            prim.SetWidthsInterpolation(UsdGeom.Tokens.constant)
            if obj.colors is not None:
                colors = UsdGeom.PrimvarsAPI(prim).CreatePrimvar("displayColor", Sdf.ValueTypeNames.Color3fArray,
                                                                 UsdGeom.Tokens.vertex)
                colors.Set(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(obj.colors[:, :3] / 255.0, dtype=np.float32)))
        else:
            mesh = UsdGeom.Mesh.Define(stage, f"/Root/{_usd_name(stem)}")
            mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(points))
            mesh.CreateExtentAttr(extent)
            mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(obj.faces), 3, np.int32)))
            mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(np.ascontiguousarray(obj.faces.ravel(), np.int32)))
            mesh.CreateNormalsAttr(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(obj.normals, np.float32)))
            mesh.SetNormalsInterpolation(UsdGeom.Tokens.vertex)
            mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
            mesh.CreateDoubleSidedAttr(True)
            st = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex)
            st.Set(Vt.Vec2fArray.FromNumpy(np.ascontiguousarray(obj.uvs, np.float32)))
            material = UsdShade.Material.Define(stage, "/Root/Materials/Photo")
            surface = UsdShade.Shader.Define(stage, "/Root/Materials/Photo/Surface")
            surface.CreateIdAttr("UsdPreviewSurface")
            surface.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(1.0)
            surface.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
            if obj.texture is not None:
                texture_name = f"{stem}_texture.png"
                image = Image.fromarray(obj.texture)
                if max(image.size) > USDZ_MAX_TEXTURE:
                    scale = USDZ_MAX_TEXTURE / max(image.size)
                    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                         Image.LANCZOS)
                image.save(Path(tmp) / texture_name)
                reader = UsdShade.Shader.Define(stage, "/Root/Materials/Photo/UV")
                reader.CreateIdAttr("UsdPrimvarReader_float2")
                reader.CreateInput("varname", Sdf.ValueTypeNames.Token).Set("st")
                sampler = UsdShade.Shader.Define(stage, "/Root/Materials/Photo/Texture")
                sampler.CreateIdAttr("UsdUVTexture")
                sampler.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(texture_name)
                sampler.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
                sampler.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set("clamp")
                sampler.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("clamp")
                sampler.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
                surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(
                    sampler.ConnectableAPI(), "rgb")
            else:
                surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(0.8, 0.8, 0.8))
            material.CreateSurfaceOutput().ConnectToSource(surface.ConnectableAPI(), "surface")
            UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(material)
        stage.GetRootLayer().Save()
        with atomic_path(target) as tmp_target:
            if not UsdUtils.CreateNewARKitUsdzPackage(Sdf.AssetPath(str(layer)), str(tmp_target)):
                raise OutputError(f"usd-core could not package {target}")
    return [target]


def _usd_name(stem: str) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in stem) or "mesh"
    return name if not name[0].isdigit() else f"_{name}"
