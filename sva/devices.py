"""Device choice: CUDA when present, CPU otherwise."""

from __future__ import annotations

import torch


def pick_device(requested: str = "auto") -> torch.device:
    """Resolve ``"auto" | "cpu" | "cuda" | "cuda:N"`` to a torch device.

    ``auto`` takes CUDA when available. Asking for CUDA on a machine without it is an
    error, not a silent fallback.
    """
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(requested)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but CUDA is not available")
    return dev
