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


def make_depth_pro_config(size: str = "tiny"):
    """A Depth Pro config: "tiny" (input 128 x 128, a fraction of a second per forward), "small"
    (three ViT-S/16 encoders on 64 px patches, input 256 x 256: benchmarks on small machines) or
    "real" (apple/DepthPro-hf's architecture: three ViT-L/16 DINOv2 encoders, input 1536 x 1536)."""
    from transformers import DepthProConfig

    if size == "real":
        sub = dict(model_type="dinov2", hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                   intermediate_size=4096, patch_size=16, image_size=384, layerscale_value=1.0)
        return DepthProConfig(use_fov_model=True, image_model_config=dict(sub), patch_model_config=dict(sub),
                              fov_model_config=dict(sub))
    if size == "small":
        sub = dict(model_type="dinov2", hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                   intermediate_size=1536, patch_size=16, image_size=64)
        return DepthProConfig(patch_size=64, fusion_hidden_size=64, intermediate_hook_ids=[11, 5],
                              intermediate_feature_dims=[64, 64], scaled_images_feature_dims=[128, 128, 64],
                              use_fov_model=True, image_model_config=dict(sub), patch_model_config=dict(sub),
                              fov_model_config=dict(sub))
    sub = dict(model_type="dinov2", hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
               patch_size=8, image_size=32)
    return DepthProConfig(patch_size=32, fusion_hidden_size=32, intermediate_hook_ids=[3, 1], intermediate_feature_dims=[16, 16],
                          scaled_images_ratios=[0.25, 0.5, 1], scaled_images_overlap_ratios=[0.0, 0.5, 0.25],
                          scaled_images_feature_dims=[32, 32, 16], use_fov_model=True, image_model_config=dict(sub),
                          patch_model_config=dict(sub), fov_model_config=dict(sub))


def make_random_depth_pro(folder: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """config.json + model.safetensors of a random-weight DepthProForDepthEstimation (with its FoV head)."""
    import torch
    from transformers import DepthProForDepthEstimation

    torch.manual_seed(seed)
    model = DepthProForDepthEstimation(make_depth_pro_config(size)).eval()
    for module in model.modules():  # spread the outputs (see make_random_model)
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            module.reset_parameters()
    with torch.no_grad():
        last = [m for m in model.head.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        assert last.bias is not None
        last.bias.fill_(0.5)  # a positive canonical inverse depth
        fov_last = [m for m in model.fov_model.head.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        fov_last.weight.mul_(0.01)
        assert fov_last.bias is not None
        fov_last.bias.fill_(55.0)  # a plausible field of view, in degrees
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    quiet_transformers()
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def make_random_prompt_depth_anything(folder: str | Path, seed: int = 0, size: str = "tiny") -> Path:
    """A random-weight PromptDepthAnythingForDepthEstimation (metric), "tiny" or "vits"."""
    import torch
    from transformers import PromptDepthAnythingConfig, PromptDepthAnythingForDepthEstimation

    base = make_config(size, "metric")
    config = PromptDepthAnythingConfig(backbone_config=base.backbone_config, reassemble_hidden_size=base.reassemble_hidden_size,
                                       neck_hidden_sizes=base.neck_hidden_sizes, fusion_hidden_size=base.fusion_hidden_size,
                                       head_hidden_size=base.head_hidden_size, patch_size=14, depth_estimation_type="metric",
                                       max_depth=1)
    torch.manual_seed(seed)
    model = PromptDepthAnythingForDepthEstimation(config).eval()
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            module.reset_parameters()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    quiet_transformers()
    model.save_pretrained(folder, safe_serialization=True)
    return folder
