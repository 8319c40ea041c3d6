"""The victim models: C3D and LRCN (see ``docs/victims.md``).

Every victim takes ``(B, T, 3, H, W)`` float in [0, 1], normalises inside itself
(ImageNet mean/std, registered buffers) and returns logits ``(B, num_classes)``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from sva.victims.settings import VictimsCfg
from sva.victims.models.c3d import C3D, c3d_feature_shape
from sva.victims.models.lrcn import LRCN
from sva.victims.models.normalize import IMAGENET_MEAN, IMAGENET_STD, Normalize
from sva.utils.seeding import derive_seed

VICTIMS = ("c3d", "lrcn")

__all__ = [
    "C3D",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LRCN",
    "Normalize",
    "VICTIMS",
    "build_from_arch",
    "build_victim",
    "c3d_feature_shape",
    "victim_arch",
]


def victim_arch(name: str, victims_cfg: VictimsCfg) -> dict[str, Any]:
    """The architecture part of a victim's config (no training settings), as a dict
    of primitives: what a checkpoint stores to rebuild the model."""
    if name == "c3d":
        c = victims_cfg.c3d
        return {"width_mult": c.width_mult, "batchnorm": c.batchnorm, "fc_dim": c.fc_dim, "dropout": c.dropout}
    if name == "lrcn":
        c = victims_cfg.lrcn
        return {
            "backbone": c.backbone,
            "backbone_width": c.backbone_width,
            "hidden": c.hidden,
            "dropout": c.dropout,
        }
    raise ValueError(f"unknown victim {name!r}; choose from {VICTIMS}")


def build_from_arch(
    name: str,
    arch: dict[str, Any],
    num_classes: int,
    input_hw: tuple[int, int],
    num_frames: int = 16,
) -> nn.Module:
    """Build a victim from :func:`victim_arch`'s dict (used by checkpoint loading)."""
    h, w = (int(v) for v in input_hw)
    if name == "c3d":
        return C3D(num_classes, input_size=(int(num_frames), h, w), **arch)
    if name == "lrcn":
        return LRCN(num_classes, **arch)
    raise ValueError(f"unknown victim {name!r}; choose from {VICTIMS}")


def build_victim(
    name: str,
    victims_cfg: VictimsCfg,
    num_classes: int,
    input_hw: tuple[int, int],
    *,
    num_frames: int = 16,
    seed: int | None = None,
) -> nn.Module:
    """Build victim ``name`` ('c3d' | 'lrcn') for ``num_frames`` x ``input_hw`` clips.

    With ``seed``, the initial weights come from ``derive_seed(seed, "victim_init",
    name)`` without touching torch's global generator; without it, from the global
    generator (seed it yourself).
    """
    arch = victim_arch(name, victims_cfg)
    ctx = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    with ctx:
        if seed is not None:
            torch.manual_seed(derive_seed(seed, "victim_init", name))
        return build_from_arch(name, arch, num_classes, input_hw, num_frames)
