"""DepthStudio: monocular depth and what people build with it.

The core (models, geometry, render, video) never imports Qt or bpy; heavy libraries
(torch, transformers, open3d, moderngl) are imported lazily by the modules that need them.
"""
from __future__ import annotations

__version__ = "0.1.0"

from depthstudio.depthmap import DepthMap
from depthstudio.errors import DepthStudioError
from depthstudio.io.images import Photo, load_image

__all__ = ["DepthMap", "DepthStudioError", "Photo", "load_image", "estimate_depth", "render_stereo", "__version__"]


def estimate_depth(image, model: str | None = None, backend: str = "auto", input_size: int | None = None, **kwargs) -> DepthMap:
    """Estimate depth for one image (a path, a Photo, a PIL image or an RGB array).

    ``model`` is a catalogue name, a local ``.onnx`` file or a local transformers folder.
    Returns a DepthMap at the image's resolution carrying its kind, validity mask and model id.
    """
    from depthstudio.models.estimator import estimate_depth as _estimate

    if input_size is not None:
        kwargs["input_size"] = input_size
    return _estimate(image, model=model, backend=backend, **kwargs)


def render_stereo(image, depth=None, output=None, settings=None, *, model: str | None = None, **kwargs) -> dict:
    """Stereo 3D of one image (a path, a Photo, a PIL image or an RGB array).

    ``depth`` is a DepthMap, a (z, valid) pair of planar depth, or None to estimate it with
    ``model``. ``settings`` is a ``depthstudio.render.stereo.StereoSettings`` (layout, baseline or
    divergence, convergence, ...). With ``output`` (a folder) the layout's files are written there.
    Returns {"left", "right", "picture", "rig", "warnings", "files"}; see render.stereo.render_stereo.
    """
    from depthstudio.io.images import as_photo
    from depthstudio.render.stereo import render_stereo as _render

    photo = load_image(image) if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__") else as_photo(image)
    if depth is None:
        depth = estimate_depth(photo, model=model)
    return _render(photo, depth, output, settings, **kwargs)
