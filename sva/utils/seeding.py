"""Every random choice flows from the config's seed through these helpers."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derive_seed(base: int, *keys: object) -> int:
    """A stable 63-bit seed for a named sub-task, e.g. ``derive_seed(0, "video", 17)``.

    Stable across processes and Python versions (no ``hash()``), so shards and reruns
    draw the same numbers for the same (base, keys).
    """
    text = "/".join([str(int(base)), *map(str, keys)])
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def numpy_rng(base: int, *keys: object) -> np.random.Generator:
    """A NumPy generator for a named sub-task."""
    return np.random.default_rng(derive_seed(base, *keys))


def torch_generator(base: int, *keys: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator for a named sub-task."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(base, *keys))
    return gen
