"""PyTorch backend through transformers' Depth Anything classes (cuda / mps / cpu, fp16 on GPU)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from depthstudio.errors import ModelError


def pick_device(requested: str | None = None) -> str:
    import torch

    if requested:
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def quiet_transformers() -> None:
    """No per-shard progress bars or advisory logs from transformers on our command line."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


#: transformers model types we run: model_type -> (class name, our architecture).
SUPPORTED_MODEL_TYPES = {
    "depth_anything": ("DepthAnythingForDepthEstimation", "depth-anything"),
    "depth_pro": ("DepthProForDepthEstimation", "depth-pro"),
    "prompt_depth_anything": ("PromptDepthAnythingForDepthEstimation", "prompt-depth-anything"),
}


def folder_model_type(folder: str | Path) -> str:
    """The supported model_type of a transformers folder, from its config.json; ModelError otherwise."""
    import json

    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder}: no config.json (a transformers model folder has config.json + model.safetensors)") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder / 'config.json'}: not readable JSON ({exc})") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type in SUPPORTED_MODEL_TYPES:
        return model_type
    by_class = {cls: mt for mt, (cls, _) in SUPPORTED_MODEL_TYPES.items()}
    for name in (config.get("architectures") or []) if isinstance(config, dict) else []:
        if name in by_class:
            return by_class[name]
    supported = ", ".join(f"{mt} ({cls})" for mt, (cls, _) in SUPPORTED_MODEL_TYPES.items())
    found = model_type or "none"
    architectures = ", ".join(config.get("architectures") or []) if isinstance(config, dict) else ""
    raise ModelError(f"{folder}: config.json says model_type {found!r}"
                     + (f" ({architectures})" if architectures else "")
                     + f", which DepthStudio does not run; supported: {supported}")


def load_transformers_model(folder: str | Path):
    """A transformers depth model (Depth Anything, Depth Pro, Prompt Depth Anything) from safetensors
    only (never unpickles)."""
    folder = Path(folder)
    if not (folder / "model.safetensors").exists():
        raise ModelError(f"{folder}: no model.safetensors (pickled weights are never loaded)")
    model_type = folder_model_type(folder)
    try:
        import transformers
    except ImportError:
        raise ModelError(
            "the PyTorch backend needs torch and transformers: pip install torch, then pip install 'depthstudio[torch]'"
        ) from None
    quiet_transformers()
    cls = getattr(transformers, SUPPORTED_MODEL_TYPES[model_type][0], None)
    if cls is None:
        raise ModelError(f"{folder}: this transformers ({transformers.__version__}) has no "
                         f"{SUPPORTED_MODEL_TYPES[model_type][0]}; upgrade transformers")
    try:
        model = cls.from_pretrained(folder, use_safetensors=True)
    except Exception as exc:
        raise ModelError(f"{folder}: cannot load the model ({str(exc).splitlines()[0][:200]})") from None
    return model.eval()


def model_arch(model) -> str:
    return SUPPORTED_MODEL_TYPES[model.config.model_type][1]


def fixed_input_size(model) -> tuple[int, int] | None:
    """(w, h) a model needs whatever the photo: Depth Pro's square (patch size / smallest scale)."""
    if model.config.model_type == "depth_pro":
        side = int(round(model.config.patch_size / min(model.config.scaled_images_ratios)))
        return side, side
    return None


def model_kind(model) -> str:
    if model.config.model_type == "depth_pro":
        return "metric"
    return "metric" if getattr(model.config, "depth_estimation_type", "relative") == "metric" else "disparity"


class TorchBackend:
    name = "torch"

    def __init__(self, folder: str | Path, device: str | None = None, half: bool | None = None):
        import torch

        self.device = pick_device(device)
        self.model = load_transformers_model(folder).to(self.device)
        self.half = self.device == "cuda" if half is None else half
        if self.half:
            self.model = self.model.half()
        self.arch = model_arch(self.model)
        self.fixed_size = fixed_input_size(self.model)
        self.metadata = {"depth_kind": model_kind(self.model), "arch": self.arch}
        self._torch = torch

    @property
    def providers(self) -> list[str]:
        return [self.device + (" fp16" if self.half else "")]

    def forward(self, x: np.ndarray, prompt: np.ndarray | None = None) -> dict:
        """(N, 3, h, w) float32 -> {"depth": (N, h', w'), and "fov": (N,) for Depth Pro}. ``prompt``:
        (N, 1, h, w) metric depth for Prompt Depth Anything."""
        torch = self._torch
        tensor = torch.from_numpy(x).to(self.device)
        kwargs = {}
        if prompt is not None:
            if self.arch != "prompt-depth-anything":
                raise ModelError(f"only Prompt Depth Anything takes a depth prompt (this model is {self.arch})")
            kwargs["prompt_depth"] = torch.from_numpy(np.ascontiguousarray(prompt, np.float32)).to(self.device)
        if self.half:
            tensor = tensor.half()
            kwargs = {k: v.half() for k, v in kwargs.items()}
        with torch.inference_mode():
            result = self.model(pixel_values=tensor, **kwargs)
        out = {"depth": result.predicted_depth.float().cpu().numpy()}
        fov = getattr(result, "field_of_view", None)
        if fov is not None:
            out["fov"] = fov.float().cpu().numpy().reshape(-1)
        return out
