"""`depthstudio mesh INPUT... -o OUT`: photos to textured meshes or point clouds, with a model or your depth.

Outputs already complete are skipped (so a stopped batch resumes) unless --overwrite; one failing
input never stops the rest; the exit status is 0 only when every input succeeded.
"""
from __future__ import annotations

import sys
from pathlib import Path

from depthstudio.commands._flags import add_sections, depth_sections, depth_source, read_sections, save_settings
from depthstudio.commands.common import expand_inputs, run_batch
from depthstudio.errors import InputError, SettingsError
from depthstudio.io.images import output_stems


def sections():
    from depthstudio.geometry.export import ExportSettings
    from depthstudio.geometry.mesh import MeshSettings
    from depthstudio.geometry.points import PointCleanup

    return (ExportSettings, MeshSettings, PointCleanup) + depth_sections()


def add_parser(sub) -> None:
    p = sub.add_parser(
        "mesh", help="photos to textured 3D meshes, point clouds or Gaussian splats (OBJ, PLY, GLB, USDZ, splat)",
        description="Turn photos into camera-frame textured meshes (cut at depth edges) or point clouds, "
                    "with a depth model or with depth you bring (--depth).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively) or .txt lists")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="redo images whose outputs already exist")
    add_sections(p, sections())
    p.set_defaults(func=run)


def run(args) -> int:
    from depthstudio.geometry.export import export, is_complete
    from depthstudio.geometry.pipeline import build_mesh
    from depthstudio.io.atomic import ensure_dir
    from depthstudio.io.images import load_image

    s = read_sections(args, sections())
    mesh_settings, cleanup, export_settings = s["mesh"], s["points"], s["export"]
    formats = export_settings.resolved(mesh_settings.points)
    if cleanup.active and not mesh_settings.points:
        raise SettingsError("--voxel-size, --remove-outliers and --point-normals apply to point clouds: add --points")
    source = depth_source(s)
    paths = expand_inputs(args.inputs)
    out_dir = ensure_dir(args.output)
    stems = output_stems(paths)
    textured = not mesh_settings.points

    pending = [p for p in paths if args.overwrite or not is_complete(out_dir, stems[p], formats, textured)]
    files: list[str] = []
    if pending and source.uses_model:
        source.estimator()  # a model that cannot load is one error for the whole batch, not one per image

    job = getattr(args, "job", None)

    def work(path: Path) -> str | None:
        stem = stems[path]
        if path not in pending:
            return "skipped"
        try:
            photo = load_image(path)
            depth = source.depth_for(photo)
            geometry, _, metadata = build_mesh(photo, depth, s["camera"], s["mapping"], mesh_settings)
            if cleanup.active:
                from depthstudio.geometry.points import PointCloud, clean_points

                assert isinstance(geometry, PointCloud)  # clean-up applies to --points, checked above
                geometry = clean_points(geometry, cleanup)
                metadata["point_cleanup"] = cleanup.to_dict()
            splats = None
            if "splat" in formats and getattr(geometry, "decimated", False):
                from depthstudio.geometry.pipeline import splat_source

                splats = splat_source(photo, depth, s["camera"], s["mapping"], mesh_settings)
            if job is not None:
                job.check()  # building a large mesh takes seconds: a cancel during it writes nothing
            settings_file = save_settings(out_dir / f"{stem}.settings.json", "mesh", s)
            try:
                written = export(geometry, out_dir, stem, formats, metadata, export_settings,
                                 job=job.sub(0) if job is not None else None, splats=splats)
            except BaseException:
                settings_file.unlink(missing_ok=True)  # a failed export leaves nothing behind
                raise
            files.extend(file_line(p, geometry, splats) for p in written)
        except MemoryError:
            raise InputError(f"{path}: out of memory; try --max-faces or --stride") from None
        return None

    report = run_batch(paths, work, desc="mesh", job=job)
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


def file_line(path: Path, geometry, splats=None) -> str:
    """"  name  size  faces" for one written file (faces of the mesh formats, Gaussians of a splat)."""
    from depthstudio.geometry.export import _human
    from depthstudio.geometry.mesh import DepthMesh

    name = path.name
    size = _human(path.stat().st_size) if path.exists() else "?"
    if name.endswith(".splat.ply"):
        source = splats if splats is not None else geometry
        count = f"{len(source.vertices if isinstance(source, DepthMesh) else source.points):,} Gaussians"
    elif path.suffix in (".obj", ".ply", ".glb", ".usdz"):
        count = (f"{geometry.face_count:,} faces" if isinstance(geometry, DepthMesh)
                 else f"{len(geometry.points):,} points")
    else:
        count = ""
    return f"  {name:32s} {size:>10s}  {count}".rstrip()
