"""Per-image random affine augmentation of a batch already on the device.

torchvision's ``RandomAffine`` draws one transform per call (one per batch when given a batch);
drawing one per image keeps augmentation on the device without a per-sample loop, using
``affine_grid``/``grid_sample``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from automl_chars.training.settings import AugmentSettings


def random_affine(x: torch.Tensor, settings: AugmentSettings, generator: torch.Generator) -> torch.Tensor:
    """``x`` (float, ``(N, C, H, W)``) with an independent random affine transform per image."""
    if not settings.enabled or len(x) == 0:
        return x
    n = x.shape[0]

    def uniform(bound: float) -> torch.Tensor:
        r = torch.rand(n, generator=generator, device=generator.device) * 2 - 1
        return (r * bound).to(x.device)

    angle = uniform(math.radians(settings.rotation))
    scale = 1.0 + uniform(settings.scale)
    tx, ty = uniform(2 * settings.translate), uniform(2 * settings.translate)  # grid units are [-1, 1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
