"""The paper's per-video metrics, exactly as docs/design.md defines them.

Videos are float32 ``(T, 3, H, W)`` in [0, 1] (attack space).
"""

from __future__ import annotations

import torch


def mean_absolute_perturbation(x_adv: torch.Tensor, x: torch.Tensor) -> float:
    """MAP: mean of |x_adv − x| over all T·H·W·3 values, times 255 (paper Eq. 12)."""
    return float((x_adv.double() - x.double()).abs().mean() * 255.0)


def perturbed_frames(x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """BoolTensor ``(T,)``: frames whose perturbation is not exactly zero."""
    return (x_adv != x).flatten(1).any(dim=1)


def sparsity(x_adv: torch.Tensor, x: torch.Tensor) -> float:
    """S: fraction of frames whose perturbation is exactly zero, measured on the video."""
    return float(1.0 - perturbed_frames(x_adv, x).double().mean())


def linf(x_adv: torch.Tensor, x: torch.Tensor) -> float:
    """L∞ distance in [0, 1] pixel units."""
    return float((x_adv.double() - x.double()).abs().max()) if x.numel() else 0.0


def to_uint8(video: torch.Tensor) -> torch.Tensor:
    """Round a [0, 1] float video to the nearest uint8 level, returned as float in [0, 1]."""
    return torch.round(video.clamp(0, 1) * 255.0) / 255.0


def is_success(label: int, true_label: int, target: int | None) -> bool:
    """Untargeted: top-1 ≠ true label. Targeted: top-1 = target."""
    return label == target if target is not None else label != true_label
