"""`depthstudio mesh INPUT... -o OUT`: photos to textured meshes or point clouds, with a model or your depth.

Outputs already complete are skipped (so a stopped batch resumes) unless --overwrite; one failing
input never stops the rest; the exit status is 0 only when every input succeeded.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from depthstudio.batch import BatchWork, Item, split_done
from depthstudio.commands._flags import add_sections, depth_sections, depth_source, read_sections, save_settings
from depthstudio.commands.common import (
    BatchReport,
    add_ray_flags,
    execute,
    expand_items,
    for_urls,
    path_or_url,
    ray_settings_from_args,
)
from depthstudio.errors import InputError, SettingsError


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
    p.add_argument("-o", "--output", required=True, type=path_or_url, metavar="OUT",
                   help="output folder (or an object-store URL, e.g. s3://bucket/meshes/, with fsspec)")
    p.add_argument("--overwrite", action="store_true", help="redo images whose outputs already exist")
    add_sections(p, sections())
    add_ray_flags(p)
    p.set_defaults(func=run)


@dataclass
class MeshWork(BatchWork):
    """One photo to its mesh or point cloud files. ``sections`` are the command's settings objects
    (export, mesh, points, depth, mapping, camera, model): plain data that travels to Ray workers."""

    sections: dict

    def __post_init__(self) -> None:
        self._source = depth_source(self.sections)  # per process: rebuilt (without a model) where unpickled
        self._formats = self.sections["export"].resolved(self.sections["mesh"].points)

    def __setstate__(self, state) -> None:
        super().__setstate__(state)
        self.__post_init__()

    @property
    def what(self) -> str:  # type: ignore[override]
        return "point clouds written" if self.sections["mesh"].points else "meshes written"

    def prepare(self) -> None:
        if self._source.uses_model:
            self._source.estimator()  # a model that cannot load is one error for the whole batch

    def targets(self, item: Item) -> list[Path]:
        from depthstudio.geometry.export import output_paths

        return output_paths(item.out, item.stem, self._formats, not self.sections["mesh"].points)

    def written(self, item: Item) -> list[Path]:
        return [*self.targets(item), Path(item.out) / f"{item.stem}.settings.json"]

    def __call__(self, item: Item) -> str:
        from depthstudio.geometry.export import export
        from depthstudio.geometry.pipeline import build_mesh
        from depthstudio.io.images import load_image

        s, out_dir = self.sections, Path(item.out)
        cleanup, mesh_settings = s["points"], s["mesh"]
        job = getattr(self, "_job", None)  # local runs: a cancel while a large mesh builds writes nothing
        try:
            photo = load_image(item.path)
            depth = self._source.depth_for(photo)
            geometry, _, metadata = build_mesh(photo, depth, s["camera"], s["mapping"], mesh_settings)
            if cleanup.active:
                from depthstudio.geometry.points import PointCloud, clean_points

                assert isinstance(geometry, PointCloud)  # clean-up applies to --points, checked in run()
                geometry = clean_points(geometry, cleanup)
                metadata["point_cleanup"] = cleanup.to_dict()
            splats = None
            if "splat" in self._formats and getattr(geometry, "decimated", False):
                from depthstudio.geometry.pipeline import splat_source

                splats = splat_source(photo, depth, s["camera"], s["mapping"], mesh_settings)
            if job is not None:
                job.check()
            settings_file = save_settings(out_dir / f"{item.stem}.settings.json", "mesh", s)
            try:
                written = export(geometry, out_dir, item.stem, self._formats, metadata, s["export"],
                                 job=job.sub(0) if job is not None else None, splats=splats)
            except BaseException:
                settings_file.unlink(missing_ok=True)  # a failed export leaves nothing behind
                raise
        except MemoryError:
            raise InputError(f"{item.path}: out of memory; try --max-faces or --stride") from None
        return "\n".join(file_line(p, geometry, splats) for p in written)


def run(args) -> int:
    ray = ray_settings_from_args(args)
    s = read_sections(args, sections())
    if s["points"].active and not s["mesh"].points:
        raise SettingsError("--voxel-size, --remove-outliers and --point-normals apply to point clouds: add --points")
    work = MeshWork(s)
    work._job = getattr(args, "job", None)
    items, out_dir = expand_items(args.inputs, args.output)
    work = for_urls(work, items)
    report = BatchReport()
    todo = split_done(work, items, report, args.overwrite)
    execute(work, todo, report, ray, desc="mesh", overwrite=args.overwrite, job=getattr(args, "job", None))
    print(report.summary(work.what) + f" -> {out_dir}" + budget_note(s["mesh"]), file=sys.stdout)
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
