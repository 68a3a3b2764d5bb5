"""`depthstudio mesh INPUT... -o OUT`: photos to textured meshes or point clouds, with a model or your depth.

Outputs already complete are skipped (so a stopped batch resumes) unless --overwrite; one failing
input never stops the rest; the exit status is 0 only when every input succeeded.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from depthstudio.commands._flags import (
    DepthSource, add_camera_flags, add_depth_flags, add_mesh_flags, add_model_flags, mesh_settings_from_args,
    point_cleanup_from_args, settings_from_args,
)
from depthstudio.commands.common import expand_inputs, output_stems, run_batch
from depthstudio.errors import InputError, SettingsError

DEFAULT_FORMATS = "obj,ply,glb,usdz"
DEFAULT_POINT_FORMATS = "ply"


def add_parser(sub) -> None:
    from depthstudio.geometry.export import ExportSettings

    p = sub.add_parser(
        "mesh", help="photos to textured 3D meshes, point clouds or Gaussian splats (OBJ, PLY, GLB, USDZ, splat)",
        description="Turn photos into camera-frame textured meshes (cut at depth edges) or point clouds, "
                    "with a depth model or with depth you bring (--depth).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively) or .txt lists")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="output folder")
    p.add_argument("--format", default=None, metavar="LIST",
                   help=f"comma-separated formats from obj,ply,glb,usdz,splat (default {DEFAULT_FORMATS}; "
                        f"{DEFAULT_POINT_FORMATS} with --points); splat writes <stem>.splat.ply, 3D Gaussian "
                        f"splats in the standard 3DGS layout")
    p.add_argument("--unlit", action=argparse.BooleanOptionalAction, default=None,
                   help="GLB/USDZ: unlit photo material (KHR_materials_unlit, emissive USD surface) so AR "
                        f"viewers show the photo's colours as they are (default {'on' if ExportSettings.unlit else 'off'})")
    p.add_argument("--overwrite", action="store_true", help="redo images whose outputs already exist")

    add_mesh_flags(p)
    add_depth_flags(p)
    add_camera_flags(p)
    add_model_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from depthstudio.geometry.export import export, is_complete, parse_formats
    from depthstudio.geometry.pipeline import build_mesh
    from depthstudio.io.atomic import ensure_dir
    from depthstudio.io.images import load_image

    from depthstudio.geometry.export import ExportSettings

    mesh_settings = mesh_settings_from_args(args)
    export_settings = ExportSettings(**({} if args.unlit is None else {"unlit": args.unlit})).validate()
    formats = parse_formats(args.format or (DEFAULT_POINT_FORMATS if mesh_settings.points else DEFAULT_FORMATS))
    camera, mapping = settings_from_args(args)
    cleanup = point_cleanup_from_args(args)
    if cleanup.active and not mesh_settings.points:
        raise SettingsError("--voxel-size, --remove-outliers and --point-normals apply to point clouds: add --points")
    source = DepthSource.from_args(args)
    if source.depth is not None and not source.depth.exists():
        raise InputError(f"{source.depth}: depth file or folder not found (--depth)")
    paths = expand_inputs(args.inputs)
    out_dir = ensure_dir(args.output)
    stems = output_stems(paths)
    textured = not mesh_settings.points

    pending = [p for p in paths if args.overwrite or not is_complete(out_dir, stems[p], formats, textured)]
    files: list[str] = []
    if pending and source.uses_model:
        source.estimator()  # a model that cannot load is one error for the whole batch, not one per image

    def work(path: Path) -> str | None:
        stem = stems[path]
        if path not in pending:
            return "skipped"
        try:
            photo = load_image(path)
            depth = source.depth_for(photo)
            geometry, _, metadata = build_mesh(photo, depth, camera, mapping, mesh_settings)
            if cleanup.active:
                from depthstudio.geometry.points import clean_points

                geometry = clean_points(geometry, cleanup)
                metadata["point_cleanup"] = asdict(cleanup)
            splats = None
            if "splat" in formats and getattr(geometry, "decimated", False):
                from depthstudio.geometry.pipeline import splat_source

                splats = splat_source(photo, depth, camera, mapping, mesh_settings)
            written = export(geometry, out_dir, stem, formats, metadata, export_settings, splats=splats)
            files.extend(file_line(p, geometry) for p in written)
        except MemoryError:
            raise InputError(f"{path}: out of memory; try --max-faces or --stride") from None
        return None

    report = run_batch(paths, work, desc="mesh")
    what = "point clouds written" if mesh_settings.points else "meshes written"
    for line in files:
        print(line, file=sys.stdout)
    print(report.summary(what) + f" -> {out_dir}" + budget_note(mesh_settings), file=sys.stdout)
    return report.exit_code


def budget_note(mesh_settings) -> str:
    if mesh_settings.points:
        return ""
    if mesh_settings.max_faces:
        return f" (decimated to at most {mesh_settings.max_faces:,} faces; --max-faces 0 for full resolution)"
    return " (full resolution)"


def file_line(path: Path, geometry) -> str:
    """"  name  size  faces" for one written file (faces of the mesh formats, Gaussians of a splat)."""
    from depthstudio.geometry.export import _human
    from depthstudio.geometry.mesh import DepthMesh

    name = path.name
    size = _human(path.stat().st_size) if path.exists() else "?"
    if name.endswith(".splat.ply"):
        count = "Gaussians"
    elif path.suffix in (".obj", ".ply", ".glb", ".usdz"):
        count = (f"{geometry.face_count:,} faces" if isinstance(geometry, DepthMesh)
                 else f"{len(geometry.points):,} points")
    else:
        count = ""
    return f"  {name:32s} {size:>10s}  {count}".rstrip()
