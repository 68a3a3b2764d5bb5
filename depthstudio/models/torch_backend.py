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


def load_transformers_model(folder: str | Path):
    """A DepthAnythingForDepthEstimation from safetensors only (never unpickles)."""
    try:
        from transformers import DepthAnythingForDepthEstimation
    except ImportError:
        raise ModelError(
            "the PyTorch backend needs torch and transformers: pip install torch, then pip install 'depthstudio[torch]'"
        ) from None
    quiet_transformers()
    folder = Path(folder)
    if not (folder / "model.safetensors").exists():
        raise ModelError(f"{folder}: no model.safetensors (pickled weights are never loaded)")
    try:
        model = DepthAnythingForDepthEstimation.from_pretrained(folder, use_safetensors=True)
    except Exception as exc:
        raise ModelError(f"{folder}: cannot load the model ({str(exc).splitlines()[0][:200]})") from None
    return model.eval()


class TorchBackend:
    name = "torch"
    fixed_size = None

    def __init__(self, folder: str | Path, device: str | None = None, half: bool | None = None):
        import torch

        self.device = pick_device(device)
        self.model = load_transformers_model(folder).to(self.device)
        self.half = self.device == "cuda" if half is None else half
        if self.half:
            self.model = self.model.half()
        self.metadata = {"depth_kind": "metric" if self.model.config.depth_estimation_type == "metric" else "disparity"}
        self._torch = torch

    @property
    def providers(self) -> list[str]:
        return [self.device + (" fp16" if self.half else "")]

    def forward(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        tensor = torch.from_numpy(x).to(self.device)
        if self.half:
            tensor = tensor.half()
        with torch.inference_mode():
            out = self.model(pixel_values=tensor).predicted_depth
        return out.float().cpu().numpy()
