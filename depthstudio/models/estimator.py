"""One estimator interface over both backends: image in, DepthMap at the image's resolution out."""
from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from depthstudio.depthmap import DepthMap
from depthstudio.errors import ModelError
from depthstudio.io.images import Photo, as_photo
from depthstudio.models.catalogue import DEFAULT_INPUT_SIZE
from depthstudio.models.preprocess import prepare, resize_prediction
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
        return photo, prepare(photo.rgb, self.input_size, self.backend.fixed_size)

    def forward(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            return self.backend.forward(x)

    def postprocess(self, photo: Photo, prediction: np.ndarray) -> DepthMap:
        values = resize_prediction(prediction, photo.width, photo.height)
        return DepthMap(
            values=values,
            kind=self.kind,  # type: ignore[arg-type]
            model_id=self.model_id,
            mask=photo.alpha,
            meta={"backend": self.backend_name, "input_size": self.input_size, "network_size": list(prediction.shape[::-1])},
        )

    def predict(self, image) -> DepthMap:
        photo, x = self.preprocess(image)
        return self.postprocess(photo, self.forward(x)[0])

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
