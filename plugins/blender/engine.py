"""Photo -> depth -> mesh arrays, for the add-on. No bpy here: plain Python over the DepthStudio core.

The request carries the core's own settings objects (ModelSettings, DepthFileSettings, DepthMapping,
CameraSettings, MeshSettings). Depth comes from the core's DepthSource (a depth file the user brings,
paired by stem when a folder is given, or the model run with ONNX Runtime inside Blender's Python:
the "blender" route), or from an external ``depthstudio`` executable that writes ``<stem>_depth.npy``
(the "external" route, for models Blender's Python cannot run). The mesh, UVs and intrinsics always
come from the core's geometry (numpy only), so the add-on merely copies arrays into Blender.
Progress and cancel go through a depthstudio.jobs.Job.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROUTES = ("AUTO", "BLENDER", "EXTERNAL")
#: The settings sections a request carries, in the order a settings file lists them.
SECTIONS = ("depth", "mapping", "camera", "model", "mesh")


class AddonError(Exception):
    """A message for the operator's report (the core's DepthStudioError is reported the same way)."""


@dataclass
class Request:
    """One photo and the core settings to make it with (None: the core's defaults)."""

    filepath: str
    model: object = None  # depthstudio.source.ModelSettings
    files: object = None  # depthstudio.source.DepthFileSettings
    mapping: object = None  # depthstudio.geometry.depth.DepthMapping
    camera: object = None  # depthstudio.geometry.camera.CameraSettings
    mesh: object = None  # depthstudio.geometry.mesh.MeshSettings
    route: str = "AUTO"
    executable: str = ""
    online: bool = True  # Blender's "Allow Online Access"; off: only weights already cached are used

    def __post_init__(self) -> None:
        core()
        from depthstudio.geometry.camera import CameraSettings
        from depthstudio.geometry.depth import DepthMapping
        from depthstudio.geometry.mesh import MeshSettings
        from depthstudio.source import DepthFileSettings, ModelSettings

        for name, cls in (("model", ModelSettings), ("files", DepthFileSettings), ("mapping", DepthMapping),
                          ("camera", CameraSettings), ("mesh", MeshSettings)):
            value = getattr(self, name)
            setattr(self, name, (value if value is not None else cls()).validate())

    def sections(self) -> dict:
        """{section: settings}, as a settings file holds them."""
        return {"depth": self.files, "mapping": self.mapping, "camera": self.camera, "model": self.model,
                "mesh": self.mesh}


@dataclass
class Result:
    photo: object  # depthstudio Photo
    depth: object  # depthstudio DepthMap
    geometry: object  # DepthMesh | PointCloud
    intrinsics: object  # Intrinsics
    route: str  # "file" | "blender" | "external" | "cache"
    metadata: dict = field(default_factory=dict)


def core():
    """Import the DepthStudio core, or say how to get it."""
    try:
        for name in ("depthstudio", "depthstudio.geometry.camera", "depthstudio.geometry.depth", "depthstudio.geometry.mesh"):
            importlib.import_module(name)
    except ImportError as exc:
        raise AddonError(
            "the DepthStudio core is not installed in Blender's Python "
            f"({exc}); install the extension zip that bundles it (see docs/blender.md)"
        ) from None
    return importlib.import_module("depthstudio")


def onnxruntime_available() -> bool:
    return _has_module("onnxruntime")


def needs_torch(model: str) -> bool:
    """True for a local transformers folder, or a catalogue model published without ONNX weights."""
    path = Path(model).expanduser()
    if path.is_dir():
        return not any(path.glob("*.onnx")) and not any(path.glob("onnx/*.onnx"))
    if path.suffix.lower() == ".onnx":
        return False
    from depthstudio.models.catalogue import CATALOGUE

    info = CATALOGUE.get(model)
    return bool(info is not None and not info.onnx_repo)


def find_executable(configured: str) -> str | None:
    """The external ``depthstudio`` executable: the preference, else one on PATH."""
    if configured:
        path = Path(configured).expanduser()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which("depthstudio")


def choose_route(request: Request) -> str:
    """Which way depth is computed for this request: "blender" or "external"."""
    model = request.model.model
    route = request.route.upper()
    if route not in ROUTES:
        raise AddonError(f"unknown inference route {request.route!r}; use one of {', '.join(ROUTES)}")
    runs_here = onnxruntime_available() and not needs_torch(model)
    if route == "BLENDER" or (route == "AUTO" and not find_executable(request.executable) and not runs_here):
        if not onnxruntime_available():
            tail = ("install the extension zip that bundles it, or choose the external executable in the add-on "
                    "preferences") if route == "BLENDER" else _no_executable_message(request.executable)
            raise AddonError(f"ONNX Runtime is not installed in Blender's Python; {tail}")
        if needs_torch(model):
            tail = ("use an .onnx model or the external executable (add-on preferences)" if route == "BLENDER"
                    else _no_executable_message(request.executable))
            raise AddonError(f"model {model!r} needs PyTorch, which Blender's Python lacks; {tail}")
    if route == "EXTERNAL":
        if not find_executable(request.executable):
            raise AddonError(_no_executable_message(request.executable))
        return "external"
    return "blender" if route == "BLENDER" or runs_here else "external"


def _no_executable_message(configured: str) -> str:
    if configured:
        return (f"the DepthStudio executable {configured!r} does not exist or is not executable; "
                "fix it in Edit > Preferences > Add-ons > DepthStudio")
    return ("no `depthstudio` executable is set in Edit > Preferences > Add-ons > DepthStudio "
            "and none is on PATH")


# The redo panel re-runs the operator on every tweak, and only geometry settings usually change: the
# last depth map is kept (the core keeps the loaded estimator).
_depth_cache: dict = {}


def clear_caches() -> None:
    _depth_cache.clear()


def _file_key(path) -> tuple:
    try:
        st = os.stat(path)
    except (OSError, TypeError):
        return (str(path), None)
    return (os.path.abspath(path), st.st_mtime_ns, st.st_size)


def _check_cached(model: str) -> None:
    """With online access off, a catalogue model must already be in the local cache."""
    from depthstudio.models.catalogue import CATALOGUE
    from depthstudio.models.weights import cached_status

    info = CATALOGUE.get(model)
    if info is not None and not cached_status(info).get("onnx", False):
        raise AddonError(
            f"model {model!r} is not downloaded yet and Blender's online access is off; allow it in "
            "Edit > Preferences > System > Network, or set Model to a local .onnx file"
        )


def model_kind(model: str) -> str:
    """What a model predicts, without loading it (the external route gets only numbers back)."""
    from depthstudio.models.catalogue import CATALOGUE
    from depthstudio.models.weights import model_kind_from_folder

    path = Path(model).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return model_kind_from_folder(path)
    info = CATALOGUE.get(model)
    if info is not None:
        return info.kind
    return "metric" if "metric" in path.name.lower() else "disparity"


def estimate_external(photo_path: Path, model, executable: str, job=None, timeout: float = 3600.0,
                      online: bool = True):
    """Depth from ``depthstudio depth IMAGE -o TMP --model M``; reads ``<stem>_depth.npy``.

    ``model`` is the core's ModelSettings; ``job`` (a depthstudio.jobs.Job) shows progress and cancels."""
    import numpy as np

    from depthstudio.depthmap import DepthMap
    from depthstudio.jobs import Job

    job = job or Job()
    exe = find_executable(executable)
    name = str(Path(model.model).expanduser().resolve()) if Path(model.model).expanduser().exists() else model.model
    if not exe:
        raise AddonError(_no_executable_message(executable))
    with tempfile.TemporaryDirectory(prefix="depthstudio-blender-") as tmp:
        cmd = [exe, "depth", str(photo_path), "-o", tmp, "--model", name, "--input-size", str(model.input_size)]
        if model.backend != "auto":
            cmd += ["--backend", model.backend]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        if not online:  # Blender's "Allow Online Access" is off: the helper must not download either
            env["HF_HUB_OFFLINE"] = "1"
        job.start(100, f"Running {Path(exe).name} depth ({name})")
        errfile = Path(tmp) / "stderr.txt"
        with open(errfile, "w") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
            start = time.monotonic()
            try:
                while proc.poll() is None:
                    elapsed = time.monotonic() - start
                    if elapsed > timeout:
                        raise AddonError(f"{Path(exe).name} depth took longer than {timeout:.0f} s; stopped")
                    # the external process reports no fraction: creep towards 90 % so the bar moves
                    creep = 90.0 * (1.0 - 1.0 / (1.0 + elapsed / 10.0))
                    job.advance(max(0.0, creep - job.done), f"Estimating depth ({name})")
                    time.sleep(0.1)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        if proc.returncode != 0:
            lines = [ln for ln in errfile.read_text(errors="replace").splitlines() if ln.strip()]
            detail = lines[-1] if lines else f"exit status {proc.returncode}"
            detail = detail.removeprefix("depthstudio: error: ")
            raise AddonError(f"the DepthStudio executable failed on {photo_path.name}: {detail}")
        found = sorted(Path(tmp).rglob(f"{photo_path.stem}_depth.npy"))
        if not found:
            raise AddonError(f"{Path(exe).name} depth wrote no {photo_path.stem}_depth.npy; is it a DepthStudio executable?")
        values = np.load(found[0], allow_pickle=False)
        kind, focal = model_kind(name), None
        try:  # the model's focal estimate and depth kind (Depth Pro, MoGe-2), written beside the depth
            from depthstudio.io.depthfiles import read_sidecar, read_sidecar_focal

            focal = read_sidecar_focal(found[0], values.shape[1])
            kind = (read_sidecar(found[0]) or {}).get("kind", kind)
        except ImportError:
            pass
    job.advance(job.total - job.done)
    return DepthMap(values.astype(np.float32), kind=kind if kind in ("disparity", "metric") else "disparity",
                    model_id=name, focal_px=focal)


def depth_source(request: Request):
    """The core's DepthSource for the request (the model on ONNX Runtime for the "blender" route)."""
    from depthstudio.source import DepthSource

    model = request.model
    if request.files.depth is None and choose_route(request) == "blender":
        model = dataclasses.replace(model, backend="onnx")
    return DepthSource(model, request.files)


def read_depth(request: Request, photo, source=None, job=None):
    """The DepthMap for the request (its depth file, or a model) and the route taken."""
    from depthstudio.jobs import Job

    job = job or Job()
    source = source or depth_source(request)
    if not source.uses_model:
        job.start(1, f"Reading depth for {Path(request.filepath).name}")
        depth = source.depth_for(photo)
        job.advance()
        return depth, "file"
    route = choose_route(request)
    key = (_file_key(request.filepath), source.key(), _file_key(request.model.model), route)
    if _depth_cache.get("key") == key:
        return _depth_cache["depth"], "cache"
    if route == "blender":
        if not request.online:
            _check_cached(request.model.model)
        job.start(2, f"Loading model {request.model.model}")
        estimator = source.estimator()
        job.advance(1, f"Estimating depth ({estimator.model_id})")
        depth = estimator.predict(photo)
        job.advance()
    else:
        depth = estimate_external(Path(request.filepath), request.model, request.executable, job,
                                  online=request.online)
    if depth.shape != (photo.height, photo.width):
        raise AddonError(f"the depth model returned {depth.width}x{depth.height} for a "
                         f"{photo.width}x{photo.height} photo")
    _depth_cache.clear()
    _depth_cache.update(key=key, depth=depth)
    return depth, route


def build(request: Request, job=None, source=None) -> Result:
    """Everything that is not Blender: load, depth, intrinsics, edge-cut mesh or points.

    ``job``: a depthstudio.jobs.Job; this fills 9 of its 10 steps (the 10th is the Blender data).
    ``source``: a DepthSource to share between the photos of one import."""
    core()
    from depthstudio.geometry.pipeline import build_mesh
    from depthstudio.io.images import load_image
    from depthstudio.jobs import Job

    job = job or Job()
    if not request.filepath:
        raise AddonError("no image chosen")
    name = Path(request.filepath).name
    job.start(10, f"Loading {name}")
    photo = load_image(request.filepath)
    job.advance(1)
    depth, route = read_depth(request, photo, source, job.sub(6))
    job.done = 7
    job.advance(0, f"Building {'points' if request.mesh.points else 'mesh'} of {name}")
    geometry, intrinsics, metadata = build_mesh(photo, depth, request.camera, request.mapping, request.mesh)
    if len(geometry.vertices if hasattr(geometry, "vertices") else geometry.points) == 0:
        raise AddonError(f"{name}: the depth map holds no valid surface")
    job.advance(2, f"Creating Blender data for {name}")
    return Result(photo=photo, depth=depth, geometry=geometry, intrinsics=intrinsics, route=route, metadata=metadata)


def export(result: Result, request: Request, out_dir: str, export_settings, stem: str | None = None) -> list[Path]:
    """The core's export of a result into ``out_dir`` (the files ``depthstudio mesh`` writes), and
    ``<stem>.settings.json`` beside it: ``depthstudio mesh PHOTO --settings FILE`` or this add-on's
    Settings File reproduce it. Formats left to auto are those this Python can write (no USDZ without
    usd-core)."""
    from depthstudio.geometry.export import export as write
    from depthstudio.io.atomic import ensure_dir
    from depthstudio.settings import write_settings_file

    points = request.mesh.points
    formats = export_settings.resolved(points)
    if export_settings.formats is None and "usdz" in formats and not _has_module("pxr"):
        formats = tuple(f for f in formats if f != "usdz")
    out = ensure_dir(out_dir)
    stem = stem or Path(request.filepath).stem
    sections = {"export": export_settings, **request.sections()}
    settings_file = write_settings_file(Path(out) / f"{stem}.settings.json", "mesh", sections)
    written = write(result.geometry, out, stem, formats, result.metadata)
    return [*written, settings_file]


def _has_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True
