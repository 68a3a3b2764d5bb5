"""Export a transformers depth model to ONNX: Depth Anything with a truly dynamic height and width,
Depth Pro at its fixed input size.

transformers' head computes its output size with ``int(patch_height * patch_size)``, which tracing
freezes to the example's size: a plain ``torch.onnx.export`` then returns a depth map of the wrong
size for every other input. The wrapper below calls the model's own backbone and neck and redoes the
head's resize from the input tensor's shape, and every export is checked at several sizes.

Depth Pro takes one square size (1536 for the released model): it is exported with that size fixed
(so a runtime cannot feed it anything else) and outputs predicted_depth (N, S, S) and field_of_view
(N,), checked against PyTorch on several inputs, batches of one.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from depthstudio.errors import ModelError
from depthstudio.io.atomic import atomic_path

CHECK_SIZES = ((266, 350), (532, 686), (364, 364))


def _wrapper(model):
    import torch
    import torch.nn.functional as F

    class DynamicDepthAnything(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            m = self.model
            patch = m.config.patch_size
            features = m.backbone.forward_with_filtered_kwargs(
                pixel_values, output_hidden_states=False, output_attentions=False).feature_maps
            height, width = pixel_values.shape[-2:]
            patch_h, patch_w = height // patch, width // patch
            hidden = m.neck(features, patch_h, patch_w)
            head = m.head
            x = head.conv1(hidden[head.head_in_index])
            x = F.interpolate(x, size=(patch_h * patch, patch_w * patch), mode="bilinear", align_corners=True)
            x = head.activation2(head.conv3(head.activation1(head.conv2(x)))) * head.max_depth
            return x.squeeze(1)

    return DynamicDepthAnything(model).eval()


def export_onnx(model_folder: str | Path, target: str | Path, model_id: str | None = None, opset: int = 17,
                check: bool = True, atol: float = 1e-3) -> Path:
    """Write an ONNX file with dynamic batch/height/width; verify it against PyTorch at several sizes."""
    import torch

    from depthstudio.models.torch_backend import load_transformers_model

    model = load_transformers_model(model_folder).float().cpu()
    if model.config.model_type == "depth_pro":
        return export_depth_pro(model, target, model_id or Path(model_folder).name, opset, check, atol)
    if model.config.model_type != "depth_anything":
        raise ModelError(f"{model_folder}: ONNX export supports Depth Anything and Depth Pro, not {model.config.model_type}")
    wrapped = _wrapper(model)
    kind = "metric" if model.config.depth_estimation_type == "metric" else "disparity"
    target = Path(target)
    example = torch.randn(1, 3, 364, 476)
    with atomic_path(target) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped,
                (example,),
                str(tmp),
                input_names=["pixel_values"],
                output_names=["predicted_depth"],
                dynamic_axes={"pixel_values": {0: "batch", 2: "height", 3: "width"},
                              "predicted_depth": {0: "batch", 1: "height", 2: "width"}},
                opset_version=opset,
                dynamo=False,
            )
        _add_metadata(tmp, {"depth_kind": kind, "model_id": model_id or Path(model_folder).name, "producer": "depthstudio"})
        if check:
            check_export(model, tmp, atol=atol)
    return target


class _DepthProOutputs:
    @staticmethod
    def wrap(model):
        import torch

        class DepthProONNX(torch.nn.Module):
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, pixel_values):
                out = self.model(pixel_values=pixel_values)
                return out.predicted_depth, out.field_of_view

        return DepthProONNX(model).eval()


#: Depth Pro export checks: several random inputs and one smooth image-like input.
DEPTH_PRO_CHECKS = 3


def export_depth_pro(model, target: str | Path, model_id: str, opset: int = 17, check: bool = True,
                     atol: float = 1e-3) -> Path:
    import torch

    from depthstudio.models.torch_backend import fixed_input_size

    if not model.use_fov_model:
        raise ModelError(f"{model_id}: this Depth Pro has no field-of-view head (use_fov_model is false)")
    fixed = fixed_input_size(model)
    assert fixed is not None  # a Depth Pro always has one
    side = fixed[0]
    target = Path(target)
    with atomic_path(target) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_DepthProOutputs.wrap(model), (torch.randn(1, 3, side, side),), str(tmp),
                              input_names=["pixel_values"], output_names=["predicted_depth", "field_of_view"],
                              opset_version=opset, dynamo=False)
        _add_metadata(tmp, {"depth_kind": "metric", "arch": "depth-pro", "model_id": model_id, "producer": "depthstudio"})
        if check:
            check_depth_pro_export(model, tmp, side, atol=atol)
    return target


def check_depth_pro_export(model, onnx_path: Path, side: int, atol: float = 1e-3) -> dict:
    """Compare depth and field of view of the ONNX file with PyTorch on several inputs; raise on mismatch."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side] / side
    smooth = np.stack([np.sin(6 * xx), np.cos(4 * yy), xx - yy]).astype(np.float32)[None]
    inputs = [rng.standard_normal((1, 3, side, side)).astype(np.float32) for _ in range(DEPTH_PRO_CHECKS - 1)] + [smooth]
    worst = {"depth": 0.0, "fov": 0.0}
    for x in inputs:
        with torch.inference_mode():
            out = model(pixel_values=torch.from_numpy(x))
        depth, fov = session.run(None, {"pixel_values": x})
        expected = out.predicted_depth.numpy()
        if depth.shape != expected.shape:
            raise ModelError(f"ONNX export check failed: depth {depth.shape}, PyTorch gave {expected.shape}")
        error = float(np.abs(depth - expected).max()) / max(float(np.abs(expected).max()), 1e-6)
        fov_true = out.field_of_view.numpy()
        fov_error = float(np.abs(fov - fov_true).max()) / max(float(np.abs(fov_true).max()), 1e-6)
        worst = {"depth": max(worst["depth"], error), "fov": max(worst["fov"], fov_error)}
        if error > atol or fov_error > atol:
            raise ModelError(f"ONNX export check failed at {side}x{side}: relative error depth {error:.2e}, "
                             f"field of view {fov_error:.2e} > {atol:.0e}")
    return worst


def _add_metadata(path: Path, values: dict) -> None:
    import onnx

    proto = onnx.load(str(path))
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(proto, str(path))


def check_export(model, onnx_path: Path, sizes=CHECK_SIZES, atol: float = 1e-3) -> None:
    """Compare the ONNX file with the PyTorch model at several input sizes; raise on mismatch."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rng = np.random.default_rng(0)
    for height, width in sizes:
        x = rng.standard_normal((1, 3, height, width)).astype(np.float32)
        with torch.inference_mode():
            expected = model(pixel_values=torch.from_numpy(x)).predicted_depth.numpy()
        got = session.run(None, {name: x})[0]
        if got.shape != expected.shape:
            raise ModelError(f"ONNX export check failed: input {height}x{width} gave {got.shape}, PyTorch gave {expected.shape}")
        scale = max(float(np.abs(expected).max()), 1e-6)
        error = float(np.abs(got - expected).max()) / scale
        if error > atol:
            raise ModelError(f"ONNX export check failed at {height}x{width}: relative error {error:.2e} > {atol:.0e}")
