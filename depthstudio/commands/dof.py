"""`depthstudio dof INPUT... -o OUT`: photos as a real lens would have taken them, with a chosen focus.

A still (``-o out.png``/``.jpg``/``.tif``/``.webp``), a folder of stills (``-o folder``), or a
focus-pull preview video when OUT is a video file (``.mp4 .mov .webm .gif``): the focus moves
from near to far, between two distances, or between two points (``--focus-pull A:B``).
Focus: ``--focus-distance M`` (metres, or near/far units for relative depth) or ``--focus-point X,Y``
(pixels, or 0..1 fractions of the picture); by default the centre of the picture.
"""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from depthstudio.commands._flags import (
    add_sections,
    depth_sections,
    depth_source,
    read_sections,
    save_settings,
    settings_path,
)
from depthstudio.errors import InputError, SettingsError
from depthstudio.jobs import check

IMAGE_OUTPUTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


def sections():
    from depthstudio.render.dof import DofSettings, FocusPullSettings

    return (DofSettings, FocusPullSettings) + depth_sections()


def add_parser(sub) -> None:
    p = sub.add_parser(
        "dof", help="depth of field: refocus photos with a lens blur, or render a focus-pull preview",
        description="Blur photos as a lens of the given f-number, focused at the given distance or point, would "
                    "(disc bokeh, blooming highlights, no halos at depth edges). A video OUT renders a focus pull.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively) or .txt lists")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                   help="an image file (.png .jpg .tif .webp), a video file (.mp4 .mov .webm .gif: focus pull) "
                        "or a folder (<stem>_dof.png for each input)")
    add_sections(p, sections())
    p.set_defaults(func=run)


def lens_for(settings, camera):
    """The DoF lens: a --focal-mm given for the camera is also the lens's focal length."""
    if camera.focal_mm is not None:
        return replace(settings, focal_mm=camera.focal_mm)
    return settings


def pixel_point(point: tuple[float, float], width: int, height: int) -> tuple[float, float]:
    """Pixels from "X,Y" as given: fractions of the picture when both lie within 0..1."""
    x, y = point
    if 0 <= x <= 1 and 0 <= y <= 1:
        return x * width, y * height
    return x, y


def _save_still(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    from depthstudio.io.atomic import atomic_path

    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
    kind = fmt[path.suffix.lower()]
    options = {"quality": 95} if kind in ("JPEG", "WEBP") else {}
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format=kind, **options)


def scene_arrays(photo, depth, camera, mapping, name: str = "image"):
    """(z, valid, intrinsics) for a Photo and its DepthMap (DepthMap kind and near/far respected)."""
    from depthstudio.geometry.camera import resolve_intrinsics
    from depthstudio.geometry.depth import to_depth

    if depth.shape != (photo.height, photo.width):
        raise InputError(f"{name}: depth is {depth.width}x{depth.height} but the photo is {photo.width}x{photo.height}")
    z, valid = to_depth(depth, mapping)
    if photo.alpha is not None:
        valid &= photo.alpha
    if not valid.any():
        raise InputError(f"{name}: the depth map holds no surface (all 0, NaN or masked)")
    intrinsics = resolve_intrinsics(photo.width, photo.height, camera, exif=photo.exif,
                                    model_focal_px=depth.focal_for(photo.width))
    return z, valid, intrinsics


def _scene(path: Path, source, camera, mapping):
    """(photo, z, valid, intrinsics) for one input."""
    from depthstudio.io.images import load_image

    photo = load_image(path)
    z, valid, intrinsics = scene_arrays(photo, source.depth_for(photo), camera, mapping, str(path))
    return photo, z, valid, intrinsics


def render_still_arrays(photo, depth, camera, mapping, target: Path, settings=None, preview: bool = False,
                        **lens_settings) -> dict:
    """Render one DoF still of ``photo`` (a Photo) with ``depth`` (a DepthMap) to ``target``, with
    ``<stem>.dof.json`` beside it; returns that metadata. ``lens_settings`` are DofSettings fields
    (used when ``settings`` is None). For front ends (demo, GUI export)."""
    from depthstudio.render.dof import DofSettings

    settings = settings or DofSettings(**lens_settings)
    z, valid, intrinsics = scene_arrays(photo, depth, camera, mapping, str(photo.path or target.name))
    return _write_still(photo, z, valid, intrinsics, Path(target), settings, preview,
                        source=getattr(depth, "model_id", None))


def _write_still(photo, z, valid, intrinsics, target: Path, settings, preview: bool, source) -> dict:
    from depthstudio.io.atomic import write_text
    from depthstudio.render import dof
    from depthstudio.render.lens import depth_of_field

    settings.validate()
    focus = dof.resolve_focus(z, valid, settings)
    out = dof.render_dof(photo.rgb, z, valid, intrinsics, settings, preview=preview, focus_distance=focus)
    _save_still(target, out)
    focal = dof.lens_focal_mm(intrinsics, settings)
    near, far = depth_of_field(focus, settings.f_number, focal)
    meta = {
        "input": str(photo.path) if photo.path else None, "output": target.name, "focus_distance": focus,
        "sharp_from": near, "sharp_to": far if np.isfinite(far) else None,
        "focal_mm_35mm_equivalent": focal, "intrinsics": intrinsics.to_dict(),
        "depth": source, "preview": bool(preview), "settings": settings.to_dict(),
    }
    write_text(target.with_name(target.stem + ".dof.json"), json.dumps(meta, indent=2))
    return meta


def render_still(path: Path, target: Path, settings, source, camera, mapping) -> dict:
    photo, z, valid, intrinsics = _scene(path, source, camera, mapping)
    if settings.focus_point is not None:
        settings = replace(settings, focus_point=pixel_point(settings.focus_point, photo.width, photo.height))
    depth_from = f"model:{source.estimator().model_id}" if source.uses_model else f"file:{source.depth_file_for(path)}"
    return _write_still(photo, z, valid, intrinsics, target, settings, settings.preview, depth_from)


def _pull_end(end, z, valid, width, height) -> float:
    from depthstudio.render.lens import focus_depth_at

    if isinstance(end, tuple):
        return focus_depth_at(z, valid, pixel_point(end, width, height))
    if not np.isfinite(end) or end <= 0:
        raise SettingsError(f"focus pull distance must be positive, got {end:g}")
    return float(end)


def render_pull(path: Path, target: Path, pull, settings, source, camera, mapping, job=None) -> None:
    import cv2

    from depthstudio.render import dof
    from depthstudio.video.writer import VideoWriter

    photo, z, valid, intrinsics = _scene(path, source, camera, mapping)
    h, w = z.shape
    if pull.pull is not None:
        start = _pull_end(pull.pull[0], z, valid, w, h)
        end = _pull_end(pull.pull[1], z, valid, w, h)
    else:
        start, end = (float(v) for v in np.percentile(z[valid], [3, 97]))
    size = pull.size
    if size is None:
        f = min(1.0, 1280.0 / max(w, h))
        size = (max(2, round(w * f)), max(2, round(h * f)))
    rgb, depth, ok = photo.rgb, z, valid
    if size != (w, h):
        rgb = cv2.resize(photo.rgb, size, interpolation=cv2.INTER_AREA)
        depth = cv2.resize(np.where(valid, z, 0).astype(np.float32), size, interpolation=cv2.INTER_NEAREST)
        ok = depth > 0
        intrinsics = intrinsics.scaled(*size)
        if settings.max_blur_px is not None:
            settings = replace(settings, max_blur_px=settings.max_blur_px * size[0] / w)
    frames = max(2, round(pull.duration * pull.fps))
    with VideoWriter(target, fps=pull.fps, size=size, progress=sys.stderr.isatty(), total=frames, desc="focus pull") as video:
        for distance in dof.focus_pull_distances(start, end, frames):
            check(job)
            video.write(dof.render_dof(rgb, depth, ok, intrinsics, settings, preview=not pull.quality,
                                       focus_distance=float(distance)))


def run(args) -> int:
    from depthstudio.commands.common import expand_inputs, run_batch
    from depthstudio.io.atomic import ensure_dir
    from depthstudio.video.writer import VIDEO_SUFFIXES

    s = read_sections(args, sections())
    camera, mapping, pull = s["camera"], s["mapping"], s["focus_pull"]
    settings = lens_for(s["dof"], camera)
    source = depth_source(s)
    paths = expand_inputs(args.inputs)
    out = Path(args.output)
    suffix = "" if out.is_dir() else out.suffix.lower()
    video = suffix in VIDEO_SUFFIXES
    if suffix and not video and suffix not in IMAGE_OUTPUTS:
        raise SettingsError(f"{out}: unknown output type '{suffix}'; use an image ({', '.join(IMAGE_OUTPUTS)}), "
                            f"a video ({', '.join(VIDEO_SUFFIXES)}) or a folder")
    if suffix and len(paths) > 1:
        raise SettingsError(f"{len(paths)} inputs but one output file {out}; give a folder as -o")
    if pull.pull is not None and not video and suffix:
        raise SettingsError("--focus-pull makes a video: give an output ending in .mp4, .mov, .webm or .gif")
    if not suffix:
        ensure_dir(out)
    if source.uses_model:
        source.estimator()  # a model that cannot load is one error for the whole batch

    job = getattr(args, "job", None)

    def work(path: Path) -> None:
        if suffix:
            target = out
        else:
            target = out / (f"{path.stem}_dof" + (".mp4" if pull.pull is not None else ".png"))
        try:
            if target.suffix.lower() in VIDEO_SUFFIXES:
                render_pull(path, target, pull, settings, source, camera, mapping, job)
            else:
                render_still(path, target, settings, source, camera, mapping)
        except MemoryError:
            raise InputError(f"{path}: out of memory; try --preview or a smaller image") from None
        save_settings(settings_path(target), "dof", s)
        return None

    report = run_batch(paths, work, desc="dof", job=job)
    print(report.summary("rendered") + f" -> {out}", file=sys.stdout)
    return report.exit_code
