"""ONNX Runtime backend: the fast default. Any single-input depth ONNX is accepted."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from depthstudio.errors import ModelError

#: Execution providers in order of preference; the first ones present are used, CPU last.
PREFERRED_PROVIDERS = (
    "CUDAExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)


def choose_providers(available: list[str] | None = None) -> list[str]:
    import onnxruntime as ort

    available = available if available is not None else ort.get_available_providers()
    chosen = [p for p in PREFERRED_PROVIDERS if p in available]
    return chosen or ["CPUExecutionProvider"]


def physical_cores() -> int:
    """CPU threads for inference: DEPTHSTUDIO_THREADS when set (a Ray actor sets its CPU share), else every core."""
    env = os.environ.get("DEPTHSTUDIO_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    count = os.cpu_count() or 1
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    return max(1, count)


class OnnxBackend:
    """Runs a depth ONNX: input (N, 3, H, W) float32, output (N, H, W) or (N, 1, H, W)."""

    name = "onnx"

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or physical_cores()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers or choose_providers())
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{self.path}: not a valid ONNX model ({first_line[:200]})") from None
        self._check_signature()
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = dict(meta)

    def _check_signature(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1:
            raise ModelError(f"{self.path}: not a depth model (it takes {len(inputs)} inputs; a depth model takes one image)")
        shape = inputs[0].shape
        if len(shape) != 4 or shape[1] not in (3, "3") or "float" not in inputs[0].type:
            raise ModelError(
                f"{self.path}: not a depth model (input {inputs[0].name} is {inputs[0].type} {shape}; "
                f"expected a float image tensor of shape (N, 3, H, W))"
            )
        out_shape = outputs[0].shape
        if len(out_shape) not in (3, 4):
            raise ModelError(f"{self.path}: not a depth model (output shape {out_shape}; expected (N, H, W))")
        self.input_name = inputs[0].name
        h, w = shape[2], shape[3]
        self.fixed_size = (w, h) if isinstance(h, int) and isinstance(w, int) else None
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.half = "float16" in inputs[0].type

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) float32 -> (N, h', w') float32."""
        if self.half:
            x = x.astype(np.float16)
        try:
            if self.fixed_batch == 1 and x.shape[0] > 1:
                out = np.concatenate([self.session.run(None, {self.input_name: x[i : i + 1]})[0] for i in range(len(x))])
            else:
                out = self.session.run(None, {self.input_name: x})[0]
        except Exception as exc:
            raise ModelError(f"{self.path}: inference failed ({str(exc).splitlines()[0][:200]})") from None
        out = np.asarray(out, np.float32)
        if out.ndim == 4:
            out = out[:, 0]
        return out
