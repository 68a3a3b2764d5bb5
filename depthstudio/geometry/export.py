"""Writing meshes and point clouds: OBJ + MTL + texture, binary PLY, GLB (glTF 2.0), USDZ, and
3D Gaussian splats (``<stem>.splat.ply``).

Every writer streams from the DepthMesh / PointCloud arrays in chunks (no trimesh object, no
whole-file buffer): the extra memory of any export is a chunk or two plus the encoded texture,
except USDZ, where usd-core holds its own copy of the arrays until the layer is saved. Each file
is written atomically (depthstudio.io.atomic), the free space is checked before anything is
written, a full disk mid-way is one message naming the file, and a failed or cancelled export
removes every file it had written. ``<stem>.camera.json`` (intrinsics, depth mapping, model) is
written last, so its presence marks a complete export.

Progress and cancel: ``export(..., job=job)`` calls ``job.start(total, message)`` once, then
``job.check()`` and ``job.advance(n)`` between chunks (depthstudio.jobs protocol).

Cameras: the GLB carries a perspective camera node and the USDZ a UsdGeom.Camera at the photo's
viewpoint (the origin, looking down -z). glTF cannot shift the principal point, so when it is off
centre the glTF camera sees the largest window of the photo centred on it (the crop is recorded in
the camera's extras); USD expresses it exactly with aperture offsets.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from depthstudio.errors import OutputError, SettingsError
from depthstudio.geometry.mesh import DepthMesh
from depthstudio.geometry.points import PointCloud
from depthstudio.io.atomic import atomic_path, ensure_dir, write_text
from depthstudio.settings import Settings, setting

FORMATS = ("obj", "ply", "glb", "usdz", "splat")
#: Formats written by default (splats are asked for explicitly).
DEFAULT_FORMATS = ("obj", "ply", "glb", "usdz")
#: File name suffix of each format (splats are PLY files in the 3DGS layout).
SUFFIX = {"obj": ".obj", "ply": ".ply", "glb": ".glb", "usdz": ".usdz", "splat": ".splat.ply"}
#: AR Quick Look handles textures up to about this size per side; larger photos are downscaled in USDZ only.
USDZ_MAX_TEXTURE = 4096
#: Rows (vertices or faces) per chunk.
CHUNK = 1 << 18
#: Zeroth-order spherical-harmonic constant of 3D Gaussian splatting (colour = 0.5 + C0 * f_dc).
SH_C0 = 0.28209479177387814
#: Splat opacity (after the sigmoid) and standard deviation in pixel footprints, thickness along the normal.
SPLAT_OPACITY = 0.99
SPLAT_SIGMA = 0.6
SPLAT_THICKNESS = 0.05
#: Foreshortening is clamped at this |cos| of the angle between the view ray and the normal.
SPLAT_MIN_COS = 0.2


@dataclass
class ExportSettings(Settings):
    """Which files a mesh or point-cloud export writes, and how."""

    section = "export"

    formats: tuple | None = setting(None, label="Formats", choices=FORMATS, multiple=True, flag="--format",
                                    metavar="LIST", auto="obj,ply,glb,usdz; ply with --points",
                                    help="comma-separated formats; splat writes <stem>.splat.ply, 3D Gaussian "
                                         "splats in the standard 3DGS layout")
    unlit: bool = setting(True, label="Unlit",
                          help="GLB/USDZ: the photo's colours as they are (KHR_materials_unlit, an emissive USD "
                               "surface), so AR viewers do not light the photo a second time")

    def resolved(self, points: bool) -> tuple[str, ...]:
        """The formats to write: the chosen ones, else every mesh format but splats (PLY for point clouds)."""
        return tuple(self.formats) if self.formats else (("ply",) if points else DEFAULT_FORMATS)


def parse_formats(text: str | list | tuple) -> tuple[str, ...]:
    items = text.split(",") if isinstance(text, str) else list(text)
    formats = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in items if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise SettingsError(f"unknown export format {', '.join(unknown) or '(none)'}; choose from {','.join(FORMATS)}")
    return formats


def format_path(out_dir, stem: str, fmt: str) -> Path:
    return Path(out_dir) / f"{stem}{SUFFIX[fmt]}"


def output_paths(out_dir: str | os.PathLike, stem: str, formats=DEFAULT_FORMATS, textured: bool = True) -> list[Path]:
    """Every file an export of ``formats`` writes (the camera.json last)."""
    out = Path(out_dir)
    paths: list[Path] = []
    for fmt in parse_formats(formats):
        paths.append(format_path(out, stem, fmt))
        if fmt == "obj" and textured:
            paths += [out / f"{stem}.mtl", out / f"{stem}_texture.png"]
    paths.append(out / f"{stem}.camera.json")
    return paths


def is_complete(out_dir, stem: str, formats=DEFAULT_FORMATS, textured: bool = True) -> bool:
    return all(p.is_file() and p.stat().st_size > 0 for p in output_paths(out_dir, stem, formats, textured))


def vertex_colors(obj: DepthMesh | PointCloud, rows: slice = slice(None)) -> np.ndarray | None:
    """(N, 3) uint8 colours: the photo sampled at each vertex's UV (nearest pixel), for ``rows``."""
    if isinstance(obj, PointCloud):
        return None if obj.colors is None else obj.colors[rows, :3]
    if obj.texture is None:
        return None
    uv = obj.uvs[rows]
    h, w = obj.texture.shape[:2]
    x = (uv[:, 0] * np.float32(w)).astype(np.int64)
    np.clip(x, 0, w - 1, out=x)
    y = ((np.float32(1.0) - uv[:, 1]) * np.float32(h)).astype(np.int64)
    np.clip(y, 0, h - 1, out=y)
    y *= w
    y += x
    texture = obj.texture
    if texture.shape[2] == 3 and texture.dtype == np.uint8 and texture.flags.c_contiguous:
        pixels = texture.view(np.dtype((np.void, 3))).reshape(-1)  # one 3-byte item per pixel: one gather
        return pixels[y].view(np.uint8).reshape(-1, 3)
    return texture.reshape(h * w, -1)[y, :3]


def _to_json(data, indent: int | None = 2) -> str:
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

    return json.dumps(data, indent=indent, default=default) + ("\n" if indent else "")


# --- progress, cancel, space, atomic streams -------------------------------------------------------

class _Progress:
    """The jobs protocol for the writers: check() and advance() between chunks; no job, no-op."""

    def __init__(self, job):
        self.job = job

    def start(self, total: int, message: str) -> None:
        if self.job is not None:
            self.job.start(max(1, int(total)), message)

    def step(self, n: int = 1) -> None:
        if self.job is not None:
            self.job.check()
            self.job.advance(n)

    def check(self) -> None:
        if self.job is not None:
            self.job.check()


def _chunks(n: int, size: int | None = None):
    size = size or CHUNK
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


#: Threads that format chunks of text and splats at once (numpy releases the GIL in its loops);
#: each takes CHUNK / WORKERS rows, so the memory in flight stays that of one chunk.
WORKERS = max(1, min(4, os.cpu_count() or 1))


def _write_chunks(fh, produce, n: int, progress: _Progress) -> None:
    """fh.write(produce(rows)) for the row ranges of 0..n in order, formatted by WORKERS threads; one
    progress step per CHUNK rows, a cancel check between chunks."""
    if n == 0:
        return
    if WORKERS <= 1:
        for rows in _chunks(n):
            fh.write(produce(rows))
            progress.step()
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    size = max(1, CHUNK // WORKERS)
    stepped = 0
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="depthstudio-export") as pool:
        pending: deque = deque()

        def write_first() -> None:
            nonlocal stepped
            rows, future = pending.popleft()
            fh.write(future.result())
            while stepped < rows.stop // CHUNK:  # one step per CHUNK rows written
                stepped += 1
                progress.step()

        try:
            for rows in _chunks(n, size):
                progress.check()
                pending.append((rows, pool.submit(produce, rows)))
                while len(pending) >= WORKERS or (pending and pending[0][1].done()):
                    write_first()
            while pending:
                write_first()
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise
    while stepped < _n_chunks(n):
        stepped += 1
        progress.step()


def _n_chunks(n: int) -> int:
    return max(1, -(-int(n) // CHUNK))


def _human(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"


def _free_space(folder: Path) -> int | None:
    try:
        return int(shutil.disk_usage(folder).free)
    except OSError:
        return None


def _disk_full(target: Path, needed: int | None) -> OutputError:
    free = _free_space(target.parent)
    need = f"about {_human(needed)} needed, " if needed else ""
    have = f"{_human(free)} free in {target.parent}" if free is not None else "the disk is full"
    return OutputError(f"cannot write {target}: No space left on device ({need}{have})")


def _os_error(target: Path, exc: OSError, needed: int | None) -> OutputError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return _disk_full(target, needed)
    if exc.errno == errno.EROFS:
        return OutputError(f"cannot write {target}: the destination is read-only")
    return OutputError(f"cannot write {target}: {exc.strerror or exc}")


@contextlib.contextmanager
def _stream(target: Path, needed: int | None = None):
    """A binary file object whose data appears at ``target`` only when the block succeeds."""
    try:
        with atomic_path(target) as tmp:
            try:
                with open(tmp, "wb") as handle:
                    yield handle
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)  # free the space before saying how much there is
                raise _os_error(target, exc, needed) from None
    except OutputError as exc:
        if "Read-only" in str(exc) or "read-only" in str(exc):
            raise OutputError(f"cannot write {target}: the destination is read-only") from None
        raise


def _write_bytes(target: Path, data: bytes) -> Path:
    with _stream(target, len(data)) as fh:
        fh.write(data)
    return target


# --- texture ---------------------------------------------------------------------------------------

class _Textures:
    """The photo encoded once per export (PNG, compress level 1) and shared by the formats."""

    def __init__(self, texture: np.ndarray | None):
        self.texture = texture
        self._png: dict[int, bytes] = {}

    def png(self, max_side: int | None = None) -> bytes:
        import io

        from PIL import Image

        texture = self.texture
        assert texture is not None
        h, w = texture.shape[:2]
        scale = min(1.0, max_side / max(h, w)) if max_side else 1.0
        key = 0 if scale >= 1.0 or not max_side else int(max_side)
        if key not in self._png:
            image = Image.fromarray(np.ascontiguousarray(texture[..., :3]))
            if scale < 1.0:
                image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", compress_level=1)
            self._png[key] = buffer.getvalue()
        return self._png[key]

    def size_estimate(self) -> int:
        return 0 if self.texture is None else int(self.texture[..., :3].size * 0.7)


# --- the export ------------------------------------------------------------------------------------

def export(obj: DepthMesh | PointCloud, out_dir: str | os.PathLike, stem: str, formats=DEFAULT_FORMATS,
           metadata: dict | None = None, settings: ExportSettings | None = None, job=None,
           splats: DepthMesh | None = None) -> list[Path]:
    """Write ``obj`` as each of ``formats`` into ``out_dir`` plus ``<stem>.camera.json``; returns the paths.

    ``splats``: the mesh whose vertices become the Gaussians (pipeline.splat_source(): an even grid
    for a decimated ``obj``); default ``obj`` itself.

    Nothing is left behind when it fails or is cancelled (files written by this call are removed)."""
    formats = parse_formats(formats)
    settings = (settings or ExportSettings()).validate()
    if "splat" in formats and not isinstance(obj, (DepthMesh, PointCloud)):
        raise SettingsError("splat export needs a mesh or a point cloud")
    first = format_path(out_dir, stem, formats[0])
    try:
        out = ensure_dir(out_dir)
    except OutputError as exc:
        reason = "the destination is read-only" if _read_only(Path(out_dir)) else str(exc)
        raise OutputError(f"cannot write {first}: {reason}") from None
    meta = dict(metadata or {})
    intrinsics = getattr(obj, "intrinsics", None)
    if "intrinsics" not in meta and intrinsics is not None:
        meta["intrinsics"] = intrinsics.to_dict()
    textures = _Textures(obj.texture if isinstance(obj, DepthMesh) else None)
    _check_space(obj, out, stem, formats, textures)
    progress = _Progress(job)
    progress.start(sum(_work(splats if (fmt == "splat" and splats is not None) else obj, fmt) for fmt in formats),
                   f"writing {', '.join(f.upper() for f in formats)}")
    writers: dict[str, Callable[..., list[Path]]] = {
        "obj": _write_obj, "ply": _write_ply, "glb": _write_glb, "usdz": _write_usdz, "splat": _write_splat}
    written: list[Path] = []
    try:
        for fmt in formats:
            try:
                source = splats if (fmt == "splat" and splats is not None) else obj
                written += writers[fmt](source, out, stem, textures=textures, settings=settings, meta=meta,
                                        progress=progress)
            except MemoryError:
                raise OutputError(f"cannot write {format_path(out, stem, fmt)}: out of memory") from None
            except OSError as exc:
                raise _os_error(format_path(out, stem, fmt), exc, None) from None
        meta.setdefault("frame", "camera frame, glTF convention: x right, y up, camera at the origin looking down -z")
        meta["files"] = [p.name for p in written]
        if isinstance(obj, DepthMesh):
            meta["geometry"] = {"type": "mesh", "vertices": len(obj.vertices), "faces": obj.face_count,
                                "stride": obj.stride, "decimated": obj.decimated}
        else:
            meta["geometry"] = {"type": "points", "points": len(obj.points)}
        if "glb" in formats or "usdz" in formats:
            meta["unlit"] = settings.unlit
        if "splat" in formats:
            source = splats if splats is not None else obj
            meta["splats"] = {"count": len(source.vertices if isinstance(source, DepthMesh) else source.points),
                              "stride": getattr(source, "stride", 1), "sh_degree": 0}
        written.append(write_text(out / f"{stem}.camera.json", _to_json(meta)))
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return written


def _read_only(folder: Path) -> bool:
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        return bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _work(obj, fmt: str) -> int:
    n = len(obj.vertices) if isinstance(obj, DepthMesh) else len(obj.points)
    m = obj.face_count if isinstance(obj, DepthMesh) else 0
    if fmt == "obj":
        textured = isinstance(obj, DepthMesh) and obj.texture is not None
        return _n_chunks(n) * (2 if textured else 1) + (_n_chunks(m) if m else 0)
    if fmt in ("ply", "glb"):
        return _n_chunks(n) + (_n_chunks(m) if m else 0)
    if fmt == "splat":
        return _n_chunks(n)
    return 1


def estimate_size(obj, fmt: str, textures: _Textures | None = None) -> int:
    """About how many bytes ``fmt`` takes on disk (exact for PLY, GLB and splats, less the texture)."""
    tex = (textures or _Textures(getattr(obj, "texture", None))).size_estimate() if isinstance(obj, DepthMesh) else 0
    if isinstance(obj, DepthMesh):
        n, m = len(obj.vertices), obj.face_count
        digits = len(str(max(1, n)))
        if fmt == "ply":
            return _ply_layout(obj)[2]
        if fmt == "splat":
            return len(_splat_header(n)) + n * 68
        return {"obj": n * 58 + m * (2 * digits + 5) * 3 + tex,
                "glb": 4096 + n * 32 + m * 12 + tex, "usdz": 8192 + n * 32 + m * 16 + tex}[fmt]
    n = len(obj.points)
    if fmt == "ply":
        return _ply_layout(obj)[2]
    if fmt == "splat":
        return len(_splat_header(n)) + n * 68
    return {"obj": n * 80, "glb": 4096 + n * 16, "usdz": 8192 + n * 24}[fmt]


def _check_space(obj, out: Path, stem: str, formats, textures: _Textures) -> None:
    free = _free_space(out)
    if free is None:
        return
    total = 0
    for fmt in formats:
        size = estimate_size(obj, fmt, textures)
        total += size
        if total > free:
            target = format_path(out, stem, fmt)
            raise OutputError(f"cannot write {target}: No space left on device (about {_human(size)} needed for it, "
                              f"{_human(total)} for the export, {_human(free)} free in {out})")


# --- OBJ -------------------------------------------------------------------------------------------

def _write_obj(obj, out: Path, stem: str, textures: _Textures, progress: _Progress, **_) -> list[Path]:
    from depthstudio.geometry._text import face_lines, float_lines

    target = out / f"{stem}.obj"
    paths = [target]
    needed = estimate_size(obj, "obj", textures)
    if isinstance(obj, PointCloud):
        def point_lines(rows):
            if obj.colors is not None:
                return float_lines(b"v", np.concatenate([obj.points[rows], obj.colors[rows, :3] / 255.0], axis=1))
            return float_lines(b"v", obj.points[rows])

        with _stream(target, needed) as fh:
            fh.write(b"# DepthStudio point cloud\n")
            _write_chunks(fh, point_lines, len(obj.points), progress)
        return paths
    textured = obj.texture is not None
    with _stream(target, needed) as fh:
        fh.write(b"# DepthStudio mesh: camera frame, x right, y up, camera at the origin looking down -z\n")
        if textured:
            fh.write(f"mtllib {stem}.mtl\n".encode())
        _write_chunks(fh, lambda rows: float_lines(b"v", obj.vertices[rows]), len(obj.vertices), progress)
        if textured:
            _write_chunks(fh, lambda rows: float_lines(b"vt", obj.uvs[rows]), len(obj.vertices), progress)
        fh.write(b"usemtl photo\ns 1\n" if textured else b"s 1\n")
        _write_chunks(fh, lambda rows: face_lines(obj.faces[rows], repeat=2 if textured else 1), obj.face_count,
                      progress)
    if textured:
        mtl = (f"# DepthStudio\nnewmtl photo\nKa 1.000000 1.000000 1.000000\nKd 1.000000 1.000000 1.000000\n"
               f"Ks 0.000000 0.000000 0.000000\nd 1.000000\nillum 1\nmap_Kd {stem}_texture.png\n")
        paths.append(_write_bytes(out / f"{stem}_texture.png", textures.png()))
        paths.append(_write_bytes(out / f"{stem}.mtl", mtl.encode()))
    return paths


# --- PLY -------------------------------------------------------------------------------------------

def _ply_header(n: int, props: list[tuple[str, str]], faces: int | None = None, comments=()) -> bytes:
    lines = ["ply", "format binary_little_endian 1.0", *(f"comment {c}" for c in comments), f"element vertex {n}"]
    lines += [f"property {kind} {name}" for name, kind in props]
    if faces is not None:
        lines += [f"element face {faces}", "property list uchar int vertex_indices"]
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii")


_PLY_TYPES = {"f4": "float", "u1": "uchar"}


def _ply_layout(obj) -> tuple[bytes, np.dtype, int]:
    """The header, vertex record and file size of the PLY of ``obj``."""
    mesh = isinstance(obj, DepthMesh)
    points = obj.vertices if mesh else obj.points
    has_colors = (obj.texture is not None) if mesh else (obj.colors is not None)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if obj.normals is not None:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if has_colors:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vdtype = np.dtype(fields)
    n, m = len(points), (obj.face_count if mesh else None)
    header = _ply_header(n, [(name, _PLY_TYPES[kind[-2:]]) for name, kind in fields], m,
                         comments=("DepthStudio", "camera frame: x right, y up, camera at the origin looking down -z"))
    return header, vdtype, len(header) + n * vdtype.itemsize + (m or 0) * 13


def _splat_header(n: int) -> bytes:
    return _ply_header(n, [(name, "float") for name in SPLAT_FIELDS],
                       comments=("DepthStudio 3D Gaussian splats (3DGS layout, SH degree 0)",
                                 "camera frame: x right, y up, camera at the origin looking down -z"))


def _write_ply(obj, out: Path, stem: str, progress: _Progress, **_) -> list[Path]:
    target = out / f"{stem}.ply"
    mesh = isinstance(obj, DepthMesh)
    points = obj.vertices if mesh else obj.points
    normals = obj.normals
    has_colors = (obj.texture is not None) if mesh else (obj.colors is not None)
    header, vdtype, size = _ply_layout(obj)
    n, m = len(points), (obj.face_count if mesh else None)
    def vertex_block(rows):
        count = rows.stop - rows.start
        block = np.empty((count, vdtype.itemsize), np.uint8)  # the records as bytes: whole-field copies
        block[:, 0:12] = np.ascontiguousarray(points[rows], dtype="<f4").view(np.uint8).reshape(count, 12)
        at = 12
        if normals is not None:
            block[:, 12:24] = np.ascontiguousarray(normals[rows], dtype="<f4").view(np.uint8).reshape(count, 12)
            at = 24
        if has_colors:
            block[:, at:at + 3] = vertex_colors(obj, rows)
        return block.data

    def face_block(rows):
        count = rows.stop - rows.start
        block = np.empty((count, 13), np.uint8)
        block[:, 0] = 3
        block[:, 1:] = np.ascontiguousarray(obj.faces[rows], dtype="<i4").view(np.uint8).reshape(count, 12)
        return block.data

    with _stream(target, size) as fh:
        fh.write(header)
        _write_chunks(fh, vertex_block, n, progress)
        if m is not None:
            _write_chunks(fh, face_block, m, progress)
    return [target]


# --- GLB -------------------------------------------------------------------------------------------

def camera_intrinsics_extras(intrinsics, source_meta: dict | None = None) -> dict:
    extras = {"intrinsics": intrinsics.to_dict(), "intrinsics_source": intrinsics.source}
    if source_meta and source_meta.get("depth"):
        extras["depth"] = {k: source_meta["depth"].get(k) for k in ("kind", "model_id", "units")}
    return extras


def gltf_camera(intrinsics, znear: float) -> tuple[dict, dict]:
    """A glTF perspective camera for the intrinsics, and the crop window it shows.

    glTF cameras are centred: with the principal point off centre, the camera shows the largest
    window of the photo centred on it (pixels x0..x1, y0..y1), whose rays match the photo's exactly."""
    k = intrinsics
    half_w = min(k.cx, k.width - k.cx)
    half_h = min(k.cy, k.height - k.cy)
    if not (half_w > 0 and half_h > 0):  # principal point outside the photo: fall back to the frame
        half_w, half_h = k.width / 2.0, k.height / 2.0
    yfov = 2.0 * math.atan(half_h / k.fy)
    aspect = (half_w / k.fx) / (half_h / k.fy)
    camera = {"type": "perspective", "name": "photo",
              "perspective": {"yfov": yfov, "aspectRatio": aspect, "znear": znear}}
    crop = {"x0": k.cx - half_w, "x1": k.cx + half_w, "y0": k.cy - half_h, "y1": k.cy + half_h,
            "cropped": bool(abs(half_w - k.width / 2.0) > 1e-6 or abs(half_h - k.height / 2.0) > 1e-6)}
    return camera, crop


def _znear(points: np.ndarray) -> float:
    if not len(points):
        return 0.01
    nearest = float(-points[:, 2].max()) if len(points) else 1.0
    return max(1e-4, min(0.1, 0.5 * nearest)) if nearest > 0 else 0.01


def _write_glb(obj, out: Path, stem: str, textures: _Textures, settings: ExportSettings, meta: dict,
               progress: _Progress, **_) -> list[Path]:
    from depthstudio import __version__

    target = out / f"{stem}.glb"
    mesh = isinstance(obj, DepthMesh)
    points = np.ascontiguousarray(obj.vertices if mesh else obj.points, dtype=np.float32)
    n = len(points)
    views, accessors, blobs = [], [], []  # blobs: (offset, length, writer)
    offset = 0

    def add_view(length: int, write, target_kind: int | None = None, stride: int | None = None) -> int:
        nonlocal offset
        view = {"buffer": 0, "byteOffset": offset, "byteLength": int(length)}
        if target_kind:
            view["target"] = target_kind
        if stride:
            view["byteStride"] = stride
        views.append(view)
        blobs.append((offset, int(length), write))
        offset += (int(length) + 3) // 4 * 4
        return len(views) - 1

    def add_accessor(view: int, component: int, count: int, kind: str, **extra) -> int:
        accessors.append({"bufferView": view, "componentType": component, "count": int(count), "type": kind, **extra})
        return len(accessors) - 1

    def rows_writer(array, transform=None, per_chunk=True):
        def write(fh):
            for rows in _chunks(len(array)):
                block = array[rows] if transform is None else transform(array[rows])
                fh.write(np.ascontiguousarray(block).data)
                if per_chunk:
                    progress.step()
        return write

    lo = points.min(axis=0) if n else np.zeros(3, np.float32)
    hi = points.max(axis=0) if n else np.zeros(3, np.float32)
    attributes = {"POSITION": add_accessor(add_view(n * 12, rows_writer(points), 34962), 5126, n, "VEC3",
                                           min=[float(v) for v in lo], max=[float(v) for v in hi])}
    primitive: dict = {"attributes": attributes}
    gltf: dict = {"asset": {"version": "2.0", "generator": f"DepthStudio {__version__}"}}
    extensions_used = []
    if mesh:
        normals = np.ascontiguousarray(obj.normals, dtype=np.float32)
        attributes["NORMAL"] = add_accessor(add_view(n * 12, rows_writer(normals, per_chunk=False), 34962),
                                            5126, n, "VEC3")
        textured = obj.texture is not None
        if textured:
            def flip_v(uv):
                out_uv = np.array(uv, dtype=np.float32)
                out_uv[:, 1] = 1.0 - out_uv[:, 1]
                return out_uv
            attributes["TEXCOORD_0"] = add_accessor(add_view(n * 8, rows_writer(obj.uvs, flip_v, False), 34962),
                                                    5126, n, "VEC2")
        faces = obj.faces
        m = len(faces)
        primitive["indices"] = add_accessor(add_view(m * 12, rows_writer(faces), 34963), 5125, 3 * m, "SCALAR")
        primitive["mode"] = 4
        pbr: dict[str, Any] = {"metallicFactor": 0.0, "roughnessFactor": 1.0}
        material: dict[str, Any] = {"name": "photo", "doubleSided": True, "pbrMetallicRoughness": pbr}
        if textured:
            png = textures.png()
            image_view = add_view(len(png), lambda fh: fh.write(png))
            gltf["images"] = [{"name": "photo", "mimeType": "image/png", "bufferView": image_view}]
            gltf["samplers"] = [{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}]
            gltf["textures"] = [{"sampler": 0, "source": 0}]
            pbr["baseColorTexture"] = {"index": 0}
        else:
            pbr["baseColorFactor"] = [0.8, 0.8, 0.8, 1.0]
        if settings.unlit:
            material["extensions"] = {"KHR_materials_unlit": {}}
            extensions_used.append("KHR_materials_unlit")
        gltf["materials"] = [material]
        primitive["material"] = 0
    else:
        primitive["mode"] = 0
        if obj.colors is not None:
            def rgba(c):
                block = np.full((len(c), 4), 255, np.uint8)
                block[:, :3] = c[:, :3]
                return block
            attributes["COLOR_0"] = add_accessor(add_view(n * 4, rows_writer(obj.colors, rgba, False), 34962, 4),
                                                 5121, n, "VEC4", normalized=True)
    if extensions_used:
        gltf["extensionsUsed"] = extensions_used
    gltf["meshes"] = [{"name": stem, "primitives": [primitive]}]
    nodes = [{"name": stem, "mesh": 0}]
    intrinsics = getattr(obj, "intrinsics", None)
    if intrinsics is not None:
        camera, crop = gltf_camera(intrinsics, _znear(points))
        extras = camera_intrinsics_extras(intrinsics, meta)
        extras["view_window_px"] = crop
        camera["extras"] = extras
        gltf["cameras"] = [camera]
        nodes.append({"name": "photo camera", "camera": 0, "extras": extras})
        gltf["asset"]["extras"] = {"intrinsics_source": intrinsics.source}
    gltf["nodes"] = nodes
    gltf["scenes"] = [{"name": stem, "nodes": list(range(len(nodes)))}]
    gltf["scene"] = 0
    gltf["accessors"] = accessors
    gltf["bufferViews"] = views
    gltf["buffers"] = [{"byteLength": offset}]
    text = _to_json(gltf, indent=None).encode("utf-8")
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + offset
    if total >= 2**32:
        raise OutputError(f"cannot write {target}: {_human(total)} is over the 4 GB limit of GLB; lower --max-faces")
    with _stream(target, total) as fh:
        fh.write(struct.pack("<4sII", b"glTF", 2, total))
        fh.write(struct.pack("<I4s", len(text), b"JSON"))
        fh.write(text)
        fh.write(struct.pack("<I4s", offset, b"BIN\x00"))
        position = 0
        for start, length, write in blobs:
            if start > position:
                fh.write(b"\x00" * (start - position))
            write(fh)
            position = start + length
        if offset > position:
            fh.write(b"\x00" * (offset - position))
    return [target]


# --- USDZ ------------------------------------------------------------------------------------------

def usd_camera_values(intrinsics, horizontal_aperture: float = 36.0) -> dict:
    """UsdGeom.Camera focal length, apertures and aperture offsets (mm) reproducing fx, fy, cx, cy."""
    k = intrinsics
    focal = k.fx * horizontal_aperture / k.width
    vertical = focal * k.height / k.fy
    return {"focalLength": focal, "horizontalAperture": horizontal_aperture, "verticalAperture": vertical,
            "horizontalApertureOffset": (k.width / 2.0 - k.cx) * horizontal_aperture / k.width,
            "verticalApertureOffset": (k.cy - k.height / 2.0) * vertical / k.height}


def _write_usdz(obj, out: Path, stem: str, textures: _Textures, settings: ExportSettings, meta: dict,
                progress: _Progress, **_) -> list[Path]:
    try:
        from pxr import Gf, Sdf, Usd, UsdGeom, UsdShade, Vt
    except ImportError:
        raise OutputError("writing USDZ needs usd-core (pip install usd-core)") from None

    target = out / f"{stem}.usdz"
    needed = estimate_size(obj, "usdz", textures)
    with tempfile.TemporaryDirectory(prefix=".depthstudio-usd-", dir=out) as tmp:
        layer = Path(tmp) / f"{stem}.usdc"
        stage = Usd.Stage.CreateNew(str(layer))
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
        UsdGeom.SetStageMetersPerUnit(stage, 1.0)
        root = UsdGeom.Xform.Define(stage, "/Root")
        stage.SetDefaultPrim(root.GetPrim())
        points = np.ascontiguousarray(obj.points if isinstance(obj, PointCloud) else obj.vertices, dtype=np.float32)
        lo, hi = points.min(axis=0), points.max(axis=0)
        extent = Vt.Vec3fArray([Gf.Vec3f(*map(float, lo)), Gf.Vec3f(*map(float, hi))])
        texture_name = f"{stem}_texture.png"
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
            counts = Vt.IntArray(obj.face_count, 3)
            mesh.CreateFaceVertexCountsAttr(counts)
            del counts
            mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(np.ascontiguousarray(obj.faces, np.int32).ravel()))
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
            colour_input = "emissiveColor" if settings.unlit else "diffuseColor"
            if settings.unlit:  # unlit: black diffuse, no specular, the photo as emission
                surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(0.0, 0.0, 0.0))
                surface.CreateInput("useSpecularWorkflow", Sdf.ValueTypeNames.Int).Set(1)
                surface.CreateInput("specularColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(0.0, 0.0, 0.0))
            if obj.texture is not None:
                (Path(tmp) / texture_name).write_bytes(textures.png(USDZ_MAX_TEXTURE))
                reader = UsdShade.Shader.Define(stage, "/Root/Materials/Photo/UV")
                reader.CreateIdAttr("UsdPrimvarReader_float2")
                reader.CreateInput("varname", Sdf.ValueTypeNames.Token).Set("st")
                sampler = UsdShade.Shader.Define(stage, "/Root/Materials/Photo/Texture")
                sampler.CreateIdAttr("UsdUVTexture")
                sampler.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(texture_name)
                sampler.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
                sampler.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set("clamp")
                sampler.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("clamp")
                sampler.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("sRGB")
                sampler.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
                surface.CreateInput(colour_input, Sdf.ValueTypeNames.Color3f).ConnectToSource(
                    sampler.ConnectableAPI(), "rgb")
            else:
                surface.CreateInput(colour_input, Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(0.8, 0.8, 0.8))
            material.CreateSurfaceOutput().ConnectToSource(surface.ConnectableAPI(), "surface")
            UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(material)
            mesh.GetPrim().SetCustomDataByKey("depthstudio:unlit", bool(settings.unlit))
        intrinsics = getattr(obj, "intrinsics", None)
        if intrinsics is not None:
            camera = UsdGeom.Camera.Define(stage, "/Root/PhotoCamera")
            values = usd_camera_values(intrinsics)
            camera.CreateProjectionAttr(UsdGeom.Tokens.perspective)
            camera.CreateFocalLengthAttr(values["focalLength"])
            camera.CreateHorizontalApertureAttr(values["horizontalAperture"])
            camera.CreateVerticalApertureAttr(values["verticalAperture"])
            camera.CreateHorizontalApertureOffsetAttr(values["horizontalApertureOffset"])
            camera.CreateVerticalApertureOffsetAttr(values["verticalApertureOffset"])
            far = float(max(1.0, -lo[2] * 2.0))
            camera.CreateClippingRangeAttr(Gf.Vec2f(_znear(points), far))
            extras = camera_intrinsics_extras(intrinsics, meta)
            camera.GetPrim().SetCustomDataByKey("depthstudio", _usd_dict(extras))
            stage.SetMetadataByDictKey("customLayerData", "depthstudio:intrinsics_source", intrinsics.source)
        progress.check()
        try:
            stage.GetRootLayer().Save()
        except Exception as exc:  # pxr raises Tf.ErrorException for I/O failures
            raise _usd_error(target, exc, needed, out) from None
        del stage
        progress.check()
        with atomic_path(target) as tmp_target:
            try:
                writer = Sdf.ZipFileWriter.CreateNew(str(tmp_target))
                writer.AddFile(str(layer), layer.name)
                if (Path(tmp) / texture_name).is_file():
                    writer.AddFile(str(Path(tmp) / texture_name), texture_name)
                writer.Save()
                del writer
            except Exception as exc:  # pxr raises Tf.ErrorException for I/O failures
                raise _usd_error(target, exc, needed, out) from None
            if tmp_target.stat().st_size == 0:
                raise _disk_full(target, needed)
    progress.step()
    return [target]


def _usd_error(target: Path, exc: Exception, needed: int, out: Path) -> OutputError:
    if isinstance(exc, OSError):
        return _os_error(target, exc, needed)
    text = str(exc)
    if "No space left" in text or "quota" in text.lower():
        return _disk_full(target, needed)
    if "Read-only" in text or _read_only(out):
        return OutputError(f"cannot write {target}: the destination is read-only")
    free = _free_space(out)
    if free is not None and free < needed:
        return _disk_full(target, needed)
    last = [line.strip() for line in text.splitlines() if line.strip()]
    return OutputError(f"cannot write {target}: usd-core failed ({last[-1] if last else type(exc).__name__})")


def _usd_dict(data):
    """Nested dicts with only the value types USD custom data takes (str, float, int, bool)."""
    if isinstance(data, dict):
        return {str(k): _usd_dict(v) for k, v in data.items() if v is not None}
    if isinstance(data, (bool, int, str)):
        return data
    if isinstance(data, (float, np.floating)):
        return float(data)
    return str(data)


def _usd_name(stem: str) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in stem) or "mesh"
    return name if not name[0].isdigit() else f"_{name}"


# --- 3D Gaussian splats ----------------------------------------------------------------------------

SPLAT_FIELDS = ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")


class _Footprints:
    """Per vertex, the spacing of the samples around it in photo pixels: the stride on a pixel grid;
    for a decimated mesh, from the number of vertices that project into each cell of a coarse grid
    (cells holding about 16 of them), so no per-vertex scratch arrays are needed."""

    def __init__(self, obj):
        self.k = obj.intrinsics
        points = obj.vertices if isinstance(obj, DepthMesh) else obj.points
        self.points = points
        self.grid = None
        strides = getattr(obj, "info", {}).get("strides") if isinstance(obj, DepthMesh) else None
        self.spacing = math.sqrt(strides[0] * strides[1]) if strides else float(getattr(obj, "stride", 1) or 1)
        if isinstance(obj, DepthMesh) and obj.decimated and len(points):
            k = self.k
            spacing = math.sqrt(k.width * k.height / len(points))
            self.cell = max(2.0, 4.0 * spacing)
            self.shape = (int(math.ceil(k.height / self.cell)) + 1, int(math.ceil(k.width / self.cell)) + 1)
            counts = np.zeros(self.shape[0] * self.shape[1], np.int64)
            for rows in _chunks(len(points)):
                counts += np.bincount(self._cells(points[rows]), minlength=len(counts))
            self.grid = counts

    def _cells(self, p: np.ndarray) -> np.ndarray:
        k = self.k
        z = np.maximum(-p[:, 2], 1e-12)
        col = np.clip((p[:, 0] / z * k.fx + k.cx) / self.cell, 0, self.shape[1] - 1).astype(np.int64)
        row = np.clip((k.cy - p[:, 1] / z * k.fy) / self.cell, 0, self.shape[0] - 1).astype(np.int64)
        return row * self.shape[1] + col

    def __call__(self, rows: slice) -> np.ndarray:
        n = rows.stop - rows.start
        if self.grid is None:
            return np.full(n, self.spacing, np.float32)
        count = self.grid[self._cells(self.points[rows])]
        return (self.cell / np.sqrt(np.maximum(count, 1))).astype(np.float32)


def splat_block(points: np.ndarray, normals: np.ndarray | None, colors: np.ndarray, footprint_px: np.ndarray,
                intrinsics) -> np.ndarray:
    """(n, 17) float32 rows in SPLAT_FIELDS order: flat Gaussians on the surface, one per sample.

    Each Gaussian lies in the tangent plane: one axis across the view ray (its size the pixel's
    footprint at its depth), the other along the slope, stretched by the foreshortening 1/|cos|,
    and a thin third axis along the normal. Computed per component (contiguous 1-D arrays)."""
    p = np.asarray(points, dtype=np.float32)
    n = len(p)
    px, py, pz = np.ascontiguousarray(p.T)
    inv = 1.0 / np.maximum(np.sqrt(px * px + py * py + pz * pz), np.float32(1e-12))
    vx, vy, vz = px * inv, py * inv, pz * inv  # the view ray
    if normals is None:
        nx, ny, nz = -vx, -vy, -vz
    else:
        nx, ny, nz = np.ascontiguousarray(np.asarray(normals, dtype=np.float32).T)
    # axis a = n x v: perpendicular to the view ray and the normal (any tangent when they are parallel)
    ax, ay, az = ny * vz - nz * vy, nz * vx - nx * vz, nx * vy - ny * vx
    la = np.sqrt(ax * ax + ay * ay + az * az)
    bad = la < 1e-6
    if bad.any():  # n x (1, 0, 0), else the y axis
        ax[bad], ay[bad], az[bad] = 0.0, nz[bad], -ny[bad]
        la[bad] = np.sqrt(ay[bad] ** 2 + az[bad] ** 2)
        still = bad & (la < 1e-6)
        ax[still], ay[still], az[still], la[still] = 0.0, 1.0, 0.0, 1.0
    ax /= la
    ay /= la
    az /= la
    bx, by, bz = ny * az - nz * ay, nz * ax - nx * az, nx * ay - ny * ax  # b = n x a
    cos = np.abs(nx * vx + ny * vy + nz * vz)
    np.maximum(cos, np.float32(SPLAT_MIN_COS), out=cos)
    z = np.maximum(-pz, np.float32(1e-12))
    size = z * (footprint_px * np.float32(SPLAT_SIGMA / math.sqrt(intrinsics.fx * intrinsics.fy)))
    np.maximum(size, np.float32(1e-9), out=size)
    log_size = np.log(size)
    out = np.empty((n, 17), np.float32)
    out[:, 0:3] = p
    out[:, 3], out[:, 4], out[:, 5] = nx, ny, nz
    out[:, 6:9] = np.asarray(colors[:, :3], dtype=np.float32) * np.float32(1.0 / (255.0 * SH_C0))
    out[:, 6:9] -= np.float32(0.5 / SH_C0)
    out[:, 9] = math.log(SPLAT_OPACITY / (1.0 - SPLAT_OPACITY))
    out[:, 10] = log_size
    out[:, 11] = log_size - np.log(cos)
    out[:, 12] = log_size + np.float32(math.log(SPLAT_THICKNESS))
    _quaternion_into(out[:, 13:17], (ax, ay, az), (bx, by, bz), (nx, ny, nz))
    return out


def _quaternion_into(out: np.ndarray, c0, c1, c2) -> None:
    """Unit quaternions (w, x, y, z) of the rotations with columns c0, c1, c2 (component arrays),
    written into ``out`` (n, 4). Branch-free: each magnitude from the diagonal, its sign from the
    antisymmetric part."""
    m00, m10, m20 = c0
    m01, m11, m21 = c1
    m02, m12, m22 = c2
    w = np.sqrt(np.maximum(0.0, 1.0 + m00 + m11 + m22))
    x = np.copysign(np.sqrt(np.maximum(0.0, 1.0 + m00 - m11 - m22)), m21 - m12)
    y = np.copysign(np.sqrt(np.maximum(0.0, 1.0 - m00 + m11 - m22)), m02 - m20)
    z = np.copysign(np.sqrt(np.maximum(0.0, 1.0 - m00 - m11 + m22)), m10 - m01)
    inv = 1.0 / np.sqrt(w * w + x * x + y * y + z * z)
    out[:, 0], out[:, 1], out[:, 2], out[:, 3] = w * inv, x * inv, y * inv, z * inv


def _matrix_to_quaternion(c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """(n, 4) float32 unit quaternions (w, x, y, z) of rotation matrices with columns c0, c1, c2."""
    q = np.empty((len(c0), 4), np.float32)
    _quaternion_into(q, tuple(np.asarray(c0, np.float32).T), tuple(np.asarray(c1, np.float32).T),
                     tuple(np.asarray(c2, np.float32).T))
    return q


def _write_splat(obj, out: Path, stem: str, progress: _Progress, **_) -> list[Path]:
    target = format_path(out, stem, "splat")
    mesh = isinstance(obj, DepthMesh)
    points = obj.vertices if mesh else obj.points
    intrinsics = obj.intrinsics
    if intrinsics is None:
        raise SettingsError(f"cannot write {target}: splats need the camera intrinsics")
    n = len(points)
    footprint = _Footprints(obj)
    header = _splat_header(n)
    def block(rows):
        colors = vertex_colors(obj, rows)
        if colors is None:
            colors = np.full((rows.stop - rows.start, 3), 200, np.uint8)
        normals = obj.normals[rows] if obj.normals is not None else None
        return splat_block(points[rows], normals, colors, footprint(rows), intrinsics).data

    with _stream(target, len(header) + n * 68) as fh:
        fh.write(header)
        _write_chunks(fh, block, n, progress)
    return [target]
