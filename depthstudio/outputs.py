"""Everything one photo can be exported as, in one call: 3D files, depth maps, a DoF still, a parallax clip,
a stereo image.

The desktop app's Export writes this set per photo; each file is made by the same core call the
matching command uses (``depthstudio mesh``, ``depth``, ``dof``, ``parallax``, ``stereo``), so the files are
the command line's. Beside them, ``<stem>.settings.json`` records every section used; it is
written only once that photo's files are complete, so a failed or cancelled export never replaces
the record of an earlier successful one, and ``--settings`` (or the app's File > Load Settings)
reproduces the export from it.

    result = export_photos([PhotoJob(path, sections=sections)], folder, job=job)
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from depthstudio.errors import DepthStudioError, InputError, SettingsError
from depthstudio.io.images import output_stems
from depthstudio.jobs import Cancelled, Job, check
from depthstudio.settings import SETTINGS_SUFFIX, Settings, setting

#: Prefix of the hidden folder each photo's files are staged in before they are moved into place.
STAGING_PREFIX = ".depthstudio-export-"


@dataclass
class OutputSettings(Settings):
    """Which outputs an export of photos writes, and where (the desktop app's Export panel)."""

    section = "outputs"

    folder: Path | None = setting(None, label="Folder", flag="", auto="ask when exporting",
                                  help="where exports go")
    mesh: bool = setting(True, label="3D files", flag="", help="the mesh or point cloud, in the export formats")
    depth: bool = setting(True, label="Depth maps", flag="",
                          help="<stem>_depth.npy and the 16-bit <stem>_depth.png, as `depthstudio depth` writes")
    dof_still: bool = setting(False, label="Depth-of-field still", flag="", help="<stem>_dof.png")
    parallax_video: bool = setting(False, label="Parallax video", flag="", help="<stem>_parallax.mp4")
    stereo: bool = setting(False, label="Stereo image", flag="",
                           help="the stereo settings' layout, as `depthstudio stereo` writes it (<stem>_sbs.png, ...)")

    def check(self) -> None:
        if not (self.mesh or self.depth or self.dof_still or self.parallax_video or self.stereo):
            raise SettingsError("export: choose at least one output (3D files, depth maps, DoF still, parallax video "
                                "or stereo image)")


@dataclass
class PhotoJob:
    """One photo to export with its own settings; ``depth`` is a depth already made for them."""

    path: Path
    sections: dict[str, Settings]
    photo: object = None
    depth: object = None
    new_depth: object = None  # the depth this export made (for a caller's cache)
    #: A depth already made, as a .npy of its values plus DepthMap's other fields (kind, model_id,
    #: meta, has_mask): how a caller hands a large depth to a child process without pickling it.
    depth_npy: Path | None = None
    depth_info: dict = field(default_factory=dict)


def save_depth_for_job(job: PhotoJob, depth, folder: Path) -> None:
    """Put ``depth`` beside the job as a .npy in ``folder`` (numpy writes it without holding the GIL)."""
    import numpy as np

    job.depth_npy = Path(folder) / f"{len(list(Path(folder).iterdir()))}-{Path(job.path).stem}.npy"
    np.save(job.depth_npy, depth.values)
    job.depth_info = {"kind": depth.kind, "model_id": depth.model_id, "meta": dict(depth.meta),
                      "has_mask": depth.mask is not None}


def _load_job_depth(job: PhotoJob) -> None:
    import numpy as np

    from depthstudio.depthmap import DepthMap

    info = dict(job.depth_info)
    mask = getattr(job.photo, "alpha", None) if info.pop("has_mask", False) else None
    job.depth = DepthMap(np.load(str(job.depth_npy)), mask=mask, **info)


@dataclass
class ExportResult:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    folder: Path | None = None
    jobs: list[PhotoJob] = field(default_factory=list)


def export_photo(photo, depth, sections: dict[str, Settings], folder: Path, stem: str,
                 job: Job | None = None) -> list[Path]:
    """Every file ``sections["outputs"]`` asks for, for one photo (the settings file is not among them)."""
    from depthstudio.geometry.camera import CameraSettings
    from depthstudio.geometry.depth import DepthMapping

    outputs: OutputSettings = sections["outputs"]  # type: ignore[assignment]
    camera = sections.get("camera") or CameraSettings()
    mapping = sections.get("mapping") or DepthMapping()
    written: list[Path] = []
    steps = [outputs.mesh, outputs.depth, outputs.dof_still, outputs.parallax_video, outputs.stereo]
    if job is not None:
        job.start(sum(steps))
    if outputs.mesh:
        from depthstudio.geometry.export import ExportSettings, export
        from depthstudio.geometry.mesh import MeshSettings
        from depthstudio.geometry.pipeline import build_mesh

        mesh_settings = sections.get("mesh") or MeshSettings()
        formats = (sections.get("export") or ExportSettings()).resolved(mesh_settings.points)  # type: ignore[attr-defined]
        _say(job, "building the mesh")
        obj, _, meta = build_mesh(photo, depth, camera, mapping, mesh_settings)  # type: ignore[arg-type]
        check(job)
        _say(job, "writing " + ", ".join(f.upper() for f in formats))
        written += export(obj, folder, stem, formats, meta)
        _step(job)
    if outputs.depth:
        from depthstudio.io.depthfiles import DepthOutputSettings, write_depth

        extra = sections.get("depth_output") or DepthOutputSettings()
        written += write_depth(depth, folder, stem, extra.exr, extra.color)  # type: ignore[attr-defined]
        _step(job)
    if outputs.dof_still:
        from depthstudio.geometry.pipeline import photo_intrinsics, surface
        from depthstudio.io.images import save_png
        from depthstudio.render.dof import DofSettings, render_dof

        _say(job, "rendering depth of field")
        z, valid = surface(photo, depth, mapping)  # type: ignore[arg-type]
        k = photo_intrinsics(photo, depth, camera)  # type: ignore[arg-type]
        still = render_dof(photo.rgb, z, valid, k, sections.get("dof") or DofSettings())  # type: ignore[arg-type]
        written.append(save_png(folder / f"{stem}_dof.png", still))
        _step(job)
    if outputs.parallax_video:
        _say(job, "rendering the parallax video")
        sub = job.sub(1.0) if job is not None else None
        written.append(render_parallax_video(photo, depth, sections, folder / f"{stem}_parallax.mp4", sub))
        _step(job, 0.0)
    if outputs.stereo:
        from depthstudio.render.stereo import StereoRenderer, StereoSettings

        _say(job, "rendering the stereo image")
        settings = sections.get("stereo") or StereoSettings()
        with StereoRenderer(photo, depth, settings, camera=camera, mapping=mapping) as stereo:  # type: ignore[arg-type]
            written += stereo.write(folder, stem)  # what `depthstudio stereo` writes
        _step(job)
    return written


def _say(job: Job | None, message: str) -> None:
    if job is not None:
        job.set_message(message)


def _step(job: Job | None, n: float = 1.0) -> None:
    if job is not None:
        job.advance(n)


def render_parallax_video(photo, depth, sections: dict[str, Settings], target: Path, job: Job | None = None) -> Path:
    """The parallax clip at full quality, frame by frame (a cancel stops between frames)."""
    from depthstudio.render.parallax import ParallaxRenderer, ParallaxSettings
    from depthstudio.video.writer import VideoWriter

    settings = sections.get("parallax") or ParallaxSettings()
    with ParallaxRenderer(photo, depth, settings, camera=sections.get("camera"),  # type: ignore[arg-type]
                          mapping=sections.get("mapping")) as renderer:  # type: ignore[arg-type]
        n = renderer.frame_count()
        with VideoWriter(target, settings.fps, renderer.size, quality=settings.quality, total=n) as video:  # type: ignore[attr-defined]
            frames = (job.iterate(renderer.frames(), total=n, message=f"writing {Path(target).name}")
                      if job is not None else renderer.frames())
            for frame in frames:
                video.write(frame)
    return Path(target)


def depth_for(job: PhotoJob):
    """The job's depth: the one given, else its depth file or its model (loaded once per process)."""
    from depthstudio.source import DepthFileSettings, DepthSource, ModelSettings

    if job.depth is not None:
        return job.depth
    source = DepthSource(job.sections.get("model") or ModelSettings(),  # type: ignore[arg-type]
                         job.sections.get("depth") or DepthFileSettings())  # type: ignore[arg-type]
    source.check_files()
    job.new_depth = source.depth_for(job.photo)  # type: ignore[arg-type]
    return job.new_depth


def export_photos(jobs: list[PhotoJob], folder: Path, job: Job | None = None, command: str = "gui") -> ExportResult:
    """Export every photo into ``folder``; one bad photo never stops the others.

    Each photo's files are staged in a hidden folder and moved into place only when all of them
    are complete, the settings file last: a cancel (or a crash) leaves whole photos or nothing.
    """
    from depthstudio.io.atomic import ensure_dir
    from depthstudio.io.images import load_image
    from depthstudio.settings import write_settings_file

    folder = ensure_dir(folder)
    remove_staging(folder)
    result = ExportResult(folder=folder, jobs=jobs)
    stems = output_stems([j.path for j in jobs])
    n = len(jobs)
    if job is not None:
        job.start(n, f"exporting {n} photo{'s' if n != 1 else ''}")
    for i, item in enumerate(jobs):
        check(job)
        sub = job.sub(1.0) if job is not None else None
        if sub is not None:
            sub.set_message(f"{item.path.name} ({i + 1}/{n})")
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
        stem = stems[item.path]
        try:
            if item.photo is None:
                item.photo = load_image(item.path)
            if item.depth is None and item.depth_npy is not None:
                _load_job_depth(item)
            if item.depth is None:
                if sub is not None:
                    sub.set_message(f"{item.path.name}: estimating depth")
                depth_for(item)
            depth = item.depth if item.depth is not None else item.new_depth
            check(job)
            files = export_photo(item.photo, depth, item.sections, staging, stem, sub)
            check(job)
            record = write_settings_file(staging / f"{stem}{SETTINGS_SUFFIX}", command, item.sections,
                                         {"photo": str(Path(item.path).absolute())})
            for f in files + [record]:  # all complete: move them into place (atomic renames, settings last)
                os.replace(f, folder / f.name)
                result.written.append(folder / f.name)
        except Cancelled:
            raise
        except DepthStudioError as exc:
            result.failed.append((item.path, str(exc)))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if job is not None:
            job.done = i + 1
            job.set_message(f"exported {i + 1 - len(result.failed)} of {n}")
    return result


def export_photos_light(job: Job, jobs: list[PhotoJob], folder: Path) -> ExportResult:
    """:func:`export_photos` for a child process: the depths it made travel back, photos do not."""
    result = export_photos(jobs, folder, job)
    for item in result.jobs:
        item.photo = None
        item.depth = None  # the caller has it already (new_depth is what it does not have)
    return result


def remove_staging(folder: Path) -> None:
    """Remove staging folders a stopped export left in ``folder``."""
    folder = Path(folder)
    if folder.is_dir():
        for staging in folder.glob(STAGING_PREFIX + "*"):
            shutil.rmtree(staging, ignore_errors=True)


def settings_sections(path: str | Path, classes: list[type[Settings]]) -> dict[str, Settings]:
    """The sections of a saved ``<stem>.settings.json`` for ``classes`` (defaults where it has none)."""
    from depthstudio.settings import load_section, read_settings_file

    saved = read_settings_file(path)
    if not saved:
        raise InputError(f"{path}: the settings file has no sections")
    return {cls.section: load_section(cls, saved) for cls in classes if cls.section in saved}
