"""The paper's per-video metrics, exactly as docs/design.md defines them.

Videos are float32 ``(T, 3, H, W)`` in [0, 1] (attack space).
"""

from __future__ import annotations

import math

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


#: the two-sided 95 % standard-normal quantile, Φ⁻¹(0.975)
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``successes / n`` (fractions in [0, 1]).

    The interval is the set of proportions ``p`` for which the observed ``p̂`` lies within
    ``z`` standard errors ``sqrt(p(1 − p)/n)`` of ``p`` (Wilson 1927); with ``z`` = 1.96 it
    is the 95 % interval. Unlike the normal approximation it never leaves [0, 1] and is not
    empty at 0/n or n/n. ``n = 0`` (no attacked video): ``(nan, nan)``. Raises
    ``ValueError`` unless ``0 ≤ successes ≤ n`` and ``z > 0``.
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"wilson_interval: need 0 <= successes <= n, got successes={successes}, n={n}")
    if not z > 0:
        raise ValueError(f"wilson_interval: z must be positive, got {z}")
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    z2n = z * z / n
    centre = p + z2n / 2
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    lo, hi = (centre - half) / (1 + z2n), (centre + half) / (1 + z2n)
    # at 0/n and n/n one end is exactly 0 or 1 in exact arithmetic; keep it there
    return (0.0 if successes == 0 else max(0.0, lo)), (1.0 if successes == n else min(1.0, hi))
