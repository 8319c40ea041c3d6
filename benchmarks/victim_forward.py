"""Raw forward speed of the victims, and what LRCN's channels-last layout buys.

    .venv/bin/python benchmarks/victim_forward.py [--config params.yaml] [--batch 16 --batch 3] \\
        [--blocks 5] [--block-seconds 1] [--threads 1]

For each victim of the config (random weights, eval mode, ``inference_mode``) and each
batch size, prints videos/s. For LRCN it also times the same network with its frame CNN
in the contiguous (NCHW) layout, in **interleaved blocks** (channels-last, NCHW,
channels-last, …), and prints the median ratio channels-last / NCHW with its range:
measured in one run, so a noisy machine moves both sides alike. The two layouts give
the same logits up to float rounding (the maximum difference is printed).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from sva.pipeline.config import load_config
from sva.utils.devices import keep_cpu_memory
from sva.victims.models import build_victim
from sva.victims.models.lrcn import LRCN


def videos_per_second(forward, batch: torch.Tensor, seconds: float) -> float:
    """Videos/s of repeated ``forward(batch)`` for about ``seconds``."""
    n = 0
    with torch.inference_mode():
        forward(batch)  # warm-up
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            forward(batch)
            n += batch.shape[0]
        return n / (time.perf_counter() - t0)


class _Contiguous(torch.nn.Module):
    """Runs ``inner`` on its input made contiguous (NCHW)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.contiguous())


def nchw_forward(model: LRCN) -> LRCN:
    """A copy of ``model`` whose frame CNN runs in the contiguous (NCHW) layout: its
    weights converted, and the channels-last frames LRCN's forward passes converted back."""
    other = copy.deepcopy(model)
    other.backbone = _Contiguous(other.backbone.to(memory_format=torch.contiguous_format))
    return other


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="params.yaml")
    ap.add_argument("--batch", type=int, action="append", help="batch sizes (repeatable; default 16 and 3)")
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--block-seconds", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    keep_cpu_memory()
    cfg = load_config(args.config)
    ds = next(iter(cfg.datasets.values()))
    syn = ds.synthetic
    frames = cfg.snippets.num_frames
    hw = (syn.height, syn.width) if syn is not None else (112, 112)
    print(f"threads {args.threads}, clips {frames}x3x{hw[0]}x{hw[1]}, {args.blocks} interleaved blocks of "
          f"{args.block_seconds:g}s", flush=True)
    for name in cfg.victims.models:
        model = build_victim(name, cfg.victims, 10, hw, num_frames=frames, seed=0).eval()
        for bs in args.batch or [16, 3]:
            x = torch.rand(bs, frames, 3, *hw, generator=torch.Generator().manual_seed(0))
            if not isinstance(model, LRCN):
                vps = [videos_per_second(model, x, args.block_seconds) for _ in range(args.blocks)]
                print(f"{name:5s} batch {bs:3d}: {statistics.median(vps):7.1f} videos/s", flush=True)
                continue
            other = nchw_forward(model)
            with torch.inference_mode():
                diff = (model(x) - other(x)).abs().max().item()
            cl, nchw = [], []
            for _ in range(args.blocks):
                cl.append(videos_per_second(model, x, args.block_seconds))
                nchw.append(videos_per_second(other, x, args.block_seconds))
            ratios = [a / b for a, b in zip(cl, nchw)]
            print(f"{name:5s} batch {bs:3d}: {statistics.median(cl):7.1f} videos/s channels-last, "
                  f"{statistics.median(nchw):7.1f} NCHW; ratio median {statistics.median(ratios):.2f} "
                  f"(min {min(ratios):.2f}, max {max(ratios):.2f}); max |Δlogit| {diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
