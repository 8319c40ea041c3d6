"""GPU claiming for local pipeline jobs.

Snakemake's ``--resources gpu=N`` only limits how many GPU jobs run at once; it never
says *which* GPU a job should use. A local job therefore claims a free device itself:
it takes an exclusive, non-blocking ``flock`` on ``<lock_dir>/gpu<i>.lock`` for the
first free index ``i`` and sets ``CUDA_VISIBLE_DEVICES=i`` before CUDA is initialised.
The OS releases the lock when the job's process ends, even when it is killed, so a
crashed job never leaves a GPU marked busy. Under SLURM (``SLURM_JOB_ID`` set) the
scheduler already restricted ``CUDA_VISIBLE_DEVICES``; we trust it and claim nothing.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


@dataclass
class GpuClaim:
    """A held claim: ``index`` (None = CPU / scheduler-managed) and the open lock file."""

    index: int | None
    handle: IO | None = None

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def visible_gpu_count() -> int:
    """Number of CUDA devices (0 without CUDA), without keeping CUDA initialised state."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def claim_gpu(lock_dir: str | Path, count: int | None = None, env: dict | None = None) -> GpuClaim:
    """Claim a free GPU for this process (see module docstring).

    ``count``: devices to consider (default: what CUDA reports). ``env``: the
    environment to update (default ``os.environ``). Raises ``RuntimeError`` when every
    GPU is claimed (Snakemake's ``gpu`` resource should prevent that).
    """
    env = os.environ if env is None else env
    if env.get("SLURM_JOB_ID"):
        log.info("SLURM job %s: using the scheduler's CUDA_VISIBLE_DEVICES=%s",
                 env["SLURM_JOB_ID"], env.get("CUDA_VISIBLE_DEVICES"))
        return GpuClaim(None)
    n = visible_gpu_count() if count is None else count
    if n == 0:
        return GpuClaim(None)
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        handle = open(lock_dir / f"gpu{i}.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        env["CUDA_VISIBLE_DEVICES"] = str(i)
        log.info("claimed GPU %d (lock %s)", i, lock_dir / f"gpu{i}.lock")
        return GpuClaim(i, handle)
    raise RuntimeError(f"all {n} GPUs are claimed (locks in {lock_dir}); lower --resources gpu=")
