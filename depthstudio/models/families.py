"""How each model family is fed, and how its raw outputs become a DepthMap.

A backend's forward gives a dict of batch arrays named by what they hold:
- Depth Anything (also Distill-Any-Depth, Prompt Depth Anything): ``depth`` (N, h, w);
- Depth Pro: ``depth`` (N, h, w), a canonical inverse depth, and ``fov`` (N,), the horizontal
  field of view in degrees;
- MoGe-2: ``points`` (N, h, w, 3), an affine-invariant point map (OpenCV camera frame: x right,
  y down, z forward; its z has an unknown shift and the focal length is implicit), ``normal``
  (N, h, w, 3), ``mask`` (N, h, w) probabilities, ``metric_scale`` (N,).
``Family.postprocess`` turns one item into the fields of a DepthMap at the photo's resolution.
"""
from __future__ import annotations

import math

import numpy as np

from depthstudio.errors import ModelError
from depthstudio.models import preprocess as P

#: Depth Pro: mean / std 0.5 per channel, and the input side of the released model.
DEPTH_PRO_MEAN = np.array([0.5, 0.5, 0.5], np.float32)
DEPTH_PRO_STD = np.array([0.5, 0.5, 0.5], np.float32)
DEPTH_PRO_SIZE = 1536
#: MoGe-2's token budget (its num_tokens_range) and the aspect ratios its model card supports.
MOGE_TOKENS = (1200, 3600)
MOGE_ASPECT = (0.5, 2.0)
#: Photos are given to MoGe-2 at most this many pixels on the longer side; its graph resizes to
#: the token grid itself and returns maps at the size it was given, which are then upsampled.
MOGE_MAX_SIDE = 1024
MOGE_MASK_THRESHOLD = 0.5


class Family:
    arch = "depth-anything"

    def check(self, width: int, height: int) -> None:
        """Raise ModelError for a photo outside the model's input rule."""

    def prepare(self, rgb: np.ndarray, input_size: int, fixed_size: tuple[int, int] | None) -> np.ndarray:
        return P.prepare(rgb, input_size, fixed_size)

    def postprocess(self, out: dict, width: int, height: int) -> dict:
        return {"values": P.resize_prediction(out["depth"], width, height)}


class DepthAnything(Family):
    arch = "depth-anything"


class PromptDepthAnything(Family):
    arch = "prompt-depth-anything"


class DepthPro(Family):
    """Apple's Depth Pro as transformers' DepthProImageProcessor defines it: RGB / 255, mean and std
    0.5, bilinear resize (no antialiasing) to the fixed square input; the prediction is a canonical
    inverse depth: inverse depth = prediction * W / f with f = W / 2 / tan(fov / 2) for the photo's
    width W, resized back bilinearly, depth = 1 / clip(inverse depth, 1e-4, 1e4)."""

    arch = "depth-pro"

    def prepare(self, rgb, input_size, fixed_size):
        import cv2

        size = fixed_size or (DEPTH_PRO_SIZE, DEPTH_PRO_SIZE)
        resized = cv2.resize(np.asarray(rgb[..., :3], np.float32), size, interpolation=cv2.INTER_LINEAR)
        return P.normalise(resized, DEPTH_PRO_MEAN, DEPTH_PRO_STD)

    def postprocess(self, out, width, height):
        import cv2

        inverse = np.asarray(out["depth"], np.float32)
        fov = out.get("fov")
        focal = None
        if fov is not None and np.isfinite(float(fov)) and 0 < float(fov) < 180:
            focal = 0.5 * width / math.tan(0.5 * math.radians(float(fov)))
            inverse = inverse * np.float32(width / focal)
        if inverse.shape != (height, width):
            inverse = cv2.resize(inverse, (width, height), interpolation=cv2.INTER_LINEAR)
        values = 1.0 / np.clip(inverse, 1e-4, 1e4)
        return {"values": values.astype(np.float32, copy=False), "focal_px": focal}


def moge_uv(width: int, height: int, step: int = 1) -> np.ndarray:
    """(h, w, 2) pixel centres on MoGe's normalised view plane: the image centre is 0 and the
    unit is half the image diagonal (x right, y down); every ``step``-th pixel."""
    half_diagonal = 0.5 * math.hypot(width, height)
    u = (np.arange(0, width, step, dtype=np.float64) + 0.5 - width / 2) / half_diagonal
    v = (np.arange(0, height, step, dtype=np.float64) + 0.5 - height / 2) / half_diagonal
    return np.stack(np.meshgrid(u, v, indexing="xy"), -1)


def recover_focal_shift(points: np.ndarray, mask: np.ndarray, max_samples: int = 4096) -> tuple[float, float]:
    """Focal length f (in units of half the image diagonal) and z shift t of an affine-invariant
    point map, as the MoGe paper poses it: the camera-space points are (x, y, z + t), and f, t
    minimise sum_i |f (x_i, y_i) / (z_i + t) - (u_i, v_i)|^2 over the masked pixels, (u, v) being
    each pixel's position on the normalised view plane.

    For a given t the best f is closed-form (f = sum a.uv / sum |a|^2 with a = xy / (z + t)), which
    leaves a 1-D problem in t: a coarse logarithmic scan of t above -min(z) (every point stays in
    front of the camera), then golden-section refinement around the best sample.
    """
    h, w = mask.shape
    step = max(1, int(math.ceil(math.sqrt(h * w / max_samples))))
    uv = moge_uv(w, h, step)
    pts = np.asarray(points[::step, ::step], np.float64)
    keep = mask[::step, ::step] & np.isfinite(pts).all(-1)
    if np.count_nonzero(keep) < 8:
        raise ModelError("MoGe-2 found no surface in this photo (its mask is empty)")
    xy, z, uv = pts[keep][:, :2], pts[keep][:, 2], uv[keep]
    uu = float((uv * uv).sum())

    def cost(t: float) -> tuple[float, float]:
        a = xy / (z + t)[:, None]
        aa, au = float((a * a).sum()), float((a * uv).sum())
        if aa <= 0:
            return uu, 0.0
        return uu - au * au / aa, au / aa

    z_min = float(z.min())
    scale = max(float(np.median(np.abs(z))), 1e-6)
    lo = -z_min + 1e-6 * scale
    offsets = scale * np.logspace(-4, 3, 57)
    ts = lo + offsets
    costs = [cost(t)[0] for t in ts]
    i = int(np.argmin(costs))
    a, b = ts[max(i - 1, 0)], ts[min(i + 1, len(ts) - 1)]
    if i == 0:
        a = lo
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = cost(c)[0], cost(d)[0]
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = cost(c)[0]
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = cost(d)[0]
    t = (a + b) / 2
    _, f = cost(t)
    if not f > 0:
        raise ModelError("MoGe-2's point map gives no positive focal length for this photo")
    return f, t


class MoGe2(Family):
    """MoGe-2 through its published ONNX graph, which ends before the focal and shift recovery:
    RGB / 255 (the graph normalises), at most MOGE_MAX_SIDE px; the recovery of focal and shift,
    metric scale, mask and normals are done here."""

    arch = "moge-2"

    def check(self, width, height):
        aspect = width / height
        lo, hi = MOGE_ASPECT
        if not lo <= aspect <= hi:
            raise ModelError(f"MoGe-2 takes photos with an aspect ratio between 1:2 and 2:1; this one is "
                             f"{width}x{height} ({aspect:.2f}:1): crop it, or use another --model")

    @staticmethod
    def num_tokens(input_size: int) -> int:
        lo, hi = MOGE_TOKENS
        return int(min(max(round((input_size / P.PATCH) ** 2), lo), hi))

    def prepare(self, rgb, input_size, fixed_size):
        import cv2

        h, w = rgb.shape[:2]
        self.check(w, h)
        size = fixed_size
        if size is None and max(w, h) > MOGE_MAX_SIDE:
            s = MOGE_MAX_SIDE / max(w, h)
            size = (max(1, round(w * s)), max(1, round(h * s)))
        image = np.asarray(rgb[..., :3], np.float32)
        if size is not None and size != (w, h):
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        image *= np.float32(1.0 / 255.0)
        return np.ascontiguousarray(image.transpose(2, 0, 1)[None])

    def postprocess(self, out, width, height):
        points = np.asarray(out["points"], np.float32)
        h, w = points.shape[:2]
        mask = np.asarray(out["mask"]) > MOGE_MASK_THRESHOLD if out.get("mask") is not None else np.ones((h, w), bool)
        mask &= np.isfinite(points).all(-1)
        f, shift = recover_focal_shift(points, mask)
        z = points[..., 2] + np.float32(shift)
        mask &= z > 0
        scale = float(np.asarray(out.get("metric_scale", 1.0)).reshape(-1)[0])
        depth = np.where(mask, z * np.float32(scale), 0).astype(np.float32)
        normals = None
        if out.get("normal") is not None:
            # OpenCV frame (y down, z forward) -> the meshes' frame (y up, toward the camera: z > 0)
            normals = np.asarray(out["normal"], np.float32) * np.array([1, -1, -1], np.float32)
        depth, normals, mask = _upsample(depth, normals, mask, width, height)
        focal = f * 0.5 * math.hypot(w, h) * width / w
        return {"values": depth, "focal_px": focal, "normals": normals,
                "meta": {"metric_scale": scale, "shift": float(shift)}}


def _upsample(depth: np.ndarray, normals: np.ndarray | None, mask: np.ndarray, width: int, height: int):
    """Bilinear (half-pixel centres, as MoGe's own output resize) to (width, height); a pixel whose
    interpolation touches a masked-out sample is no surface; normals renormalised."""
    import cv2

    if depth.shape != (height, width):
        weight = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        mask = weight > 0.999
        depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_LINEAR)
        if normals is not None:
            normals = cv2.resize(normals, (width, height), interpolation=cv2.INTER_LINEAR)
    depth[~mask] = 0
    if normals is not None:
        length = np.sqrt(np.einsum("ijk,ijk->ij", normals, normals))
        np.maximum(length, 1e-6, out=length)
        normals /= length[..., None]
        normals[~mask] = 0
    return depth, normals, mask


FAMILIES = {cls.arch: cls for cls in (DepthAnything, PromptDepthAnything, DepthPro, MoGe2)}


def family_for(arch: str) -> Family:
    try:
        return FAMILIES[arch]()
    except KeyError:
        raise ModelError(f"unknown model architecture {arch!r}; known: {', '.join(FAMILIES)}") from None
