"""Queries per second of the full SVA attack loop vs the victim's raw batched forward.

Both are measured in this one process, on the same victim at the same batch size
(``attacks.oracle_batch_size``), so the ratio is meaningful on a noisy machine. Target:
ratio ≥ 0.90 (the attack's own work — NES noise, projections, the agent, the oracle's
bookkeeping — costs at most 10% of the victim's time).

    .venv/bin/python benchmarks/attack_throughput.py [--config params.yaml] [--victim c3d]

Victims are built from the config with random weights when no checkpoint is given
(throughput does not depend on the weights); ``--checkpoint results/victims/...pt``
uses a trained one. Peak resident memory of the process is printed too.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time

import torch

from sva.attacks.base import AttackTask
from sva.pipeline.attack_job import build_method
from sva.pipeline.config import load_config
from sva.utils.devices import keep_cpu_memory, pick_device
from sva.victims.models import build_victim
from sva.blackbox.oracle import Oracle


def raw_throughput(model, batch: torch.Tensor, seconds: float) -> float:
    """Videos per second of plain batched forwards under inference_mode."""
    n = 0
    with torch.inference_mode():
        model(batch)  # warm-up
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model(batch)
            n += batch.shape[0]
        return n / (time.perf_counter() - t0)


def attack_throughput(cfg, model, x: torch.Tensor, label: int, queries: int, device) -> tuple[float, int]:
    """Queries per second of SVA's full loop (agent, episodes, NES, checks) on one video."""
    a = cfg.attacks
    attack = build_method(a, "sva", "untargeted")
    attack.sva = dataclasses.replace(attack.sva, epochs=10**6)  # run until the budget is spent
    oracle = Oracle(model, queries, batch_size=a.oracle_batch_size, device=device)
    feats = torch.randn(x.shape[0], 512, generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    attack(oracle, AttackTask(x, label, features=feats, seed=0, seed_keys=("benchmark",)))
    wall = time.perf_counter() - t0
    return oracle.used / wall, oracle.used


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="params.yaml")
    ap.add_argument("--victim", action="append", choices=["c3d", "lrcn"])
    ap.add_argument("--queries", type=int, default=6000, help="query budget of the timed attack")
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of the raw-forward timing")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--glibc-default-malloc", action="store_true",
                    help="skip sva.utils.devices.keep_cpu_memory (what the attack stage calls) to see its effect")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    kept = False if args.glibc_default_malloc else keep_cpu_memory()
    cfg = load_config(args.config)
    device = pick_device(cfg.device)
    ds = next(iter(cfg.datasets.values()))
    syn = ds.synthetic
    t, h, w = cfg.snippets.num_frames, (syn.height if syn else 112), (syn.width if syn else 112)
    if cfg.snippets.crop:
        h, w = cfg.snippets.crop
    classes = syn.num_classes if syn else 101
    bs = cfg.attacks.oracle_batch_size
    print(f"device {device}, threads {args.threads}, video {t}x3x{h}x{w}, oracle batch {bs}, "
          f"keep_cpu_memory {kept}")
    for name in args.victim or cfg.victims.models:
        model = build_victim(name, cfg.victims, classes, (h, w), num_frames=t, seed=cfg.seed).to(device).eval()
        g = torch.Generator().manual_seed(1)
        x = torch.rand(t, 3, h, w, generator=g).to(device)
        with torch.inference_mode():
            label = int(model(x[None]).argmax())
        batch = torch.rand(bs, t, 3, h, w, generator=g).to(device)
        attack_throughput(cfg, model, x, label, 200, device)  # warm-up: imports, allocator
        raw1 = raw_throughput(model, batch, args.seconds / 2)
        qps, used = attack_throughput(cfg, model, x, label, args.queries, device)
        raw2 = raw_throughput(model, batch, args.seconds / 2)
        raw = (raw1 + raw2) / 2
        print(f"{name}: raw forward {raw:8.1f} videos/s | SVA loop {qps:8.1f} queries/s ({used} queries)"
              f" | ratio {qps / raw:.3f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak:.0f} MiB")


if __name__ == "__main__":
    main()
