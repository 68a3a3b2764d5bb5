"""One estimator interface over both backends: image in, DepthMap at the image's resolution out."""
from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from depthstudio.depthmap import DepthMap
from depthstudio.errors import ModelError
from depthstudio.io.images import Photo, as_photo
from depthstudio.models.catalogue import DEFAULT_INPUT_SIZE
from depthstudio.models.families import MoGe2, family_for
from depthstudio.models.weights import ModelSource, model_kind_from_folder, resolve

BACKENDS = ("auto", "onnx", "torch")


class Estimator:
    """A loaded model. ``predict`` is thread-safe (one forward at a time)."""

    def __init__(self, backend, source: ModelSource, input_size: int = DEFAULT_INPUT_SIZE):
        if input_size < 14:
            raise ModelError(f"input size must be at least 14 pixels, got {input_size}")
        self.backend = backend
        self.source = source
        self.input_size = int(input_size)
        self.model_id = source.model_id
        self.arch = getattr(backend, "arch", None) or (source.info.arch if source.info else "depth-anything")
        self.family = family_for(self.arch)
        if self.arch == "moge-2":
            backend.num_tokens = MoGe2.num_tokens(self.input_size)
        self.kind = self._kind()
        self._lock = threading.Lock()

    def _kind(self) -> str:
        if self.source.info is not None:
            return self.source.info.kind
        kind = self.backend.metadata.get("depth_kind")
        if kind in ("disparity", "metric"):
            return kind
        if self.source.format == "transformers":
            return model_kind_from_folder(self.source.path)
        return "metric" if "metric" in self.model_id.lower() else "disparity"

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def preprocess(self, image) -> tuple[Photo, np.ndarray]:
        photo = as_photo(image)
        self.family.check(photo.width, photo.height)
        return photo, self.family.prepare(photo.rgb, self.input_size, self.backend.fixed_size)

    def forward(self, x: np.ndarray, prompt: np.ndarray | None = None):
        """A batch of network inputs -> one prediction per item: a depth array for depth-only models
        (the batch as one (N, h, w) array), else a dict of that item's outputs. ``prompt``: (N, 1, h, w)
        metric depth for Prompt Depth Anything."""
        with self._lock:
            out = self.backend.forward(x) if prompt is None else self.backend.forward(x, prompt=prompt)
        if set(out) == {"depth"}:
            return out["depth"]
        return [{k: v[i] for k, v in out.items()} for i in range(len(x))]

    def postprocess(self, photo: Photo, prediction) -> DepthMap:
        out = prediction if isinstance(prediction, dict) else {"depth": prediction}
        fields = self.family.postprocess(out, photo.width, photo.height)
        network = next(iter(out.values())).shape[:2][::-1] if "depth" not in out else out["depth"].shape[::-1]
        meta = {"backend": self.backend_name, "input_size": self.input_size, "network_size": list(network),
                "arch": self.arch, **fields.get("meta", {})}
        if fields.get("focal_px") is not None:
            meta["model_focal_px"] = float(fields["focal_px"])
        return DepthMap(
            values=fields["values"],
            kind=self.kind,  # type: ignore[arg-type]
            model_id=self.model_id,
            mask=photo.alpha,
            meta=meta,
            focal_px=fields.get("focal_px"),
            normals=fields.get("normals"),
        )

    def predict(self, image, prompt: DepthMap | None = None) -> DepthMap:
        """Depth for one photo; ``prompt`` is a low-resolution metric depth map of the same view (a
        phone's LiDAR / ToF depth) that Prompt Depth Anything upsamples to the photo's resolution."""
        photo, x = self.preprocess(image)
        if prompt is None:
            return self.postprocess(photo, self.forward(x)[0])
        depth = self.postprocess(photo, self.forward(x, prompt_tensor(prompt, self.arch, self.backend_name))[0])
        depth.meta["prompt"] = {"size": [prompt.width, prompt.height], "source": prompt.meta.get("depth_file", prompt.model_id)}
        return depth

    @property
    def info(self) -> dict:
        """What this model gives and how it is fed, for front ends."""
        from depthstudio.models.catalogue import INPUT_RULES

        return {"model_id": self.model_id, "arch": self.arch, "kind": self.kind, "backend": self.backend_name,
                "fixed_size": self.backend.fixed_size, "input_size_rule": INPUT_RULES.get(self.arch, ""),
                "licence": self.source.info.licence if self.source.info else None}

    def predict_batch(self, images) -> list[DepthMap]:
        """Several frames of the same size in one forward (video); mixed sizes run one by one."""
        prepared = [self.preprocess(image) for image in images]
        return [self.postprocess(p, pred) for (p, _), pred in zip(prepared, self.forward_prepared(prepared))]

    def forward_prepared(self, prepared: list) -> list:
        """Raw predictions for ``preprocess`` results: one forward when they share a shape."""
        if not prepared:
            return []
        shapes = {x.shape for _, x in prepared}
        if len(shapes) > 1:
            return [self.forward(x)[0] for _, x in prepared]
        return list(self.forward(np.concatenate([x for _, x in prepared])))


def prompt_tensor(prompt: DepthMap, arch: str = "prompt-depth-anything", backend: str = "torch") -> np.ndarray:
    """A metric depth map as Prompt Depth Anything's prompt: (1, 1, h, w) metres, its holes filled
    with the median valid depth (the model normalises the prompt by its own minimum and maximum)."""
    if arch != "prompt-depth-anything":
        raise ModelError(f"only Prompt Depth Anything takes a depth prompt (this model is {arch})")
    if backend != "torch":
        raise ModelError("a depth prompt runs on the torch backend (--backend torch)")
    if prompt.kind != "metric":
        raise ModelError(f"a depth prompt must be metric depth in metres; {prompt.model_id} holds {prompt.kind}")
    valid = prompt.valid
    if not valid.any():
        raise ModelError(f"the depth prompt {prompt.model_id} holds no valid depth")
    values = np.where(valid, prompt.values, np.float32(np.median(prompt.values[valid])))
    return values.astype(np.float32)[None, None]


def _make_backend(source: ModelSource, backend: str):
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if source.format == "onnx":
        if backend == "torch":
            raise ModelError(f"{source.path}: an ONNX file runs on the onnx backend, not torch")
        from depthstudio.models.onnx_backend import OnnxBackend

        return OnnxBackend(source.path)
    if backend == "onnx":
        raise ModelError(
            f"{source.path}: a transformers model runs on the torch backend; for ONNX Runtime make an ONNX file "
            f"first: depthstudio models export-onnx {source.path} -o model.onnx"
        )
    from depthstudio.models.torch_backend import TorchBackend

    return TorchBackend(source.path)


@lru_cache(maxsize=4)
def _cached(model: str | None, backend: str, input_size: int) -> Estimator:
    source = resolve(model, backend)
    return Estimator(_make_backend(source, backend), source, input_size)


def load_estimator(model: str | None = None, backend: str = "auto", input_size: int = DEFAULT_INPUT_SIZE) -> Estimator:
    """Load (once; later calls reuse it) the model named by ``model``: a catalogue name, .onnx, or folder."""
    return _cached(None if model is None else str(model), backend, int(input_size))


def estimate_depth(image, model: str | None = None, backend: str = "auto", input_size: int = DEFAULT_INPUT_SIZE) -> DepthMap:
    return load_estimator(model, backend, input_size).predict(image)
