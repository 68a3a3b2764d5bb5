"""Depth Anything models with random weights, in the transformers layout.

No weights can be downloaded on build machines, so tests and benchmarks make their own: "tiny"
exercises every code path in a fraction of a second; "vits" has the real ViT-S architecture and
parameter count (24.8M) for representative timings. Neither predicts meaningful depth.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from depthstudio.models.torch_backend import quiet_transformers

SIZES = {
    # hidden, layers, heads, mlp, out_indices, neck, fusion, head, image_size
    "tiny": (32, 4, 2, 64, [1, 2, 3, 4], [16, 32, 32, 32], 32, 16, 98),
    "vits": (384, 12, 6, 1536, [3, 6, 9, 12], [48, 96, 192, 384], 64, 32, 518),
}


def make_config(size: str = "tiny", kind: str = "disparity"):
    from transformers import DepthAnythingConfig, Dinov2Config

    hidden, layers, heads, mlp, out_indices, neck, fusion, head, image_size = SIZES[size]
    # Dinov2Config takes these through **kwargs (its typed signature lists fewer)
    backbone_kwargs: dict[str, Any] = dict(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=mlp,
        patch_size=14,
        image_size=image_size,
        out_indices=out_indices,
        reshape_hidden_states=False,
        apply_layernorm=True,
    )
    backbone = Dinov2Config(**backbone_kwargs)
    return DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=hidden,
        neck_hidden_sizes=neck,
        fusion_hidden_size=fusion,
        head_hidden_size=head,
        patch_size=14,
        depth_estimation_type="metric" if kind == "metric" else "relative",
        max_depth=20 if kind == "metric" else 1,
    )


def make_random_model(folder: str | Path, size: str = "tiny", kind: str = "disparity", seed: int = 0) -> Path:
    """Write config.json + model.safetensors of a random-weight Depth Anything into ``folder``."""
    import torch
    from transformers import DepthAnythingForDepthEstimation

    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(make_config(size, kind)).eval()
    # transformers initialises with std 0.02, which makes the tiny model's output nearly constant;
    # PyTorch's default conv init gives the head a spread of values worth checking against.
    for module in [*model.neck.modules(), *model.head.modules()]:
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            module.reset_parameters()
    with torch.no_grad():
        model.head.conv3.bias.fill_(0.5)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    quiet_transformers()
    model.save_pretrained(folder, safe_serialization=True)
    return folder
