"""The sparse FGSM + NES attack on a frame mask (paper §3.1, Algorithm 2).

One call attacks one video on one mask (one *episode* of SVA); ``episode()`` is the
same attack as a generator for :mod:`sva.blackbox.lockstep`, which is how SVA runs the N
episodes of an epoch side by side (``__call__`` drives it alone). The mask is a bool
``(T,)``; the gradient estimate is zero off the mask (NES draws noise only there), and
``sign(0) = 0``, so unmasked frames are never changed: the adversarial video is exactly
as sparse as the mask.

Videos are float32 ``(T, 3, H, W)`` in [0, 1]; ``eps`` and ``alpha`` are in the same
[0, 1] pixel units (ε = 0.05 is 12.75 grey levels).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from sva.blackbox.estimators import GradientEstimator, targeted_objective, untargeted_objective
from sva.blackbox.lockstep import Ask, run_alone
from sva.blackbox.oracle import Answer, BudgetExhausted, Oracle


@dataclass
class EpisodeResult:
    """What one attack episode returns.

    ``x_adv``: float32 ``(T, 3, H, W)``, the last video that met the goal (or the last
    iterate when it failed); ``success``: the goal was met within ``eps`` by the
    attack's own (counted) checks; ``queries``: oracle answers this episode used;
    ``label``: the top-1 label of ``x_adv`` as last seen; ``iterations``: FGSM steps.
    ``eps_final``: targeted only, the L∞ radius reached (≤ ε on success).
    ``meets_goal``: the oracle answered ``x_adv`` as meeting the goal (true on success;
    a failed targeted episode's ``x_adv`` still holds the target, beyond ε: the video
    the mean reading of success judges, ``docs/attacks.md``).
    """

    x_adv: Tensor
    success: bool
    queries: int
    label: int
    iterations: int
    eps_final: float
    found_by: str = ""  # "check" (the step's check query) or "probe" (an NES sample)
    log: dict = field(default_factory=dict)
    meets_goal: bool = False

    def __post_init__(self):
        if self.success:
            self.meets_goal = True


def _project(x_adv: Tensor, x: Tensor, eps: float) -> Tensor:
    return torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp_(0.0, 1.0)


class SparseFGSM:
    """Untargeted sparse attack: FGSM ascent on the NES estimate, inside the ε-ball.

    ``x ← clip_ε(x + α·sign(ĝ·M))`` with a one-query check after every step, until the
    top-1 label leaves the true class or ``max_queries`` is spent. Each step costs the
    NES population plus one check (49 queries by default).

    ``accept_probes``: an NES probe whose top-1 already differs from the true label and
    lies within ε of the clean video is itself a successful adversarial video the
    oracle has answered (and counted); with this switch the episode stops there.
    Default off: the paper's Algorithm 2 accepts only checked FGSM iterates.
    """

    def __init__(self, estimator: GradientEstimator, *, eps: float = 0.05, alpha: float = 1 / 255,
                 accept_probes: bool = False):
        if not 0 < eps <= 1:
            raise ValueError(f"eps must be in (0, 1], got {eps}")
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.estimator = estimator
        self.eps = float(eps)
        self.alpha = float(alpha)
        self.accept_probes = accept_probes

    def __call__(self, oracle: Oracle, x: Tensor, true_label: int, mask: Tensor, generator: torch.Generator,
                 max_queries: int | None = None) -> EpisodeResult:
        """Run one episode directly against ``oracle`` (see :meth:`episode`)."""
        cap = oracle.remaining if max_queries is None else min(max_queries, oracle.remaining)
        return run_alone(oracle, self.episode(x, true_label, mask, generator, cap))

    def episode(self, x: Tensor, true_label: int, mask: Tensor, generator: torch.Generator,
                max_queries: int) -> Generator[Ask, Answer, EpisodeResult]:
        """One episode as a generator (:mod:`sva.blackbox.lockstep`): at most ``max_queries``.

        Each step asks for the NES probes (reserving them and the check) and then the
        check; a refused reservation ends the episode like an exhausted cap.
        """
        estimator = self.estimator.spawn()
        step_cost = estimator.queries_per_estimate + 1
        objective = untargeted_objective(int(true_label))
        x_adv = x.clone()
        label = int(true_label)
        iterations = used = 0
        while used + step_cost <= max_queries:
            try:
                est = yield from estimator.steps(x_adv, mask, objective, generator, phase="nes", reserve=step_cost)
            except BudgetExhausted:
                break
            used += est.queries
            if self.accept_probes:
                hit = self._successful_probe(est, x, true_label)
                if hit is not None:
                    return EpisodeResult(hit[0], True, used, hit[1], iterations, self.eps, "probe")
            x_adv = _project(x_adv + self.alpha * torch.sign(est.grad), x, self.eps)
            iterations += 1
            label = int((yield Ask(x_adv[None], "check")).labels[0])
            used += 1
            if label != true_label:
                return EpisodeResult(x_adv, True, used, label, iterations, self.eps, "check")
        return EpisodeResult(x_adv, False, used, label, iterations, self.eps)

    def _successful_probe(self, est, x: Tensor, true_label: int):
        wrong = (est.answer.labels != true_label).nonzero().flatten()
        for i in wrong.tolist():
            probe = est.probe(i)
            if float((probe - x).abs().max()) <= self.eps:
                return probe, int(est.answer.labels[i])
        return None


@dataclass(frozen=True)
class TargetedSchedule:
    """Step-size and ε-decay adaptation for the targeted attack (§3.4, after [27]).

    ``alpha``: initial FGSM step; halved when fewer than ``keep_threshold`` of the last
    ``window`` steps kept the target label. ``eps_decay``: initial Δε; halved after
    ``patience`` steps in a row that could not shrink ε. The episode gives up when
    either falls below its ``min_*``.
    """

    alpha: float = 0.01
    eps_decay: float = 0.01
    keep_threshold: float = 0.5
    window: int = 10
    patience: int = 20
    min_alpha: float = 1e-4
    min_eps_decay: float = 1e-5


class TargetedSparseFGSM:
    """Targeted sparse attack (Algorithm 2): start from a video the victim labels as the
    target, then shrink the L∞ radius ε by Δε while the target label holds.

    The starting video ``x_init`` is supplied by the caller (see
    :func:`sva.attacks.targeted_start.targeted_start`); on the unmasked frames it must equal the
    clean video. Each step: NES estimate (n queries), FGSM step, projection onto the
    smaller ball ε − Δε and one check; if the target is lost, a second check of the
    step projected onto the current ball. Both checks are counted (Algorithm 2 counts
    one; the oracle counts every answer).
    """

    def __init__(self, estimator: GradientEstimator, *, eps: float = 0.05,
                 schedule: TargetedSchedule = TargetedSchedule()):
        self.estimator = estimator
        self.eps = float(eps)
        self.schedule = schedule

    def __call__(self, oracle: Oracle, x: Tensor, x_init: Tensor, target: int, mask: Tensor,
                 generator: torch.Generator, max_queries: int | None = None) -> EpisodeResult:
        """Run one episode directly against ``oracle`` (see :meth:`episode`)."""
        cap = oracle.remaining if max_queries is None else min(max_queries, oracle.remaining)
        return run_alone(oracle, self.episode(x, x_init, target, mask, generator, cap))

    def episode(self, x: Tensor, x_init: Tensor, target: int, mask: Tensor, generator: torch.Generator,
                max_queries: int) -> Generator[Ask, Answer, EpisodeResult]:
        """One episode as a generator (:mod:`sva.blackbox.lockstep`): at most ``max_queries``."""
        s = self.schedule
        estimator = self.estimator.spawn()
        step_cost = estimator.queries_per_estimate + 2
        objective = targeted_objective(int(target))
        x_adv = x_init.clone()
        eps = float((x_adv - x).abs().max())
        alpha, decay = s.alpha, s.eps_decay
        kept: list[bool] = []
        stuck = iterations = used = 0
        label = int(target)
        while eps > self.eps + 1e-12 and used + step_cost <= max_queries:
            if alpha < s.min_alpha or decay < s.min_eps_decay:
                break
            try:
                est = yield from estimator.steps(x_adv, mask, objective, generator, phase="nes", reserve=step_cost)
            except BudgetExhausted:
                break
            used += est.queries
            step = x_adv + alpha * torch.sign(est.grad)
            eps_hat = max(eps - decay, self.eps)
            candidate = _project(step, x, eps_hat)
            iterations += 1
            hit = int((yield Ask(candidate[None], "check")).labels[0]) == target
            used += 1
            if hit:
                x_adv, eps, stuck = candidate, eps_hat, 0
            else:
                stuck += 1
                candidate = _project(step, x, eps)
                hit = int((yield Ask(candidate[None], "check")).labels[0]) == target
                used += 1
                if hit:
                    x_adv = candidate
            kept.append(hit)
            if len(kept) == s.window:
                if sum(kept) / s.window < s.keep_threshold:
                    alpha /= 2
                kept.clear()
            if stuck >= s.patience:
                decay /= 2
                stuck = 0
        success = eps <= self.eps + 1e-12
        # x_adv always holds the target: x_init was answered as the target, and an
        # iterate replaces it only when its check is
        return EpisodeResult(x_adv, success, used, label, iterations, eps, "check" if success else "",
                             {"alpha_final": alpha, "eps_decay_final": decay}, meets_goal=True)
