"""The official Depth Anything pre- and post-processing, shared by every backend.

The steps of the official code (depth_anything_v2/dpt.py ``image2tensor`` / ``infer_image`` and
util/transform.py), each matched exactly, since any one of them moves the depth by about 0.1%:
- size, "lower_bound" with the aspect kept: the scale makes the SHORTER side ``input_size``; each
  side is rounded to the nearest multiple of 14 and, where that falls below ``input_size``, rounded
  up instead (so a near-square image's longer side is never rounded below the shorter one);
- OpenCV INTER_CUBIC on the image as floats (RGB / 255): resizing the 8-bit image instead rounds
  every pixel and clips the bicubic overshoot at edges;
- ImageNet mean / std;
- the prediction back to the image's size with bilinear interpolation, ``align_corners=True``
  (PyTorch's ``F.interpolate`` as the official code calls it; OpenCV's and Pillow's bilinear put
  the samples half a pixel elsewhere).
One addition: the longer side is capped at ``MAX_ASPECT`` times ``input_size`` (extreme strips).
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from depthstudio.models.catalogue import DEFAULT_INPUT_SIZE

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
PATCH = 14
#: The longer side is capped at this many times input_size, so a 3x2000 strip does not become
#: a 518x345000 tensor.
MAX_ASPECT = 4


def network_size(width: int, height: int, input_size: int = DEFAULT_INPUT_SIZE, multiple: int = PATCH) -> tuple[int, int]:
    """(width, height) of the network input for an image of the given size (the official lower_bound rule)."""
    scale = max(input_size / width, input_size / height)

    def fit(side: float) -> int:
        n = int(np.round(side / multiple)) * multiple  # round half to even, as NumPy does in the official code
        if n < input_size:
            n = math.ceil(side / multiple) * multiple
        return max(n, multiple)

    w, h = fit(scale * width), fit(scale * height)
    cap = MAX_ASPECT * input_size
    if max(w, h) > cap:
        if w > h:
            w = cap // multiple * multiple
        else:
            h = cap // multiple * multiple
    return w, h


def _cv2():
    try:
        import cv2
    except ImportError:  # e.g. inside Blender: Pillow does the same job, a little less exactly
        return None
    return cv2


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of RGB to (w, h) as float32 in the input's units, neither rounded nor clipped:
    OpenCV's INTER_CUBIC as in the official code, else Pillow per channel."""
    src = np.asarray(rgb, np.float32)
    cv2 = _cv2()
    if cv2 is not None:
        return cv2.resize(src, size, interpolation=cv2.INTER_CUBIC)
    planes = [Image.fromarray(np.ascontiguousarray(src[..., c])).resize(size, Image.Resampling.BICUBIC)
              for c in range(src.shape[2])]
    return np.stack([np.asarray(plane, np.float32) for plane in planes], -1)


def normalise(resized: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """float (h, w, 3) in 0..255 -> float32 (1, 3, h, w), (x / 255 - mean) / std."""
    h, w = resized.shape[:2]
    x = np.empty((1, 3, h, w), np.float32)
    scale = (1.0 / (255.0 * std)).astype(np.float32)
    offset = (mean / std).astype(np.float32)
    for channel in range(3):
        np.multiply(resized[..., channel], scale[channel], out=x[0, channel])
        x[0, channel] -= offset[channel]
    return x


def prepare(rgb: np.ndarray, input_size: int = DEFAULT_INPUT_SIZE, fixed_size: tuple[int, int] | None = None,
            mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (1, 3, h, w) network input. ``fixed_size`` is (w, h) for fixed models."""
    height, width = rgb.shape[:2]
    size = fixed_size or network_size(width, height, input_size)
    return normalise(resize_rgb(np.ascontiguousarray(rgb[..., :3]), size), mean, std)


def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (i0, i1) and weights of i1 for align_corners=True linear interpolation."""
    if n_out == 1 or n_in == 1:
        zeros = np.zeros(n_out, np.intp)
        return zeros, zeros, np.zeros(n_out, np.float32)
    pos = np.arange(n_out, dtype=np.float64) * ((n_in - 1) / (n_out - 1))
    i0 = np.minimum(np.floor(pos).astype(np.intp), n_in - 2)
    return i0, i0 + 1, (pos - i0).astype(np.float32)


def resize_prediction(pred: np.ndarray, width: int, height: int) -> np.ndarray:
    """(h, w) float prediction -> (height, width) float32: bilinear with ``align_corners=True``,
    the first and last samples on the first and last pixels (as the official ``infer_image``)."""
    pred = np.ascontiguousarray(pred, np.float32)
    if pred.shape == (height, width):
        return pred
    h, w = pred.shape
    c0, c1, wx = _axis(w, width)
    rows = pred[:, c0]  # columns first, on the small map: (h, width)
    delta = pred[:, c1]
    delta -= rows
    delta *= wx
    rows += delta
    r0, r1, wy = _axis(h, height)
    cv2 = _cv2()
    if cv2 is None:
        out = rows[r0]
        out += (rows[r1] - out) * wy[:, None]
        return out
    out = np.empty((height, width), np.float32)
    for i in range(height):  # one pass over the large output, a row at a time
        cv2.addWeighted(rows[r0[i]], float(1.0 - wy[i]), rows[r1[i]], float(wy[i]), 0.0, dst=out[i])
    return out
