"""The GUI's calls into the core, in one place (no Qt here, no image maths of its own).

Every function is a thin wrapper over a core function the CLI also uses, so that what the window
previews and exports is exactly what the command line would make with the same settings.
Functions that may run long take a core ``job`` (depthstudio.jobs.Job, or None) for progress
and cancel. Exports are depthstudio.outputs; inference runs in depthstudio.workers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from depthstudio.depthmap import DepthMap
from depthstudio.errors import DepthStudioError

#: Longest side of the working copy the live previews use (the export always uses full resolution).
PREVIEW_SIDE = 1024


def _check(job) -> None:
    if job is not None:
        job.check()


def _say(job, message: str) -> None:
    if job is not None:
        job.set_message(message)


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


def weights_missing(model) -> str | None:
    """A sentence for the window when a catalogue model's weights are not in the local cache, else None.

    Local model files and folders are never "missing" here: loading them reports its own problem.
    """
    info = model_info(model.model)
    if info is None:
        return None
    backend = model.backend if model.backend != "auto" else ("onnx" if info.onnx_repo else "torch")
    if model_cached(model.model).get(backend, False):
        return None
    return (f"Depth needs the {info.name} model ({info.size_label}, licence {info.licence}), "
            "which is not downloaded yet.")


def download_model(job, name: str, backend: str = "auto"):
    """Fetch a catalogue model's weights into the local cache, reporting the megabytes received."""
    import threading

    from depthstudio.models.weights import resolve

    _say(job, f"Downloading {name}…")
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
        _check(job)  # a cancelled download stops waiting; the hub client finishes its file in the background
        received = sum(p.stat().st_size for p in blobs.glob("*.incomplete")) if blobs and blobs.is_dir() else 0
        if received:
            _say(job, f"Downloading {name}: {received / 1e6:.1f} MB received")
    if "error" in outcome:
        raise outcome["error"]
    _say(job, f"{name} is ready")
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


def read_depth(job, photo, files):
    """The user's depth file for a photo (DepthFileSettings), at the photo's resolution."""
    from depthstudio.source import DepthSource

    _say(job, f"Reading {Path(files.depth).name}…")
    return DepthSource(files=files).depth_for(photo)


def estimate(job, photo, model, worker, reload: bool = False):
    """The model's depth for a photo, in the killable inference process (a cancel stops it at once);
    ``reload``: the process reads the photo from its file itself."""
    _say(job, f"Estimating depth ({Path(model.model).name})…")
    return worker.predict(photo, model, job, reload=reload)


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

    z, valid = to_depth(depth, mapping)
    color = preview_rgb(colorize(depth.normalized(), valid))
    zr = (float(z[valid].min()), float(z[valid].max())) if valid.any() else (0.0, 0.0)
    return DepthView(color=color, z=z, valid=valid, values=depth.values, kind=depth.kind, z_range=zr)


# ---- camera and geometry ---------------------------------------------------------------------------
def photo_camera(photo, camera, depth=None):
    """The photo's intrinsics and their source, known as soon as the photo is (EXIF, flags or default)."""
    from depthstudio.geometry.pipeline import photo_intrinsics

    return photo_intrinsics(photo, depth, camera)


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


def derive(job, photo, depth, sections: dict, preview=None) -> Derived:
    """Depth view, intrinsics, cut-edge overlay and a view-sized mesh, through the core's own calls.

    Everything shown is computed at the preview's resolution (at most PREVIEW_SIDE pixels on the
    long side): a 12-megapixel photo shows its depth as fast as a 1-megapixel one. The export
    always works from the full-resolution photo and depth.
    """
    from depthstudio.geometry.depth import resize_depth
    from depthstudio.geometry.mesh import MeshSettings, cut_edge_mask, depth_mesh
    from depthstudio.geometry.pipeline import photo_intrinsics, surface
    from depthstudio.io.images import Photo

    mapping = sections["mapping"]
    mesh_settings = sections["mesh"]
    camera = sections["camera"]
    intrinsics = photo_intrinsics(photo, depth, camera)
    if job is not None and hasattr(job, "partial"):
        # the depth view first, from every n-th pixel (no resampling): it shows before the mesh is built
        step = max(1, int(np.ceil(max(depth.width, depth.height) / PREVIEW_SIDE)))
        sparse = DepthMap(depth.values[::step, ::step], depth.kind, depth.model_id,
                          None if depth.mask is None else depth.mask[::step, ::step])
        job.partial((depth_view(sparse, mapping), intrinsics))
    preview = preview if preview is not None else preview_rgb(photo.rgb)
    ph, pw = preview.shape[:2]
    small_photo = Photo(rgb=preview, path=photo.path, alpha=None if photo.alpha is None else
                        resize_depth_mask(photo.alpha, (pw, ph)), exif=photo.exif)
    small_depth = resize_depth(depth, (pw, ph))
    _check(job)
    view = depth_view(small_depth, mapping)
    z, valid = surface(small_photo, small_depth, mapping)
    k_small = intrinsics.scaled(pw, ph)
    _check(job)
    overlay = None
    if mesh_settings.edge_cut:
        cuts = cut_edge_mask(z, valid, mesh_settings.edge_cut)
        overlay = np.zeros((ph, pw, 4), np.uint8)
        overlay[cuts] = CUT_COLOR
    _check(job)
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


def dof_preview(job, derived: Derived, settings) -> np.ndarray:
    from depthstudio.render.dof import render_dof

    _check(job)
    return render_dof(derived.preview_rgb, derived.preview_z, derived.preview_valid, derived.preview_intrinsics,
                      settings, preview=True)


# ---- video ------------------------------------------------------------------------------------------
def video_info(path):
    from depthstudio.video.decode import probe

    return probe(path)


def video_frame(job, path, seconds: float):
    """The clip's frame at ``seconds`` as a Photo (what the video tab previews depth and effects on)."""
    from depthstudio.io.images import Photo
    from depthstudio.video.decode import frame_at

    frame = frame_at(path, seconds)
    _check(job)
    return Photo(rgb=frame.rgb, path=Path(path)), frame.time


def export_video(job, clip, out, video, model):
    """``depthstudio video`` for one clip (process_video), its progress and cancel on ``job``."""
    from depthstudio.video.pipeline import process_video

    return process_video(clip, out, video, model=model, job=job)
