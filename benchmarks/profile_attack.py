"""Where an attack's time goes: one method on one victim under ``torch.profiler``.

    .venv/bin/python benchmarks/profile_attack.py [--config params.yaml --config config/paper.yaml] \\
        [--victim c3d] [--method sva] [--seconds 5] [--budget 1000] [--in-flight 8] [--rows 15]

Builds the victim as ``benchmarks/attack_throughput.py`` does (random weights), runs the
method for about ``--seconds`` after a warm-up, and prints:
- the share of wall time the victim's own forwards took (the rest is the attack's work:
  noise, projections, the agent, the oracle's bookkeeping, the trajectory observer);
- the top operators by self CPU time, and on a GPU by self device time.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from attack_throughput import attack_block, bench_config, clip_shape
from sva.utils.devices import keep_cpu_memory, pick_device
from sva.victims.models import build_victim


class TimedVictim(torch.nn.Module):
    """The victim, with the wall time of its forwards (synchronised on a GPU) summed."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner, self.seconds = inner, 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
        sync()
        t0 = time.perf_counter()
        with torch.profiler.record_function("victim_forward"):
            out = self.inner(x)
        sync()
        self.seconds += time.perf_counter() - t0
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", action="append")
    ap.add_argument("--victim", default="c3d", choices=["c3d", "lrcn"])
    ap.add_argument("--method", default="sva")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--in-flight", type=int, default=1)
    ap.add_argument("--rows", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    keep_cpu_memory()
    cfg = bench_config(args.config)
    device = pick_device(cfg.device)
    t, h, w, classes = clip_shape(cfg)
    model = TimedVictim(build_victim(args.victim, cfg.victims, classes, (h, w), num_frames=t,
                                     seed=cfg.seed).to(device).eval())
    videos = torch.rand(16, t, 3, h, w, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.inference_mode():
        labels = model(videos).argmax(1).tolist()
    attack_block(cfg, args.method, model, videos, labels, 0.5, device, 200, 0, args.in_flight)  # warm-up
    model.seconds = 0.0
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        qps, used = attack_block(cfg, args.method, model, videos, labels, args.seconds, device, args.budget, 0,
                                 args.in_flight)
        wall = time.perf_counter() - t0
    print(f"{args.victim} {args.method} on {device}, in flight {args.in_flight}: {used} queries in {wall:.1f} s "
          f"({qps:.0f}/s); victim forwards {model.seconds:.2f} s = {100 * model.seconds / wall:.1f} % of wall time "
          "(under the profiler, which adds its own overhead)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    if device.type == "cuda":
        print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
