"""The models DepthStudio knows by name: family, size, depth kind, licence, and where weights live."""
from __future__ import annotations

from dataclasses import dataclass, field

from depthstudio.errors import ModelError

DEFAULT_MODEL = "da2-small"
#: Shorter side of the network input (ModelSettings.input_size); Depth Anything was trained at 518.
DEFAULT_INPUT_SIZE = 518

#: Files a transformers-layout folder needs. Only safetensors: DepthStudio never unpickles weights.
HF_FILES = ("config.json", "model.safetensors")


#: Model architectures: how a network is fed and how its outputs become a DepthMap (models/families.py).
ARCHS = ("depth-anything", "depth-pro", "prompt-depth-anything", "moge-2")

#: What each architecture's input rule is, in words (shown by `depthstudio models info`).
INPUT_RULES = {
    "depth-anything": "shorter side --input-size (default 518), both sides rounded to multiples of 14 "
                      "(never below --input-size); any aspect ratio (the longer side is capped at 4x)",
    "prompt-depth-anything": "as Depth Anything: shorter side --input-size, multiples of 14",
    "depth-pro": "fixed 1536 x 1536 (every photo is resized to it, aspect ratio not kept, and the depth "
                 "resized back); --input-size is ignored",
    "moge-2": "token budget: (--input-size / 14)^2 ViT tokens clamped to 1200..3600; aspect ratio "
              "between 1:2 and 2:1 (other photos are refused with a clear error)",
}


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    params_m: float
    kind: str  # "disparity" | "metric"
    licence: str
    hf_repo: str | None  # transformers layout (config.json + model.safetensors); None: ONNX only
    onnx_repo: str | None = None
    onnx_files: dict = field(default_factory=dict)  # precision -> path inside onnx_repo
    #: sha256 of files where the publisher states them; huggingface_hub also checks LFS hashes itself.
    sha256: dict = field(default_factory=dict)
    arch: str = "depth-anything"
    #: What the model gives besides depth: "focal" (a focal length / field of view), "normals", "mask"
    #: (a validity mask, e.g. sky), "prompt" (takes a low-resolution metric depth as a prompt).
    extras: tuple = ()

    @property
    def size_label(self) -> str:
        return f"{self.params_m:.1f}M"

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(b for b, ok in (("onnx", bool(self.onnx_repo)), ("torch", bool(self.hf_repo))) if ok)

    @property
    def outputs(self) -> list[str]:
        return [self.kind, *self.extras]

    @property
    def input_rule(self) -> str:
        return INPUT_RULES[self.arch]

    def files_needed(self, backend: str) -> list[str]:
        if (backend == "onnx" and self.onnx_repo) or not self.hf_repo:
            return [f"{self.onnx_repo}/{self.onnx_files['fp32']}"]
        return [f"{self.hf_repo}/{name}" for name in HF_FILES]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "family": self.family,
            "parameters": self.size_label,
            "kind": self.kind,
            "licence": self.licence,
            "arch": self.arch,
            "outputs": self.outputs,
            "input_size_rule": self.input_rule,
            "backends": list(self.backends),
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


def _distill(size: str, params: float) -> ModelInfo:
    return ModelInfo(
        name=f"distill-any-depth-{size.lower()}",
        family=f"Distill-Any-Depth ViT-{size[0].upper()} (DA V2 arch.)",
        params_m=params,
        kind="disparity",
        licence="MIT",
        hf_repo=f"xingyang1/Distill-Any-Depth-{size}-hf",
    )


def _prompt(size: str, params: float) -> ModelInfo:
    return ModelInfo(
        name=f"prompt-da-{size}",
        family=f"Prompt Depth Anything ViT-{size[3].upper()}",
        params_m=params,
        kind="metric",
        licence="Apache-2.0",
        hf_repo=f"depth-anything/prompt-depth-anything-{size}-hf",
        arch="prompt-depth-anything",
        extras=("prompt",),
    )


def _moge2(size: str, params: float) -> ModelInfo:
    return ModelInfo(
        name=f"moge-2-{size}",
        family=f"MoGe-2 ViT-{size[3].upper()} normal",
        params_m=params,
        kind="metric",
        licence="MIT",
        hf_repo=None,
        onnx_repo=f"Ruicheng/moge-2-{size}-normal-onnx",
        onnx_files={"fp32": "model.onnx"},
        arch="moge-2",
        extras=("focal", "normals", "mask"),
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
        # Metric depth plus a field-of-view estimate; fixed 1536 x 1536 input.
        ModelInfo(name="depth-pro", family="Depth Pro (Apple)", params_m=951.99, kind="metric",
                  licence="Apple sample code licence", hf_repo="apple/DepthPro-hf", arch="depth-pro",
                  extras=("focal",)),
        _distill("Small", 24.8),
        _distill("Large", 335.3),
        _prompt("vits", 24.9),
        _prompt("vitl", 340.0),
        _moge2("vits", 35.0),
        _moge2("vitb", 104.0),
        _moge2("vitl", 326.0),
    ]
}


def get_model_info(name: str) -> ModelInfo:
    try:
        return CATALOGUE[name]
    except KeyError:
        known = ", ".join(CATALOGUE)
        raise ModelError(f"unknown model {name!r}; known models: {known}; "
                         "or pass a local .onnx file or transformers folder") from None
