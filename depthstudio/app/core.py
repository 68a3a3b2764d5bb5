"""The GUI's calls into the core, in one place (no Qt here, no image maths of its own).

Every function is a thin wrapper over a core function the CLI also uses, so that what the window
previews and exports is exactly what the command line would make with the same settings.
Functions that may run long take ``ctx`` (depthstudio.app.tasks.TaskContext or None) for
progress and cancel.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from depthstudio.depthmap import DepthMap
from depthstudio.errors import DepthStudioError

#: Longest side of the working copy the live previews use (the export always uses full resolution).
PREVIEW_SIDE = 1024


def _check(ctx) -> None:
    if ctx is not None:
        ctx.check()


def _progress(ctx, fraction: float, message: str) -> None:
    if ctx is not None:
        ctx.progress(fraction, message)


# ---- settings classes -----------------------------------------------------------------------------
def parallax_settings_class():
    try:
        from depthstudio.render.parallax import ParallaxSettings

        return ParallaxSettings
    except ImportError:
        from depthstudio.render.camera_path import PathSettings

        return PathSettings


def parallax_choices() -> dict[str, tuple]:
    """Choices for the parallax panel's fields (presets, loops, easings) from the core."""
    from depthstudio.render import camera_path

    return {"preset": tuple(camera_path.preset_names()), "loop": tuple(camera_path.LOOPS),
            "easing": tuple(camera_path.EASINGS)}


def dof_settings_class():
    from depthstudio.render.dof import DofSettings

    return DofSettings


def validated(settings):
    """Run a settings object's own validation where it has one (core dataclasses use .validate())."""
    check = getattr(settings, "validate", None)
    if callable(check):
        check()
    return settings


# ---- photos and depth -----------------------------------------------------------------------------
def load_photo(path):
    from depthstudio.io.images import load_image

    return load_image(path)


def thumbnail(rgb: np.ndarray, side: int = 160) -> np.ndarray:
    """A small copy for the filmstrip (Pillow's resampling; the GUI does no pixel maths itself)."""
    from PIL import Image

    img = Image.fromarray(rgb)
    img.thumbnail((side, side), Image.BILINEAR)
    return np.asarray(img)


def preview_rgb(rgb: np.ndarray, side: int = PREVIEW_SIDE) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= side:
        return rgb
    return thumbnail(rgb, side)


def model_catalogue() -> list:
    from depthstudio.models.catalogue import CATALOGUE

    return list(CATALOGUE.values())


def model_info(name: str):
    from depthstudio.models.catalogue import CATALOGUE

    return CATALOGUE.get(name)


def model_cached(name: str) -> dict:
    """Which backends of a catalogue model have their weights in the local cache (no network)."""
    info = model_info(name)
    if info is None:
        return {}
    from depthstudio.models.weights import cached_status

    try:
        return cached_status(info)
    except Exception:  # a broken cache folder must not break the panel
        return {}


def download_model(ctx, name: str, backend: str = "auto"):
    """Fetch a catalogue model's weights into the local cache, reporting the megabytes received."""
    import threading

    from depthstudio.models.weights import resolve

    _progress(ctx, 0.0, f"Downloading {name}…")
    outcome: dict = {}

    def fetch() -> None:
        try:
            outcome["source"] = resolve(name, backend)
        except BaseException as exc:  # handed to the task below
            outcome["error"] = exc

    worker = threading.Thread(target=fetch, name=f"download-{name}", daemon=True)
    worker.start()
    blobs = _cache_blobs(name)
    while worker.is_alive():
        worker.join(0.25)
        received = sum(p.stat().st_size for p in blobs.glob("*.incomplete")) if blobs and blobs.is_dir() else 0
        if received and ctx is not None:
            ctx.progress(0.0, f"Downloading {name}: {received / 1e6:.1f} MB received")
    if "error" in outcome:
        raise outcome["error"]
    _progress(ctx, 1.0, f"{name} is ready")
    return outcome["source"]


def _cache_blobs(name: str):
    """The Hugging Face cache folder where a catalogue model's files arrive (None when unknown)."""
    info = model_info(name)
    if info is None:
        return None
    try:
        from huggingface_hub import constants
    except ImportError:
        return None
    repos = [r for r in (info.onnx_repo, info.hf_repo) if r]
    for repo in repos:
        folder = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "blobs"
        if folder.parent.exists():
            return folder
    return Path(constants.HF_HUB_CACHE) / f"models--{repos[0].replace('/', '--')}" / "blobs"


def load_estimator(model_settings):
    from depthstudio.models.estimator import load_estimator as _load

    return _load(model_settings.model or None, model_settings.backend, model_settings.input_size)


def estimate(ctx, photo, model_settings, depth_file=None, depth_kind: str = "disparity"):
    """DepthMap for a photo: read from the user's depth file, or from the model."""
    if depth_file is not None:
        from depthstudio.geometry.depth import read_depth_file

        _progress(ctx, 0.1, f"Reading {Path(depth_file).name}…")
        return read_depth_file(depth_file, kind=depth_kind, size=(photo.width, photo.height))
    _progress(ctx, 0.05, f"Loading model {model_settings.model}…")
    estimator = load_estimator(model_settings)
    _check(ctx)
    _progress(ctx, 0.3, f"Estimating depth ({estimator.model_id})…")
    depth = estimator.predict(photo)
    _progress(ctx, 1.0, "Depth ready")
    return depth


def colorize(normalized: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Colour-mapped depth, the same map `depthstudio depth --color` writes."""
    from depthstudio.io.depthfiles import colorize as _colorize

    return _colorize(normalized, valid)


def colormap_bar(width: int = 256) -> np.ndarray:
    return colorize(np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :])


@dataclass
class DepthView:
    """What the depth tab shows: the colour image, and per-pixel distance for the hover readout."""

    color: np.ndarray  # (h, w, 3) uint8, display resolution
    z: np.ndarray  # (H, W) float32 distance (metric or scene units), full resolution
    valid: np.ndarray
    values: np.ndarray  # the raw prediction (disparity or metres)
    kind: str
    z_range: tuple[float, float]


def depth_view(depth, mapping) -> DepthView:
    from depthstudio.geometry.depth import to_depth

    z, valid = to_depth(depth, validated(mapping))
    color = preview_rgb(colorize(depth.normalized(), valid))
    zr = (float(z[valid].min()), float(z[valid].max())) if valid.any() else (0.0, 0.0)
    return DepthView(color=color, z=z, valid=valid, values=depth.values, kind=depth.kind, z_range=zr)


# ---- camera and geometry ---------------------------------------------------------------------------
# ---- what the views show for the current photo ------------------------------------------------------
#: Longest side of the mesh the 3D view and the parallax preview draw (llvmpipe stays interactive).
VIEW_MESH_SIDE = 512
#: The DoF field that click-to-focus sets (a distance: independent of the preview's resolution).
DOF_FOCUS_FIELD = "focus_distance"
CUT_COLOR = (255, 45, 85, 235)


@dataclass
class Derived:
    """Everything the views need for one photo + depth + settings, made off the UI thread."""

    depth_view: DepthView
    intrinsics: object  # geometry.camera.Intrinsics at the photo's resolution
    preview_rgb: np.ndarray  # (h, w, 3) the photo at preview resolution
    preview_z: np.ndarray  # (h, w) distance at preview resolution
    preview_valid: np.ndarray
    preview_intrinsics: object
    cut_overlay: np.ndarray | None  # (h, w, 4) RGBA: the mesh's cut edges over the photo
    view_mesh: object  # geometry.mesh.DepthMesh or geometry.points.PointCloud for the 3D view
    sections: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)


def derive(ctx, photo, depth, sections: dict, preview=None) -> Derived:
    """Depth view, intrinsics, cut-edge overlay and a view-sized mesh, through the core's own calls.

    Everything shown is computed at the preview's resolution (at most PREVIEW_SIDE pixels on the
    long side): a 12-megapixel photo shows its depth as fast as a 1-megapixel one. The export
    always works from the full-resolution photo and depth.
    """
    from depthstudio.geometry.depth import resize_depth
    from depthstudio.geometry.mesh import MeshSettings, cut_edge_mask, depth_mesh
    from depthstudio.geometry.pipeline import photo_intrinsics, surface
    from depthstudio.io.images import Photo

    mapping = validated(sections["mapping"])
    mesh_settings = validated(sections["mesh"])
    camera = validated(sections["camera"])
    intrinsics = photo_intrinsics(photo, depth, camera)
    if ctx is not None and hasattr(ctx, "partial"):
        # the depth view first, from every n-th pixel (no resampling): it shows before the mesh is built
        step = max(1, int(np.ceil(max(depth.width, depth.height) / PREVIEW_SIDE)))
        sparse = DepthMap(depth.values[::step, ::step], depth.kind, depth.model_id,
                          None if depth.mask is None else depth.mask[::step, ::step])
        ctx.partial((depth_view(sparse, mapping), intrinsics))
    preview = preview if preview is not None else preview_rgb(photo.rgb)
    ph, pw = preview.shape[:2]
    small_photo = Photo(rgb=preview, path=photo.path, alpha=None if photo.alpha is None else
                        resize_depth_mask(photo.alpha, (pw, ph)), exif=photo.exif)
    small_depth = resize_depth(depth, (pw, ph))
    _check(ctx)
    view = depth_view(small_depth, mapping)
    z, valid = surface(small_photo, small_depth, mapping)
    k_small = intrinsics.scaled(pw, ph)
    _check(ctx)
    overlay = None
    if mesh_settings.edge_cut:
        cuts = cut_edge_mask(z, valid, mesh_settings.edge_cut)
        overlay = np.zeros((ph, pw, 4), np.uint8)
        overlay[cuts] = CUT_COLOR
    _check(ctx)
    stride = max(1, int(np.ceil(max(pw, ph) / VIEW_MESH_SIDE)))
    # the view always gets the mesh; with "points" on, the 3D view draws its vertices
    view_mesh = depth_mesh(z, valid, k_small, preview, MeshSettings(edge_cut=mesh_settings.edge_cut, stride=stride))
    stats = {"faces": view_mesh.face_count, "stride": stride, "points": bool(mesh_settings.points)}
    return Derived(view, intrinsics, preview, z, valid, k_small, overlay, view_mesh, dict(sections), stats)


def resize_depth_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)) >= 128


def focus_distance_at(derived: Derived, fx: float, fy: float) -> float | None:
    """The focus distance for a click at (fx, fy), fractions of the image's width and height."""
    from depthstudio.render.lens import focus_depth_at

    h, w = derived.preview_z.shape
    x, y = min(max(fx * w, 0.0), w - 1e-3), min(max(fy * h, 0.0), h - 1e-3)
    if not derived.preview_valid[int(y), int(x)] and not derived.preview_valid.any():
        return None
    try:
        return float(focus_depth_at(derived.preview_z, derived.preview_valid, (x, y)))
    except DepthStudioError:
        return None


def dof_preview(ctx, derived: Derived, settings) -> np.ndarray:
    from depthstudio.render.dof import render_dof

    _check(ctx)
    return render_dof(derived.preview_rgb, derived.preview_z, derived.preview_valid, derived.preview_intrinsics,
                      validated(settings), preview=True)


# ---- export -----------------------------------------------------------------------------------------
@dataclass
class ExportJob:
    """One photo to export; ``depth`` is the cached depth when it matches the settings."""

    path: Path
    photo: object = None
    depth: object = None
    depth_file: Path | None = None
    # filled by the export, for the window to cache
    new_depth: object = None
    depth_key: tuple | None = None
    used_model: bool = False


@dataclass
class ExportResult:
    written: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # (path, message)
    folder: Path | None = None
    jobs: list = field(default_factory=list)  # the jobs as the export left them (with new depths)


SETTINGS_FILE = "depthstudio-settings.json"
STAGING_PREFIX = ".depthstudio-export-"


def export_photo(ctx, photo, depth, sections: dict, folder: Path, stem: str) -> list[Path]:
    """Every file the export settings ask for, for one photo: the same calls `depthstudio mesh` makes."""
    from depthstudio.geometry.export import export
    from depthstudio.geometry.pipeline import build_mesh

    ex = sections["export"]
    written: list[Path] = []
    if ex.formats:
        _progress_sub(ctx, "building the mesh")
        obj, intrinsics, meta = build_mesh(photo, depth, validated(sections["camera"]), validated(sections["mapping"]),
                                           validated(sections["mesh"]))
        _check(ctx)
        _progress_sub(ctx, "writing " + ", ".join(f.upper() for f in ex.formats))
        written += export(obj, folder, stem, ex.formats, meta)
        _check(ctx)
    if ex.depth_png or ex.depth_exr:
        from depthstudio.io.depthfiles import write_exr
        from depthstudio.io.images import save_png

        if ex.depth_png:
            written.append(save_png(folder / f"{stem}_depth.png", depth.to_png16()))
        if ex.depth_exr:
            written.append(write_exr(folder / f"{stem}_depth.exr", np.where(depth.valid, depth.values, 0)))
        _check(ctx)
    if ex.dof_still and "dof" in sections:
        from depthstudio.geometry.pipeline import photo_intrinsics, surface
        from depthstudio.io.images import save_png
        from depthstudio.render.dof import render_dof

        _progress_sub(ctx, "rendering depth of field")
        z, valid = surface(photo, depth, validated(sections["mapping"]))
        k = photo_intrinsics(photo, depth, validated(sections["camera"]))
        still = render_dof(photo.rgb, z, valid, k, validated(sections["dof"]))
        written.append(save_png(folder / f"{stem}_dof.png", still))
        _check(ctx)
    if ex.parallax_video and "parallax" in sections:
        _progress_sub(ctx, "rendering the parallax video")
        written.append(render_parallax_video(ctx, photo, depth, sections, folder / f"{stem}_parallax.mp4"))
    return written


def render_parallax_video(ctx, photo, depth, sections, target: Path) -> Path:
    """The parallax clip at full quality, frame by frame (cancel stops between frames)."""
    from depthstudio.render.parallax import ParallaxRenderer
    from depthstudio.video.writer import VideoWriter

    settings = validated(sections["parallax"])
    with ParallaxRenderer(photo, depth, settings, camera=validated(sections["camera"]),
                          mapping=validated(sections["mapping"])) as renderer:
        n = renderer.frame_count()
        with VideoWriter(target, settings.fps, renderer.size, quality=settings.quality, total=n) as video:
            for i, frame in enumerate(renderer.frames()):
                _check(ctx)
                video.write(frame)
                if ctx is not None and i % 10 == 0 and getattr(ctx, "sub", None):
                    ctx.sub(f"parallax frame {i + 1}/{n}")
    return Path(target)


def _progress_sub(ctx, message: str) -> None:
    if ctx is not None and getattr(ctx, "sub", None):
        ctx.sub(message)


def export_jobs(ctx, jobs: list[ExportJob], sections: dict, folder: Path) -> ExportResult:
    """Export every job into ``folder``; one bad photo never stops the others.

    Each photo's files are written into a hidden staging folder first and moved into place only
    when all of them are complete, so a cancel (or a crash) never leaves a partial set behind.
    """
    import os
    import shutil
    import tempfile

    from depthstudio.io.atomic import ensure_dir, write_text

    folder = ensure_dir(folder)
    result = ExportResult(folder=folder)
    stems = _unique_stems([j.path for j in jobs])
    n = len(jobs)
    for i, job in enumerate(jobs):
        base = i / n
        _check(ctx)
        name = job.path.name

        def sub(message, base=base, name=name, i=i):
            if ctx is not None:
                ctx.progress(base + 0.5 / n, f"{name} ({i + 1}/{n}): {message}")

        if ctx is not None:
            ctx.sub = sub
            ctx.progress(base, f"{name} ({i + 1}/{n})", force=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
        try:
            photo = job.photo if job.photo is not None else load_photo(job.path)
            job.photo = photo
            depth = job.depth
            if depth is None:
                sub("estimating depth")
                kind = sections["source"].kind
                depth = estimate(None, photo, sections["model"], depth_file=job.depth_file, depth_kind=kind)
                job.new_depth = depth
                job.used_model = job.depth_file is None
                m = sections["model"]
                job.depth_key = (("file", str(job.depth_file), kind) if job.depth_file
                                 else ("model", m.model, m.backend, m.input_size))
            _check(ctx)
            files = export_photo(ctx, photo, depth, sections, staging, stems[job.path])
            _check(ctx)
            for f in files:  # all complete: move them into place (same file system: atomic renames)
                os.replace(f, folder / f.name)
                result.written.append(folder / f.name)
        except DepthStudioError as exc:
            message = str(exc)
            result.failed.append((job.path, message))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if ctx is not None:
        ctx.sub = None
    _check(ctx)
    settings = _settings_dict(sections)
    write_text(folder / SETTINGS_FILE, json.dumps({"settings": settings, "photos": [str(j.path) for j in jobs],
                                                   "files": [p.name for p in result.written]}, indent=2, default=str))
    result.written.append(folder / SETTINGS_FILE)
    if ctx is not None:
        ctx.progress(1.0, f"Exported {len(jobs) - len(result.failed)} of {n}", force=True)
    return result


def export_jobs_with_depths(ctx, jobs: list[ExportJob], sections: dict, folder: Path) -> ExportResult:
    """export_jobs for a child process: the depths it estimated travel back for the window's cache
    (photos do not: the window already has them or loads them cheaply)."""
    result = export_jobs(ctx, jobs, sections, folder)
    result.jobs = [dataclasses.replace(j, photo=None) for j in jobs]
    return result


def _settings_dict(sections: dict) -> dict:
    out = {}
    for name, settings in sections.items():
        out[name] = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    return out


def _unique_stems(paths: list[Path]) -> dict[Path, str]:
    """File stems, made unique by the parent folder's name when two photos share one (as the CLI does)."""
    from depthstudio.io.images import output_stems

    return output_stems(paths)
