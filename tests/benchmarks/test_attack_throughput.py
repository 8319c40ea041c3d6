"""``benchmarks/attack_throughput.py``'s helpers: the raw forward counts every video it
timed, and the NES noise cost it prints is a positive per-query time."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import attack_throughput  # noqa: E402


class Counting(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.videos = 0

    def forward(self, x):
        self.videos += x.shape[0]
        return x.flatten(1)[:, :3]


def test_raw_block_rate_counts_every_queued_forward():
    model, batch = Counting(), torch.rand(5, 4, 3, 2, 2)
    rate = attack_throughput.raw_block(model, batch, 0.05)
    assert rate > 0 and model.videos % (attack_throughput.QUEUED * 5) == 0 and model.videos > 0


def test_noise_seconds_per_query_is_a_small_positive_time():
    s = attack_throughput.noise_seconds_per_query(4, (2, 3, 4, 4), torch.device("cpu"), 0.02)
    assert 0 < s < 0.01
