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


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_cpu_memory(pad_bytes: int = 256 << 20) -> bool:
    """Stop glibc from handing freed memory back to the OS after every forward pass.

    A CPU attack allocates and frees the same activation-sized blocks hundreds of
    times per second; with glibc's defaults the heap is trimmed (or the blocks are
    mmapped) and each forward page-faults its activations in again. On the embedded
    C3D this made batch-16 forwards inside the attack loop ~1.5x slower than the same
    forwards in a tight loop (409 vs 608 videos/s, ``benchmarks/attack_throughput.py``).
    Raising the trim and mmap thresholds keeps the pages: the process's peak memory
    is unchanged, it is just not returned early. Returns whether it took effect
    (False off glibc, e.g. macOS); harmless to call twice.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # the largest glibc allows (64-bit)
    ok &= mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    ok &= mallopt(_M_TOP_PAD, int(pad_bytes))
    return bool(ok)
