"""Frame selectors: which frames a sparse perturber may change. A mask is bool ``(T,)``.

SVA's selector is its RL agent (:mod:`sva.attacks.rl`), which learns from the attack's
feedback; the ones here are fixed.
"""

from __future__ import annotations

import torch
from torch import Tensor


def all_frames(num_frames: int) -> Tensor:
    """Every frame: the dense attack's mask, bool ``(T,)``."""
    return torch.ones(num_frames, dtype=torch.bool)


def no_frames(num_frames: int) -> Tensor:
    """No frame: the mask of a video no attack changed, bool ``(T,)``."""
    return torch.zeros(num_frames, dtype=torch.bool)
