"""`depthstudio mesh INPUT... -o OUT`: photos to textured meshes or point clouds, with a model or your depth.

Outputs already complete are skipped (so a stopped batch resumes) unless --overwrite; one failing
input never stops the rest; the exit status is 0 only when every input succeeded.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from depthstudio.batch import BatchWork, Item, make_items, split_done
from depthstudio.commands._flags import (
    DepthSource, add_camera_flags, add_depth_flags, add_mesh_flags, add_model_flags, mesh_settings_from_args,
    point_cleanup_from_args, settings_from_args,
)
from depthstudio.commands.common import (  # noqa: F401 - output_stems is used by the app
    BatchReport, add_ray_flags, execute, expand_inputs, output_stems, ray_options_from_args,
)
from depthstudio.errors import InputError, SettingsError
from depthstudio.geometry.camera import CameraSettings
from depthstudio.geometry.depth import DepthMapping
from depthstudio.geometry.mesh import MeshSettings
from depthstudio.geometry.points import PointCleanup

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
    add_ray_flags(p)
    p.set_defaults(func=run)


@dataclass
class MeshWork(BatchWork):
    """One photo to its mesh or point cloud files: plain settings, so it travels to Ray workers."""

    source: DepthSource
    camera: CameraSettings
    mapping: DepthMapping
    mesh: MeshSettings
    cleanup: PointCleanup
    formats: tuple[str, ...]

    @property
    def what(self) -> str:  # type: ignore[override]
        return "point clouds written" if self.mesh.points else "meshes written"

    def prepare(self) -> None:
        if self.source.uses_model:
            self.source.estimator()  # a model that cannot load is one error for the whole batch

    def targets(self, item: Item) -> list[Path]:
        from depthstudio.geometry.export import output_paths

        return output_paths(item.out, item.stem, self.formats, not self.mesh.points)

    def __call__(self, item: Item) -> None:
        from depthstudio.geometry.export import export
        from depthstudio.geometry.pipeline import build_mesh
        from depthstudio.io.images import load_image

        try:
            photo = load_image(item.path)
            depth = self.source.depth_for(photo)
            geometry, _, metadata = build_mesh(photo, depth, self.camera, self.mapping, self.mesh)
            if self.cleanup.active:
                from depthstudio.geometry.points import clean_points

                geometry = clean_points(geometry, self.cleanup)
                metadata["point_cleanup"] = asdict(self.cleanup)
            export(geometry, Path(item.out), item.stem, self.formats, metadata)
        except MemoryError:
            raise InputError(f"{item.path}: out of memory; try --max-faces or --stride") from None


def run(args) -> int:
    from depthstudio.geometry.export import parse_formats
    from depthstudio.io.atomic import ensure_dir

    ray = ray_options_from_args(args)
    mesh_settings = mesh_settings_from_args(args)
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
    work = MeshWork(source, camera, mapping, mesh_settings, cleanup, formats)
    report = BatchReport()
    todo = split_done(work, make_items(paths, out_dir, output_stems(paths)), report, args.overwrite)
    execute(work, todo, report, ray, desc="mesh", overwrite=args.overwrite)
    print(report.summary(work.what) + f" -> {out_dir}", file=sys.stdout)
    return report.exit_code
