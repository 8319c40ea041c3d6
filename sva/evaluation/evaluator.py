"""The evaluator: confirms an attack's claim with its own forward passes.

These passes are the evaluator's, not the attacker's: they use the model directly and
are not part of Q. The returned video is checked as float and after rounding to uint8;
:func:`mean_reading` judges the mean-perturbation reading of success (MAP ≤ ε).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sva.evaluation.metrics import is_success, linf, mean_absolute_perturbation, perturbed_frames, sparsity, to_uint8


@torch.inference_mode()
def top1(model: nn.Module, video: Tensor) -> int:
    """Top-1 label of one float video ``(T, 3, H, W)`` in [0, 1]."""
    device = next(model.parameters()).device
    return int(model(video[None].to(device)).argmax(dim=1)[0])


def confirm(model: nn.Module, x: Tensor, x_adv: Tensor, label: int, target: int | None, eps: float) -> dict:
    """Metrics and success of ``x_adv`` against clean ``x`` (both float32 ``(T,3,H,W)``).

    Success (float) = goal met and L∞ ≤ eps (+1e-6 for float rounding). The uint8 check
    rounds ``x_adv`` to grey levels; rounding can move a pixel by half a level, so its
    L∞ bound is ``eps`` + 0.5/255 (recorded separately as ``linf_uint8``).
    """
    model.eval()
    x_u8 = to_uint8(x_adv)
    pred_f = top1(model, x_adv)
    pred_u = top1(model, x_u8)
    d_inf = linf(x_adv, x)
    d_inf_u8 = linf(x_u8, x)
    return {
        "pred_float": pred_f,
        "pred_uint8": pred_u,
        "linf": d_inf,
        "linf_uint8": d_inf_u8,
        "success": bool(is_success(pred_f, label, target) and d_inf <= eps + 1e-6),
        "success_uint8": bool(is_success(pred_u, label, target) and d_inf_u8 <= eps + 0.5 / 255 + 1e-6),
        "map": mean_absolute_perturbation(x_adv, x),
        "map_uint8": mean_absolute_perturbation(x_u8, x),
        "sparsity": sparsity(x_adv, x),
        "perturbed_frames": perturbed_frames(x_adv, x).nonzero().flatten().tolist(),
    }


def meets_mean_reading(pred: int, label: int, target: int | None, map_255: float, eps: float) -> bool:
    """Success under the mean-perturbation reading of §4.2: the goal is met (untargeted:
    ``pred`` ≠ ``label``; targeted: ``pred`` = ``target``) and the video's MAP
    (``map_255``, 0–255 grey levels) is at most ε (``eps``, [0, 1] pixel units) on the same
    scale, ``255·eps``, with the float check's 1e-6 rounding allowance (so every L∞
    success, whose MAP is at most 255·L∞, meets it)."""
    return bool(is_success(pred, label, target) and map_255 <= 255.0 * (eps + 1e-6))


def mean_reading(model: nn.Module, x: Tensor, video: Tensor | None, label: int, target: int | None, eps: float,
                 pred: int | None = None) -> dict:
    """The record's mean-reading fields for the video that counts (``docs/attacks.md``).

    ``video``: float32 ``(T, 3, H, W)`` in [0, 1] — the returned video on an L∞ success,
    else the outcome's ``fallback`` — or ``None`` (nothing adversarial to judge).
    ``pred``: its top-1 when already known (the float check's), else one forward pass of
    the evaluator's own (not part of Q). Returns ``success_mean_reading`` (bool,
    :func:`meets_mean_reading`) and ``map_mean_reading`` (the video's MAP, 0–255, or
    ``None`` without a video).
    """
    if video is None:
        return {"success_mean_reading": False, "map_mean_reading": None}
    model.eval()
    pred = top1(model, video) if pred is None else int(pred)
    map_255 = mean_absolute_perturbation(video, x)
    return {"success_mean_reading": meets_mean_reading(pred, label, target, map_255, eps),
            "map_mean_reading": map_255}
