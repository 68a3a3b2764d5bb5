"""The models DepthStudio knows by name: family, size, depth kind, licence, and where weights live."""
from __future__ import annotations

from dataclasses import dataclass, field

from depthstudio.errors import ModelError

DEFAULT_MODEL = "da2-small"
#: Shorter side of the network input (ModelSettings.input_size); Depth Anything was trained at 518.
DEFAULT_INPUT_SIZE = 518

#: Files a transformers-layout folder needs. Only safetensors: DepthStudio never unpickles weights.
HF_FILES = ("config.json", "model.safetensors")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    params_m: float
    kind: str  # "disparity" | "metric"
    licence: str
    hf_repo: str  # transformers layout (config.json + model.safetensors)
    onnx_repo: str | None = None
    onnx_files: dict = field(default_factory=dict)  # precision -> path inside onnx_repo
    #: sha256 of files where the publisher states them; huggingface_hub also checks LFS hashes itself.
    sha256: dict = field(default_factory=dict)

    @property
    def size_label(self) -> str:
        return f"{self.params_m:.1f}M"

    def files_needed(self, backend: str) -> list[str]:
        if backend == "onnx" and self.onnx_repo:
            return [f"{self.onnx_repo}/{self.onnx_files['fp32']}"]
        return [f"{self.hf_repo}/{name}" for name in HF_FILES]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "family": self.family,
            "parameters": self.size_label,
            "kind": self.kind,
            "licence": self.licence,
            "hf_repo": self.hf_repo,
            "onnx_repo": self.onnx_repo,
            "onnx_files": dict(self.onnx_files),
        }


def _v2(size: str, params: float, licence: str, onnx: bool = False) -> ModelInfo:
    name = f"da2-{size.lower()}"
    return ModelInfo(
        name=name,
        family=f"Depth Anything V2 ViT-{size[0].upper()}",
        params_m=params,
        kind="disparity",
        licence=licence,
        hf_repo=f"depth-anything/Depth-Anything-V2-{size}-hf",
        onnx_repo="onnx-community/depth-anything-v2-small" if onnx else None,
        onnx_files=(
            {"fp32": "onnx/model.onnx", "fp16": "onnx/model_fp16.onnx", "int8": "onnx/model_quantized.onnx"} if onnx else {}
        ),
    )


def _v1(size: str, params: float) -> ModelInfo:
    return ModelInfo(
        name=f"da1-{size}",
        family=f"Depth Anything V1 ViT-{size[0].upper()}",
        params_m=params,
        kind="disparity",
        licence="Apache-2.0",
        hf_repo=f"LiheYoung/depth-anything-{size}-hf",
    )


def _metric(scene: str, size: str, params: float, licence: str) -> ModelInfo:
    return ModelInfo(
        name=f"da2-metric-{scene.lower()}-{size.lower()}",
        family=f"Depth Anything V2 Metric {scene} ViT-{size[0].upper()}",
        params_m=params,
        kind="metric",
        licence=licence,
        hf_repo=f"depth-anything/Depth-Anything-V2-Metric-{scene}-{size}-hf",
    )


CATALOGUE: dict[str, ModelInfo] = {
    m.name: m
    for m in [
        _v2("Small", 24.8, "Apache-2.0", onnx=True),
        _v2("Base", 97.5, "CC-BY-NC-4.0"),
        _v2("Large", 335.3, "CC-BY-NC-4.0"),
        _v1("small", 24.8),
        _v1("base", 97.5),
        _v1("large", 335.3),
        # Metric models: the small ones are Apache-2.0, base/large CC-BY-NC-4.0 (per their model cards).
        *[
            _metric(scene, size, params, "Apache-2.0" if size == "Small" else "CC-BY-NC-4.0")
            for scene in ("Indoor", "Outdoor")
            for size, params in (("Small", 24.8), ("Base", 97.5), ("Large", 335.3))
        ],
    ]
}


def get_model_info(name: str) -> ModelInfo:
    try:
        return CATALOGUE[name]
    except KeyError:
        known = ", ".join(CATALOGUE)
        raise ModelError(f"unknown model {name!r}; known models: {known}; "
                         "or pass a local .onnx file or transformers folder") from None
