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


#: MoGe-2's published graph: inputs image + num_tokens; outputs points, normal, mask, metric_scale
#: (the scalar is also seen named "scale").
MOGE_OUTPUTS = {"points": ("points",), "normal": ("normal", "normals"), "mask": ("mask",),
                "metric_scale": ("metric_scale", "scale")}


class OnnxBackend:
    """Runs a depth ONNX. Depth Anything-like: input (N, 3, H, W) float32, output (N, H, W) or
    (N, 1, H, W); Depth Pro (our export): outputs predicted_depth and field_of_view; MoGe-2 (the
    published export): inputs image and num_tokens, outputs points, normal, mask, metric_scale."""

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
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = dict(meta)
        self.num_tokens = 1369  # MoGe-2 only; the estimator sets it from --input-size
        self._check_signature()

    def _image_input(self, inp) -> None:
        shape = inp.shape
        if len(shape) != 4 or shape[1] not in (3, "3") or "float" not in inp.type:
            raise ModelError(
                f"{self.path}: not a depth model (input {inp.name} is {inp.type} {shape}; "
                f"expected a float image tensor of shape (N, 3, H, W))"
            )
        self.input_name = inp.name
        h, w = shape[2], shape[3]
        self.fixed_size = (w, h) if isinstance(h, int) and isinstance(w, int) else None
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.half = "float16" in inp.type

    def _check_signature(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        in_names = [i.name for i in inputs]
        out_names = [o.name for o in outputs]
        self.output_names = out_names
        if len(inputs) == 2 and "num_tokens" in in_names:
            self.arch = "moge-2"
            self._image_input(next(i for i in inputs if i.name != "num_tokens"))
            self.token_input = "num_tokens"
            self.outputs = {}
            for key, names in MOGE_OUTPUTS.items():
                found = next((n for n in names if n in out_names), None)
                if found is None and key in ("points", "metric_scale"):
                    raise ModelError(f"{self.path}: a MoGe-2 graph needs the outputs points and metric_scale; "
                                     f"this one has {', '.join(out_names)}")
                if found is not None:
                    self.outputs[key] = found
            self.metadata.setdefault("depth_kind", "metric")
            return
        if len(inputs) != 1:
            raise ModelError(f"{self.path}: not a depth model (it takes {len(inputs)} inputs: {', '.join(in_names)}; "
                             f"a depth model takes one image, MoGe-2 an image and num_tokens)")
        self._image_input(inputs[0])
        if self.metadata.get("arch") == "depth-pro" or "field_of_view" in out_names:
            self.arch = "depth-pro"
            self.outputs = {"depth": out_names[0], "fov": "field_of_view" if "field_of_view" in out_names else out_names[1]}
            self.metadata.setdefault("depth_kind", "metric")
            return
        self.arch = self.metadata.get("arch", "depth-anything")
        out_shape = outputs[0].shape
        single = len(out_shape) == 3 or (len(out_shape) == 4 and out_shape[1] in (1, "1"))
        if not single:
            expected = "(N, H, W) or (N, 1, H, W)"
            if len(out_shape) == 4 and isinstance(out_shape[1], int):
                raise ModelError(f"{self.path}: not a depth model (output {outputs[0].name} has shape "
                                 f"{_shape_text(out_shape)}: {out_shape[1]} channels, not one depth; expected {expected})")
            if len(out_shape) == 4:  # a symbolic channel count: checked on the first run
                self._check_channels = True
            else:
                raise ModelError(f"{self.path}: not a depth model (output {outputs[0].name} has shape "
                                 f"{_shape_text(out_shape)}; expected {expected})")
        self.outputs = {"depth": out_names[0]}

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def _run(self, feeds: dict, names: list[str]) -> list:
        try:
            return self.session.run(names, feeds)
        except Exception as exc:
            raise ModelError(f"{self.path}: inference failed ({str(exc).splitlines()[0][:200]})") from None

    def forward(self, x: np.ndarray) -> dict:
        """(N, 3, h, w) float32 -> a dict of (N, ...) float32 arrays (see models/families.py)."""
        if self.half:
            x = x.astype(np.float16)
        keys = list(self.outputs)
        names = [self.outputs[k] for k in keys]
        extra = {self.token_input: np.array(self.num_tokens, np.int64)} if self.arch == "moge-2" else {}
        if self.fixed_batch == 1 and x.shape[0] > 1:
            runs = [self._run({self.input_name: x[i : i + 1], **extra}, names) for i in range(len(x))]
            results = [np.concatenate([np.asarray(r[j]).reshape(1, *np.asarray(r[j]).shape[1:]) if np.ndim(r[j]) else
                                       np.asarray(r[j]).reshape(1) for r in runs]) for j in range(len(names))]
        else:
            results = self._run({self.input_name: x, **extra}, names)
        out = {k: np.asarray(v, np.float32) for k, v in zip(keys, results)}
        if "depth" in out and out["depth"].ndim == 4:
            if out["depth"].shape[1] != 1:
                raise ModelError(f"{self.path}: not a depth model (its output has shape {_shape_text(out['depth'].shape)}: "
                                 f"{out['depth'].shape[1]} channels, not one depth; expected (N, H, W) or (N, 1, H, W))")
            out["depth"] = out["depth"][:, 0]
        for key in ("fov", "metric_scale"):
            if key in out:
                value = out[key]
                out[key] = value.reshape(len(x), -1)[:, 0] if value.size >= len(x) else np.repeat(value.reshape(-1), len(x))
        return out


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"
