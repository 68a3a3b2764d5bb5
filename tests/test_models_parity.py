"""Parity with the official Depth Anything V2 pipeline (depth_anything_v2/dpt.py ``infer_image``).

The official steps, reimplemented here from their documented behaviour so that the check is
independent of depthstudio.models.preprocess:
1. RGB / 255 as float64;
2. resize, aspect kept, "lower_bound": the scale makes the shorter side ``input_size``; each side is
   then rounded to a multiple of 14 and, where that falls below ``input_size``, rounded up instead;
   OpenCV INTER_CUBIC on the float image (no clipping, no rounding to 8 bits);
3. (x - ImageNet mean) / std, then float32, (1, 3, h, w);
4. the network; its prediction is upsampled to the image with bilinear, align_corners=True.
Both backends run the same random weights; the network is transformers' Depth Anything in both
our pipeline and the reference, so any difference is pre/post-processing (or ONNX vs PyTorch).
"""
from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
torch = pytest.importorskip("torch")

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def official_size(width: int, height: int, input_size: int, multiple: int = 14) -> tuple[int, int]:
    scale = max(input_size / width, input_size / height)

    def side(x: float) -> int:
        y = int(np.round(x / multiple) * multiple)
        if y < input_size:
            y = int(np.ceil(x / multiple) * multiple)
        return y

    return side(scale * width), side(scale * height)


def official_infer(model, rgb: np.ndarray, input_size: int = 518) -> np.ndarray:
    h, w = rgb.shape[:2]
    image = rgb / 255.0
    size = official_size(w, h, input_size)
    image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    image = (image - MEAN) / STD
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.float32))[None]
    with torch.inference_mode():
        depth = model(pixel_values=x).predicted_depth
        depth = torch.nn.functional.interpolate(depth[:, None], (h, w), mode="bilinear", align_corners=True)[0, 0]
    return depth.numpy()


def rel_l1(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).mean() / np.abs(b).mean())


def _photos(sample_photos_or_none) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    # a smooth image with sharp edges (bicubic overshoot is clipped by an 8-bit resize) and one of
    # an odd size whose longer side rounds below input_size
    yy, xx = np.mgrid[0:333, 0:500]
    smooth = np.stack([(xx * 0.5) % 256, (yy * 0.7) % 256, ((xx + yy) * 0.3) % 256], -1)
    smooth[100:200, 150:300] = [255, 0, 255]
    images = [smooth.astype(np.uint8), rng.integers(0, 256, (371, 372, 3), np.uint8)]
    from PIL import Image

    for path in sample_photos_or_none or []:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((900, 900))
            images.append(np.asarray(img))
    return images


@pytest.fixture(scope="module")
def parity_photos(request):
    try:
        photos = request.getfixturevalue("sample_photos")[:2]
    except pytest.skip.Exception:
        photos = []
    return _photos(photos)


@pytest.mark.parametrize("input_size", [518, 364, 510])
def test_network_size_is_the_official_lower_bound(input_size):
    from depthstudio.models.preprocess import network_size

    for width, height in [(640, 480), (480, 640), (1700, 1133), (100, 100), (133, 517), (372, 371), (511, 510), (4032, 3024)]:
        assert network_size(width, height, input_size) == official_size(width, height, input_size), (width, height)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_depth_matches_the_official_infer_image(backend, tiny_model_dir, tiny_onnx, parity_photos):
    from depthstudio.models.estimator import load_estimator
    from depthstudio.models.torch_backend import load_transformers_model

    model = load_transformers_model(tiny_model_dir)
    est = load_estimator(str(tiny_onnx if backend == "onnx" else tiny_model_dir), backend)
    for rgb in parity_photos:
        ours = est.predict(rgb).values
        reference = official_infer(model, rgb)
        assert reference.std() > 1e-3 * np.abs(reference).mean()  # not constant: the comparison means something
        assert ours.shape == reference.shape
        error = rel_l1(ours, reference)
        assert error <= 5e-4, f"{backend} {rgb.shape}: relative L1 {error:.2e}"
