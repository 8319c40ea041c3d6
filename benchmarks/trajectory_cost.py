"""What the trajectory observer (``sva/evaluation/trajectory.py``) costs per query,
against the victim's forward per video.

    .venv/bin/python benchmarks/trajectory_cost.py [--config params.yaml] [--rows 48] [--repeats 50]

Times the observer on a batch of ``--rows`` videos of the config's clip size whose
answers all meet the goal (the worst case: every row is screened) and half of them (the
others are skipped by label), and C3D's forward on a batch of 16 of the same videos, in
one run; prints microseconds per row and the ratio observer / forward per video.
"""

from __future__ import annotations

import argparse
import time

import torch

from sva.blackbox.oracle import Answer
from sva.evaluation.trajectory import Trajectory
from sva.pipeline.config import load_config
from sva.utils.devices import keep_cpu_memory
from sva.victims.models import build_victim


def per_row(fn, rows: int, repeats: int) -> float:
    """Seconds per row of ``fn()`` over ``rows`` rows, after a warm-up call."""
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats / rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="params.yaml")
    ap.add_argument("--rows", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)
    keep_cpu_memory()
    cfg = load_config(args.config)
    syn = next(iter(cfg.datasets.values())).synthetic
    hw = (syn.height, syn.width) if syn is not None else (112, 112)
    frames = cfg.snippets.num_frames
    g = torch.Generator().manual_seed(0)
    x = torch.rand(frames, 3, *hw, generator=g)
    videos = (x + 0.04 * torch.randn(args.rows, *x.shape, generator=g).sign()).clamp(0, 1)
    model = build_victim("c3d", cfg.victims, 10, hw, num_frames=frames, seed=0).eval()
    batch = videos[:16]
    with torch.inference_mode():
        forward = per_row(lambda: model(batch), len(batch), max(args.repeats // 5, 3))
    print(f"C3D forward, batch {len(batch)}: {forward * 1e6:.0f} us per video")
    for name, labels in (("every row meets the goal", torch.ones(args.rows, dtype=torch.long)),
                         ("half of the rows meet it", torch.arange(args.rows) % 2)):
        traj = Trajectory(x, 0, None, cfg.attacks.eps)
        answer = Answer(labels, None)
        cost = per_row(lambda: traj(videos, answer, 0), args.rows, args.repeats)
        print(f"observer, {name}: {cost * 1e6:.0f} us per row = {cost / forward:.3f} of a forward")


if __name__ == "__main__":
    main()
