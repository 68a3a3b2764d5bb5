"""Photo -> depth -> mesh arrays, for the add-on. No bpy here: plain Python over the DepthStudio core.

Depth comes from, in order: a depth file the user brings; the DepthStudio core running ONNX Runtime
inside Blender's Python ("blender" route); or an external ``depthstudio`` executable ("external"
route) that writes ``<stem>_depth.npy``. The mesh, UVs and intrinsics always come from the core's
geometry (numpy only), so the add-on merely copies arrays into Blender.
"""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROUTES = ("AUTO", "BLENDER", "EXTERNAL")

#: progress(fraction 0..1, message) -> None; may raise to cancel.
Progress = Callable[[float, str], None]


class AddonError(Exception):
    """A message for the operator's report (the core's DepthStudioError is reported the same way)."""


@dataclass
class Request:
    filepath: str
    depth_filepath: str = ""
    depth_kind: str = "disparity"  # of depth_filepath
    near: float = 1.0
    far: float = 10.0
    fov: float = 0.0  # horizontal degrees; 0 = EXIF or default
    focal_mm: float = 0.0  # 35 mm equivalent; 0 = unused
    edge_cut: float | None = None  # None = the core's default
    max_faces: int = 0  # 0 = no limit
    stride: int = 1
    as_points: bool = False
    model: str = ""
    route: str = "AUTO"
    executable: str = ""
    input_size: int = 518
    online: bool = True  # Blender's "Allow Online Access"; off: only weights already cached are used


@dataclass
class Result:
    photo: object  # depthstudio Photo
    depth: object  # depthstudio DepthMap
    geometry: object  # DepthMesh | PointCloud
    intrinsics: object  # Intrinsics
    route: str  # "file" | "blender" | "external" | "cache"
    metadata: dict = field(default_factory=dict)


def _no_progress(fraction: float, message: str) -> None:
    pass


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
    import depthstudio

    return depthstudio


def onnxruntime_available() -> bool:
    try:
        importlib.import_module("onnxruntime")
    except ImportError:
        return False
    return True


def default_model() -> str:
    try:
        from depthstudio.models.catalogue import DEFAULT_MODEL

        return DEFAULT_MODEL
    except ImportError:
        return "da2-small"


def needs_torch(model: str) -> bool:
    """True for a local transformers folder, or a catalogue model published without ONNX weights."""
    path = Path(model).expanduser()
    if path.is_dir():
        return not any(path.glob("*.onnx")) and not any(path.glob("onnx/*.onnx"))
    if path.suffix.lower() == ".onnx":
        return False
    try:
        from depthstudio.models.catalogue import CATALOGUE
    except ImportError:
        return False
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
    model = request.model or default_model()
    route = request.route.upper()
    if route not in ROUTES:
        raise AddonError(f"unknown inference route {request.route!r}; use one of {', '.join(ROUTES)}")
    if route == "BLENDER":
        if not onnxruntime_available():
            raise AddonError("ONNX Runtime is not installed in Blender's Python; install the extension zip "
                             "that bundles it, or choose the external executable in the add-on preferences")
        if needs_torch(model):
            raise AddonError(f"model {model!r} needs PyTorch, which Blender's Python lacks; use an .onnx model "
                             "or the external executable (add-on preferences)")
        return "blender"
    if route == "EXTERNAL":
        if not find_executable(request.executable):
            raise AddonError(_no_executable_message(request.executable))
        return "external"
    if onnxruntime_available() and not needs_torch(model):
        return "blender"
    if find_executable(request.executable):
        return "external"
    if not onnxruntime_available():
        raise AddonError("no way to run a depth model: ONNX Runtime is not installed in Blender's Python and "
                         + _no_executable_message(request.executable))
    raise AddonError(f"model {model!r} needs PyTorch, which Blender's Python lacks; "
                     + _no_executable_message(request.executable))


def _no_executable_message(configured: str) -> str:
    if configured:
        return (f"the DepthStudio executable {configured!r} does not exist or is not executable; "
                "fix it in Edit > Preferences > Add-ons > DepthStudio")
    return ("no `depthstudio` executable is set in Edit > Preferences > Add-ons > DepthStudio "
            "and none is on PATH")


# One estimator and one depth map are kept: the redo panel re-runs the operator on every tweak,
# and only geometry settings usually change.
_estimators: dict = {}
_depth_cache: dict = {}


def clear_caches() -> None:
    _estimators.clear()
    _depth_cache.clear()


def _file_key(path: str) -> tuple:
    try:
        st = os.stat(path)
    except OSError:
        return (path, None)
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


def estimate_in_blender(photo, model: str, input_size: int, progress: Progress, online: bool = True):
    """Depth with the DepthStudio core and ONNX Runtime, inside this Python."""
    from depthstudio.models.estimator import load_estimator

    key = (model, input_size)
    estimator = _estimators.get(key)
    if estimator is None and not online:
        _check_cached(model)
    if estimator is None:
        progress(0.15, f"Loading model {model}")
        _estimators.clear()
        estimator = load_estimator(model=model, backend="onnx", input_size=input_size)
        _estimators[key] = estimator
    progress(0.3, f"Estimating depth ({estimator.model_id})")
    return estimator.predict(photo)


def model_kind(model: str) -> str:
    """What a model predicts, without loading it (the external route gets only numbers back)."""
    path = Path(model).expanduser()
    try:
        from depthstudio.models.catalogue import CATALOGUE
        from depthstudio.models.weights import model_kind_from_folder
    except ImportError:
        return "metric" if "metric" in model.lower() else "disparity"
    if path.is_dir() and (path / "config.json").is_file():
        return model_kind_from_folder(path)
    info = CATALOGUE.get(model)
    if info is not None:
        return info.kind
    return "metric" if "metric" in path.name.lower() else "disparity"


def estimate_external(photo_path: Path, model: str, input_size: int, executable: str,
                      progress: Progress, timeout: float = 3600.0, online: bool = True):
    """Depth from ``depthstudio depth IMAGE -o TMP --model M``; reads ``<stem>_depth.npy``."""
    import numpy as np

    from depthstudio.depthmap import DepthMap

    exe = find_executable(executable)
    if Path(model).expanduser().exists():
        model = str(Path(model).expanduser().resolve())
    if not exe:
        raise AddonError(_no_executable_message(executable))
    with tempfile.TemporaryDirectory(prefix="depthstudio-blender-") as tmp:
        cmd = [exe, "depth", str(photo_path), "-o", tmp, "--model", model, "--input-size", str(input_size)]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        if not online:  # Blender's "Allow Online Access" is off: the helper must not download either
            env["HF_HUB_OFFLINE"] = "1"
        progress(0.2, f"Running {Path(exe).name} depth ({model})")
        errfile = Path(tmp) / "stderr.txt"
        with open(errfile, "w") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
            start = time.monotonic()
            try:
                while proc.poll() is None:
                    elapsed = time.monotonic() - start
                    if elapsed > timeout:
                        raise AddonError(f"{Path(exe).name} depth took longer than {timeout:.0f} s; stopped")
                    # the external process reports no fraction: creep towards 0.7 so the bar moves
                    progress(0.2 + 0.5 * (1.0 - 1.0 / (1.0 + elapsed / 10.0)), f"Estimating depth ({model})")
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
    return DepthMap(values.astype(np.float32), kind=model_kind(model), model_id=model)


#: Reads an EXR's first channel as an (H, W) float32 array when the OpenEXR package is missing
#: (Blender's Python): the add-on sets it to a reader that uses Blender's own image loader.
exr_reader: Callable[[str], object] | None = None


def _has_openexr() -> bool:
    try:
        importlib.import_module("OpenEXR")
    except ImportError:
        return False
    return True


def _read_exr_depth(path: str, kind: str, size: tuple[int, int]):
    """Blender's EXR pixels through the core's checks (aspect ratio, resize, validity)."""
    import numpy as np

    from depthstudio.errors import DepthStudioError
    from depthstudio.geometry.depth import read_depth_file

    values = exr_reader(path)
    with tempfile.TemporaryDirectory(prefix="depthstudio-exr-") as tmp:
        npy = Path(tmp) / (Path(path).stem + ".npy")
        np.save(npy, np.asarray(values, dtype=np.float32))
        try:
            depth = read_depth_file(npy, kind=kind, size=size)
        except DepthStudioError as exc:
            raise type(exc)(str(exc).replace(str(npy), path)) from None
    depth.model_id = f"file:{Path(path).name}"
    depth.meta["depth_file"] = path
    return depth


def read_depth(request: Request, photo, progress: Progress):
    """The DepthMap for the request (from its depth file or a model) and the route taken."""
    core()
    if request.depth_filepath:
        from depthstudio.geometry.depth import read_depth_file

        progress(0.2, f"Reading depth {Path(request.depth_filepath).name}")
        path = request.depth_filepath
        kind, size = request.depth_kind.lower(), (photo.width, photo.height)
        if Path(path).suffix.lower() == ".exr" and exr_reader is not None and not _has_openexr() \
                and Path(path).is_file():
            return _read_exr_depth(path, kind, size), "file"
        return read_depth_file(path, kind=kind, size=size), "file"
    model = request.model or default_model()
    route = choose_route(request)
    key = (_file_key(request.filepath), model, _file_key(model), request.input_size, route)
    if _depth_cache.get("key") == key:
        return _depth_cache["depth"], "cache"
    if route == "blender":
        depth = estimate_in_blender(photo, model, request.input_size, progress, online=request.online)
    else:
        depth = estimate_external(Path(request.filepath), model, request.input_size, request.executable, progress,
                                  online=request.online)
    if depth.shape != (photo.height, photo.width):
        raise AddonError(f"the depth model returned {depth.width}x{depth.height} for a "
                         f"{photo.width}x{photo.height} photo")
    _depth_cache.clear()
    _depth_cache.update(key=key, depth=depth)
    return depth, route


def build(request: Request, progress: Progress = _no_progress) -> Result:
    """Everything that is not Blender: load, depth, intrinsics, edge-cut mesh or points."""
    core()
    from depthstudio.geometry.camera import CameraSettings
    from depthstudio.geometry.depth import DepthMapping
    from depthstudio.geometry.mesh import MeshSettings
    from depthstudio.io.images import load_image

    if not request.filepath:
        raise AddonError("no image chosen")
    if request.near <= 0 or request.far <= request.near:
        raise AddonError(f"near ({request.near}) must be positive and less than far ({request.far})")
    progress(0.05, f"Loading {Path(request.filepath).name}")
    photo = load_image(request.filepath)
    depth, route = read_depth(request, photo, progress)
    progress(0.75, "Building mesh" if not request.as_points else "Building points")
    camera = CameraSettings(fov_deg=request.fov or None, focal_mm=request.focal_mm or None)
    mapping = DepthMapping(near=request.near, far=request.far)
    mesh_kwargs = dict(max_faces=request.max_faces or None, stride=max(1, request.stride), points=request.as_points)
    if request.edge_cut is not None:
        mesh_kwargs["edge_cut"] = request.edge_cut
    geometry, intrinsics, metadata = make_geometry(photo, depth, camera, mapping, MeshSettings(**mesh_kwargs))
    if len(geometry.vertices if hasattr(geometry, "vertices") else geometry.points) == 0:
        raise AddonError(f"{Path(request.filepath).name}: the depth map holds no valid surface")
    progress(0.9, "Creating Blender data")
    return Result(photo=photo, depth=depth, geometry=geometry, intrinsics=intrinsics, route=route, metadata=metadata)


def make_geometry(photo, depth, camera, mapping, mesh_settings):
    """(DepthMesh | PointCloud, Intrinsics, metadata) from the core's one-call pipeline."""
    from depthstudio.geometry.pipeline import build_mesh

    return build_mesh(photo, depth, camera, mapping, mesh_settings)
