"""Tiny victims with known behaviour for attack tests."""

from __future__ import annotations

import torch
from torch import nn


class FrameZeroVictim(nn.Module):
    """Two classes decided by the mean brightness of frame 0 only.

    ``logit_0 − logit_1 = k · (mean(frame 0) − threshold)``: class 0 when frame 0 is
    brighter than the threshold. Perturbing any other frame changes nothing, so only
    masks containing frame 0 can succeed.
    """

    def __init__(self, threshold: float = 0.5, k: float = 400.0):
        super().__init__()
        self.threshold, self.k = threshold, k
        self.dummy = nn.Parameter(torch.zeros(1))  # a device for the oracle

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        s = self.k * (videos[:, 0].mean(dim=(1, 2, 3)) - self.threshold) + 0 * self.dummy
        return torch.stack([s, -s], dim=1)


class LinearVictim(nn.Module):
    """A random linear classifier over the whole video (every frame matters)."""

    def __init__(self, shape=(8, 3, 8, 8), classes: int = 4, seed: int = 0, scale: float = 3.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        n = 1
        for d in shape:
            n *= d
        self.w = nn.Parameter(torch.randn(classes, n, generator=g) * scale / n**0.5)
        self.b = nn.Parameter(torch.zeros(classes))

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return videos.flatten(1) @ self.w.T + self.b


def frame_zero_video(t: int = 8, hw: int = 8, brightness: float = 0.51, seed: int = 0) -> torch.Tensor:
    """A video (T,3,H,W) whose frame 0 has mean ``brightness`` (class 0 for the victim)."""
    g = torch.Generator().manual_seed(seed)
    x = 0.3 + 0.4 * torch.rand(t, 3, hw, hw, generator=g)
    x[0] = x[0] - x[0].mean() + brightness
    return x.clamp(0, 1)
