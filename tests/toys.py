"""Tiny victims with known behaviour for attack tests."""

from __future__ import annotations

import torch
from torch import nn


class FrameZeroVictim(nn.Module):
    """Two classes decided by the mean brightness of frame 0 only.

    ``logit_0 − logit_1 = k · (mean(frame 0) − threshold)``: class 0 when frame 0 is
    brighter than the threshold. Perturbing any other frame changes nothing, so only
    masks containing frame 0 can succeed.
    """

    def __init__(self, threshold: float = 0.5, k: float = 400.0):
        super().__init__()
        self.threshold, self.k = threshold, k
        self.dummy = nn.Parameter(torch.zeros(1))  # a device for the oracle

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        s = self.k * (videos[:, 0].mean(dim=(1, 2, 3)) - self.threshold) + 0 * self.dummy
        return torch.stack([s, -s], dim=1)


class LinearVictim(nn.Module):
    """A random linear classifier over the whole video (every frame matters)."""

    def __init__(self, shape=(8, 3, 8, 8), classes: int = 4, seed: int = 0, scale: float = 3.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        n = 1
        for d in shape:
            n *= d
        self.w = nn.Parameter(torch.randn(classes, n, generator=g) * scale / n**0.5)
        self.b = nn.Parameter(torch.zeros(classes))

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return videos.flatten(1) @ self.w.T + self.b


def frame_zero_video(t: int = 8, hw: int = 8, brightness: float = 0.51, seed: int = 0) -> torch.Tensor:
    """A video (T,3,H,W) whose frame 0 has mean ``brightness`` (class 0 for the victim)."""
    g = torch.Generator().manual_seed(seed)
    x = 0.3 + 0.4 * torch.rand(t, 3, hw, hw, generator=g)
    x[0] = x[0] - x[0].mean() + brightness
    return x.clamp(0, 1)


class CountingVictim(nn.Module):
    """Counts every video the victim itself is asked about (not the oracle's count) and
    the size of every forward; ``counting = False`` pauses it (e.g. for the evaluator)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.videos = 0
        self.forwards: list[int] = []
        self.counting = True

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        if self.counting:
            self.videos += int(videos.shape[0])
            self.forwards.append(int(videos.shape[0]))
        return self.inner(videos)


def _spy_oracle_class():
    from sva.blackbox.oracle import Oracle

    class SpyOracle(Oracle):
        """An oracle that keeps every call: ``calls`` (phase, videos, labels) and ``answers``."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.calls: list[tuple[str, torch.Tensor, torch.Tensor]] = []
            self.answers = []

        def query(self, videos, *, phase=None):
            answer = super().query(videos, phase=phase)
            self.calls.append((phase or self.current_phase, videos.detach().clone(), answer.labels))
            self.answers.append(answer)
            return answer

    return SpyOracle


SpyOracle = _spy_oracle_class()


def _targets(model: nn.Module, label: int, classes: int, shape, n: int = 256, darken_frame0: bool = False):
    target = (label + 1) % classes
    pool = torch.rand(n, *shape, generator=torch.Generator().manual_seed(1))
    if darken_frame0:
        pool[:, 0] *= 0.9
    with torch.no_grad():
        return target, pool[model(pool).argmax(1) == target][:5]


def frame_zero_case(mode: str, t: int = 8):
    """(model, x, label, target, candidates) of the near-boundary two-class toy: only
    frame 0's brightness decides (0.502 against a threshold of 0.5)."""
    model = FrameZeroVictim()
    x = frame_zero_video(t, brightness=0.502)
    target, candidates = _targets(model, 0, 2, (t, 3, 8, 8), n=64, darken_frame0=True)
    return model, x, 0, (target if mode == "targeted" else None), (candidates if mode == "targeted" else None)


def near_boundary_linear_case(mode: str, t: int = 8, margin: float = 0.05, seed: int = 2):
    """(model, x, label, target, candidates) of a 4-class linear toy where every frame
    matters and the clean video is ``margin`` logits from the boundary."""
    model = LinearVictim(shape=(t, 3, 8, 8), classes=4, seed=seed)
    x = torch.rand(t, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(x[None])[0]
        top, second = logits.topk(2).values
        model.b[logits.argmax()] -= float(top - second) - margin
        label = int(model(x[None]).argmax())
    target, candidates = _targets(model, label, 4, (t, 3, 8, 8))
    return model, x, label, (target if mode == "targeted" else None), (candidates if mode == "targeted" else None)
