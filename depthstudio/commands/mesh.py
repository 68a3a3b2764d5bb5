"""`depthstudio mesh INPUT... -o OUT`: photos to textured meshes or point clouds, with a model or your depth.

Outputs already complete are skipped (so a stopped batch resumes) unless --overwrite; one failing
input never stops the rest; the exit status is 0 only when every input succeeded.
"""
from __future__ import annotations

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
    p = sub.add_parser(
        "mesh", help="photos to textured 3D meshes or point clouds (OBJ, PLY, GLB, USDZ)",
        description="Turn photos into camera-frame textured meshes (cut at depth edges) or point clouds, "
                    "with a depth model or with depth you bring (--depth).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively) or .txt lists")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="output folder")
    p.add_argument("--format", default=None, metavar="LIST",
                   help=f"comma-separated formats from obj,ply,glb,usdz (default {DEFAULT_FORMATS}; "
                        f"{DEFAULT_POINT_FORMATS} with --points)")
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

    mesh_settings = mesh_settings_from_args(args)
    formats = parse_formats(args.format or (DEFAULT_POINT_FORMATS if mesh_settings.points else DEFAULT_FORMATS))
    camera, mapping = settings_from_args(args)
    cleanup = point_cleanup_from_args(args)
    if cleanup.active and not mesh_settings.points:
        raise SettingsError("--voxel-size, --remove-outliers and --point-normals apply to point clouds: add --points")
    source = DepthSource.from_args(args)
    if source.depth is not None and not source.embedded and not source.depth.exists():
        raise InputError(f"{source.depth}: depth file or folder not found (--depth)")
    paths = expand_inputs(args.inputs)
    out_dir = ensure_dir(args.output)
    stems = output_stems(paths)
    textured = not mesh_settings.points

    pending = [p for p in paths if args.overwrite or not is_complete(out_dir, stems[p], formats, textured)]
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
            export(geometry, out_dir, stem, formats, metadata)
        except MemoryError:
            raise InputError(f"{path}: out of memory; try --max-faces or --stride") from None
        return None

    report = run_batch(paths, work, desc="mesh")
    what = "point clouds written" if mesh_settings.points else "meshes written"
    print(report.summary(what) + f" -> {out_dir}", file=sys.stdout)
    return report.exit_code
