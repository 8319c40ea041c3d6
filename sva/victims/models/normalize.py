"""Input normalisation inside every victim (so attacks bound perturbations in pixels)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """``(x - mean) / std`` per colour channel of a ``(B, T, 3, H, W)`` video in [0, 1].

    ``mean`` and ``std`` are registered buffers (saved in the state dict, moved with
    the model).
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"expected a (B, T, 3, H, W) video batch, got shape {tuple(x.shape)}")
        return (x - self.mean) / self.std
