"""DepthStudio: monocular depth and what people build with it.

The core (models, geometry, render, video) never imports Qt or bpy; heavy libraries
(torch, transformers, open3d, moderngl) are imported lazily by the modules that need them.
"""
from __future__ import annotations

__version__ = "0.1.0"

from depthstudio.depthmap import DepthMap
from depthstudio.errors import DepthStudioError
from depthstudio.io.images import Photo, load_image

__all__ = ["DepthMap", "DepthStudioError", "Photo", "load_image", "estimate_depth", "__version__"]


def estimate_depth(image, model: str | None = None, backend: str = "auto", input_size: int | None = None, **kwargs) -> DepthMap:
    """Estimate depth for one image (a path, a Photo, a PIL image or an RGB array).

    ``model`` is a catalogue name, a local ``.onnx`` file or a local transformers folder.
    Returns a DepthMap at the image's resolution carrying its kind, validity mask and model id.
    """
    from depthstudio.models.estimator import estimate_depth as _estimate

    if input_size is not None:
        kwargs["input_size"] = input_size
    return _estimate(image, model=model, backend=backend, **kwargs)
