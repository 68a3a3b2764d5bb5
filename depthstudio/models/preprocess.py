"""The reference Depth Anything pre- and post-processing, shared by every backend.

RGB; scale so the SHORTER side is ``input_size`` keeping the aspect ratio; both sides rounded to
multiples of 14 (never below ``input_size``); bicubic; ImageNet mean/std. The prediction is resized
back to the image's resolution with bilinear interpolation.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
PATCH = 14
#: The longer side is capped at this many times input_size, so a 3x2000 strip does not become
#: a 518x345000 tensor.
MAX_ASPECT = 4


def network_size(width: int, height: int, input_size: int = 518, multiple: int = PATCH) -> tuple[int, int]:
    """(width, height) of the network input for an image of the given size."""
    scale = input_size / min(width, height)

    def fit(side: float, minimum: int) -> int:
        n = round(side / multiple) * multiple
        if n < minimum:
            n = math.ceil(side / multiple) * multiple
        return max(n, multiple)

    w = fit(width * scale, input_size if width <= height else 0)
    h = fit(height * scale, input_size if height <= width else 0)
    cap = MAX_ASPECT * input_size
    if max(w, h) > cap:
        if w > h:
            w = cap // multiple * multiple
        else:
            h = cap // multiple * multiple
    return w, h


def prepare(rgb: np.ndarray, input_size: int = 518, fixed_size: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (1, 3, h, w) network input. ``fixed_size`` is (w, h) for fixed models."""
    height, width = rgb.shape[:2]
    size = fixed_size or network_size(width, height, input_size)
    resized = Image.fromarray(rgb).resize(size, Image.BICUBIC)
    x = np.asarray(resized, np.float32) * (1.0 / 255.0)
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def resize_prediction(pred: np.ndarray, width: int, height: int) -> np.ndarray:
    """(h, w) float prediction -> (height, width) float32 with bilinear interpolation."""
    pred = np.asarray(pred, np.float32)
    if pred.shape == (height, width):
        return pred
    return np.asarray(Image.fromarray(pred).resize((width, height), Image.BILINEAR), np.float32)
