"""The sparse FGSM/NES perturber that SVA and the dense baseline share: given a frame
mask, one attack *episode* — untargeted (:class:`~sva.attacks.fgsm.SparseFGSM`), or
targeted (the start of :mod:`sva.attacks.targeted_start`, then
:class:`~sva.attacks.fgsm.TargetedSparseFGSM`).

Episodes are generators for :mod:`sva.blackbox.lockstep`, so several can share oracle
batches. A method is then a frame selector × this perturber (``docs/design.md``).
"""

from __future__ import annotations

from collections.abc import Generator

import torch
from torch import Tensor

from sva.attacks.base import AttackOutcome
from sva.attacks.fgsm import EpisodeResult, SparseFGSM, TargetedSchedule, TargetedSparseFGSM
from sva.attacks.settings import AttackContext, TargetedCfg, UntargetedCfg
from sva.attacks.targeted_start import targeted_start_steps
from sva.blackbox.estimators import build_estimator
from sva.blackbox.lockstep import Ask
from sva.attacks.selectors import no_frames
from sva.blackbox.oracle import Answer, Oracle
from sva.evaluation.metrics import mean_absolute_perturbation


def estimator_of(mode_cfg: UntargetedCfg | TargetedCfg):
    """The gradient estimator a mode block configures."""
    return build_estimator(mode_cfg.estimator, population=mode_cfg.population, sigma=mode_cfg.sigma)


def min_budget(mode: str, mode_cfg: UntargetedCfg | TargetedCfg) -> int:
    """The fewest queries that let one attack step finish in ``mode``: the first look at
    the clean video, (targeted) the start's candidate checks, the gradient probes and the
    step's check(s) (``docs/attacks.md``)."""
    probes = estimator_of(mode_cfg).queries_per_estimate
    if mode == "untargeted":
        return 1 + probes + 1
    return 1 + mode_cfg.init_candidates + probes + 2


def min_budget_parts(mode: str, mode_cfg: UntargetedCfg | TargetedCfg) -> str:
    """:func:`min_budget` spelled out, for error messages."""
    start = f" + {mode_cfg.init_candidates} start candidates" if mode == "targeted" else ""
    checks = 1 if mode == "untargeted" else 2
    probes = estimator_of(mode_cfg).queries_per_estimate
    return f"1 first look{start} + {probes} gradient probes ({mode_cfg.estimator}) + {checks} check"


class SparsePerturber:
    """Sparse FGSM on the NES estimate, restricted to a frame mask, in one mode.

    ``context``: the mode, ε and that mode's settings block. ``step_cost``: the queries
    of one FGSM step (NES population + its check(s)).
    """

    def __init__(self, context: AttackContext):
        self.context = context
        c = context.mode_cfg
        estimator = estimator_of(c)
        if context.targeted:
            schedule = TargetedSchedule(alpha=c.alpha, eps_decay=c.eps_decay, keep_threshold=c.keep_threshold,
                                        window=c.window, patience=c.patience, min_alpha=c.min_alpha,
                                        min_eps_decay=c.min_eps_decay)
            self.attack = TargetedSparseFGSM(estimator, eps=context.eps, schedule=schedule)
        else:
            self.attack = SparseFGSM(estimator, eps=context.eps, alpha=c.alpha, accept_probes=c.accept_probes)

    @property
    def step_cost(self) -> int:
        return self.attack.estimator.queries_per_estimate + (2 if self.context.targeted else 1)

    def episode(self, x: Tensor, label: int, target: int | None, candidates: Tensor | None, mask: Tensor,
                cap: int, generator: torch.Generator) -> Generator[Ask, Answer, EpisodeResult]:
        """One episode on ``mask`` (bool ``(T,)``) with at most ``cap`` queries.

        ``x``: float32 ``(T, 3, H, W)``; targeted: ``target`` and the start's
        ``candidates`` (float32 ``(K, T, 3, H, W)``); the start's queries count in ``cap``.
        """
        if not self.context.targeted:
            return (yield from self.attack.episode(x, label, mask, generator, cap))
        x_init, spent = yield from targeted_start_steps(x, mask, target, candidates)
        if x_init is None:
            return EpisodeResult(x.clone(), False, spent, label, 0, 1.0, "", {"init": "failed"})
        res = yield from self.attack.episode(x, x_init, target, mask, generator, max(cap - spent, 0))
        res.queries += spent
        return res


def episode_log(res: EpisodeResult, x: Tensor, mask: Tensor, **fields) -> dict:
    """An episode's log entry: ``fields`` (e.g. epoch, episode), the frames of ``mask``,
    success, queries, MAP (grey levels, successes only) and what the perturber noted
    (FGSM steps, the L∞ radius reached, its own notes)."""
    return {**fields, "frames": mask.nonzero().flatten().tolist(), "success": res.success,
            "queries": res.queries, "map": episode_map(res, x),
            "iterations": res.iterations, "eps_final": res.eps_final, **res.log}


def episode_map(res: EpisodeResult, x: Tensor) -> float | None:
    """MAP (grey levels) of a successful episode's video, ``None`` when it failed."""
    return mean_absolute_perturbation(res.x_adv, x) if res.success else None


class EpisodeChoice:
    """Which episode a sparse-perturber method returns (``docs/attacks.md``).

    :meth:`offer` each episode in order. The returned video is the successful episode's
    with the smallest MAP (the earliest on ties); when none succeeded, the clean video,
    and as the outcome's ``fallback`` (the mean reading of success) the failed episode's
    video that still meets the goal (targeted: holds the target beyond ε) with the
    smallest MAP, if any. ``x``: the clean video, float32 ``(T, 3, H, W)``.
    """

    def __init__(self, x: Tensor):
        self.x = x
        self.best: tuple[float, int, EpisodeResult, Tensor] | None = None
        self.fallback: tuple[float, Tensor, Tensor] | None = None

    def offer(self, idx: int, res: EpisodeResult, mask: Tensor) -> None:
        """Episode ``idx``'s result ``res`` on ``mask`` (bool ``(T,)``)."""
        if res.success:
            m = episode_map(res, self.x)
            if self.best is None or m < self.best[0]:
                self.best = (m, idx, res, mask)
        elif res.meets_goal:
            m = mean_absolute_perturbation(res.x_adv, self.x)
            if self.fallback is None or m < self.fallback[0]:
                self.fallback = (m, res.x_adv, mask)

    def outcome(self, oracle: Oracle, clean_label: int, episodes: list[dict], epochs: list[dict]) -> AttackOutcome:
        """The outcome: the best success, else the clean video (with the fallback, whose
        mask is then the outcome's)."""
        x = self.x
        if self.best is None:
            mask, fallback = no_frames(x.shape[0]), None
            if self.fallback is not None:
                _, fallback, mask = self.fallback
            return AttackOutcome(x.clone(), False, mask, oracle.used, oracle.used_by_phase, None, None,
                                 clean_label, episodes, epochs, fallback=fallback)
        _, idx, res, mask = self.best
        return AttackOutcome(res.x_adv, True, mask, oracle.used, oracle.used_by_phase, idx, res.queries,
                             clean_label, episodes, epochs)
