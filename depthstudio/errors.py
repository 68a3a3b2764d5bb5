"""Errors a user can act on. Front ends show their message and nothing else (no traceback)."""


class DepthStudioError(Exception):
    """Base class: the message is written for the user."""


class InputError(DepthStudioError):
    """An input file (image, depth map, video) cannot be used."""


class ModelError(DepthStudioError):
    """A model cannot be found, downloaded, or run."""


class OutputError(DepthStudioError):
    """An output cannot be written."""


class SettingsError(DepthStudioError):
    """A parameter is out of range or inconsistent."""


class MissingPackageError(DepthStudioError):
    """An optional package this feature needs is not installed."""


#: Optional packages (top-level import names) and the extra of ``depthstudio`` that installs them.
EXTRAS = {
    "cv2": "render", "av": "render", "moderngl": "render",
    "torch": "torch", "transformers": "torch", "safetensors": "torch", "onnx": "torch", "onnxscript": "torch",
    "open3d": "open3d", "pxr": "usd", "OpenEXR": "exr", "pillow_heif": "heic", "PySide6": "gui",
}


def missing_package(exc: ImportError) -> MissingPackageError | None:
    """The one-line error for an optional package that is not installed, or None for other ImportErrors."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    extra = EXTRAS.get(name)
    if extra is None:
        return None
    return MissingPackageError(f"this needs the optional package {name!r}: pip install 'depthstudio[{extra}]'")
