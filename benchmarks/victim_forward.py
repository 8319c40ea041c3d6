"""Raw forward speed of the victims, and what their inference path and LRCN's
channels-last layout buy.

    .venv/bin/python benchmarks/victim_forward.py [--config params.yaml] [--batch 16 --batch 3] \\
        [--blocks 5] [--block-seconds 1] [--threads 1]

For each victim of the config (random weights with trained-like BatchNorm statistics,
eval mode, ``inference_mode``) and each batch size, prints videos/s of the victim's
inference path (BatchNorm folded into its convolution, ``sva/victims/models/fold.py``;
C3D's single video through oneDNN) against the plain forward (the same modules with
autograd on and no parameter needing it: every BatchNorm run as a layer, PyTorch's own
convolution backend), in **interleaved blocks** (inference, plain, inference, …), with
the median ratio inference / plain and its range: measured in one run, so a noisy
machine moves both sides alike. For LRCN it also times the frame CNN in the contiguous
(NCHW) layout against channels-last the same way. Each pair gives the same logits up to
float rounding (the maximum difference is printed).
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


def plain_forward(model: torch.nn.Module):
    """``model``'s forward without its inference path: with autograd on (and no parameter
    requiring a gradient, so nothing is recorded) every BatchNorm runs as its own layer
    and C3D's convolutions take PyTorch's own backend choice."""
    for p in model.parameters():
        p.requires_grad_(False)

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            return model(x)

    return forward


def trained_like(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """``model`` in eval mode with non-trivial BatchNorm statistics, as training leaves
    them (a fresh BatchNorm is the identity and would hide a wrong fold)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.1)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(n, generator=g) * 0.3)
    return model.eval()


def compare(first, second, x: torch.Tensor, blocks: int, seconds: float) -> tuple[float, float, list[float], float]:
    """Interleaved blocks of ``first`` and ``second`` on ``x``: (median videos/s of each,
    the per-block ratios first / second, max |Δlogit| between them)."""
    with torch.inference_mode():
        a = first(x)
    b = second(x)
    diff = (a - b.detach()).abs().max().item()
    one, two = [], []
    for _ in range(blocks):
        one.append(videos_per_second(first, x, seconds))
        two.append(videos_per_second(second, x, seconds))
    return statistics.median(one), statistics.median(two), [p / q for p, q in zip(one, two)], diff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="params.yaml")
    ap.add_argument("--batch", type=int, action="append", help="batch sizes (repeatable; default 16, 3 and 1)")
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
        model = trained_like(build_victim(name, cfg.victims, 10, hw, num_frames=frames, seed=0))
        plain = plain_forward(copy.deepcopy(model))
        for bs in args.batch or [16, 3, 1]:
            x = torch.rand(bs, frames, 3, *hw, generator=torch.Generator().manual_seed(0))
            fast, slow, ratios, diff = compare(model, plain, x, args.blocks, args.block_seconds)
            print(f"{name:5s} batch {bs:3d}: {fast:7.1f} videos/s inference path, {slow:7.1f} plain; ratio median "
                  f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}); "
                  f"max |Δlogit| {diff:.1e}", flush=True)
            if isinstance(model, LRCN):
                cl, nchw, ratios, diff = compare(model, nchw_forward(model), x, args.blocks, args.block_seconds)
                print(f"{name:5s} batch {bs:3d}: {cl:7.1f} videos/s channels-last, {nchw:7.1f} NCHW; ratio median "
                      f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}); "
                      f"max |Δlogit| {diff:.1e}", flush=True)

if __name__ == "__main__":
    main()
