"""SVA (Algorithm 1): an RL agent picks key frames, the sparse attack perturbs them,
and the attack's feedback trains the agent — plus the dense "No RL" baseline.

Per video: one counted first look at the clean video, then epochs of ``N`` episodes.
Each episode samples a mask from the agent, runs the sparse attack on it (its own query
cap), scores it with Eq. 9 and, after the ``N`` episodes, REINFORCE updates the agent.
The returned video is the successful episode's video with the smallest MAP (ties: the
earlier). Queries: ``Q`` counts everything, in every phase and episode; the record also
keeps the queries of the episode that produced the returned video.
See docs/attacks.md for every choice the paper leaves open.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from sva.attacks.rl.agent import FrameAgent, Reinforce, sample_actions
from sva.attacks.fgsm import EpisodeResult, SparseFGSM, TargetedSparseFGSM
from sva.attacks.targeted_start import targeted_start_steps
from sva.blackbox.lockstep import Ask, run_alone, run_lockstep
from sva.evaluation.metrics import mean_absolute_perturbation
from sva.blackbox.oracle import Answer, Oracle
from sva.attacks.rl.rewards import RewardWeights, attack_reward


@dataclass
class AttackOutcome:
    """The result of attacking one video (what the record is built from).

    ``x_adv``: float32 ``(T, 3, H, W)`` — the returned video (the clean video when no
    episode succeeded). ``mask``: bool ``(T,)`` of the returned episode.
    """

    x_adv: Tensor
    success: bool
    mask: Tensor
    queries: int
    queries_by_phase: dict[str, int]
    best_episode: int | None
    best_episode_queries: int | None
    clean_label: int
    episodes: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    wall_seconds: float = 0.0


@dataclass(frozen=True)
class SVASettings:
    """Algorithm 1's knobs (defaults: the paper's)."""

    epochs: int = 20
    episodes: int = 5
    lr: float = 1e-5
    hidden: int = 128
    rewards: RewardWeights = RewardWeights()
    #: per-episode query cap; None = whatever the video's budget has left
    episode_queries: int | None = None


def _first_look(oracle: Oracle, x: Tensor) -> int:
    with oracle.phase("init"):
        return int(oracle.query(x).labels[0])


def _child_seed(generator: torch.Generator) -> int:
    """A seed for a child generator, drawn from ``generator`` (deterministic)."""
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))


def _child(seed: int, device: torch.device | str) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _episode_extras(res: EpisodeResult) -> dict:
    """What an episode log records beyond success/queries/MAP: FGSM steps, the L∞ radius
    reached (targeted: where ε-shrinking stopped) and the attack's own notes (e.g. the
    targeted step sizes it ended with)."""
    return {"iterations": res.iterations, "eps_final": res.eps_final, **res.log}


class _Episodes:
    """Builds one attack episode (untargeted, or targeted with its start) on a mask."""

    def __init__(self, x, label, target, untargeted: SparseFGSM, targeted: TargetedSparseFGSM,
                 candidates: Tensor | None):
        self.x, self.label, self.target = x, label, target
        self.untargeted, self.targeted, self.candidates = untargeted, targeted, candidates

    @property
    def step_cost(self) -> int:
        est = self.untargeted.estimator if self.target is None else self.targeted.estimator
        return est.queries_per_estimate + (1 if self.target is None else 2)

    def __call__(self, mask: Tensor, cap: int, generator: torch.Generator) -> Generator[Ask, Answer, EpisodeResult]:
        if self.target is None:
            return (yield from self.untargeted.episode(self.x, self.label, mask, generator, cap))
        x_init, spent = yield from targeted_start_steps(self.x, mask, self.target, self.candidates)
        if x_init is None:
            return EpisodeResult(self.x.clone(), False, spent, self.label, 0, 1.0, "", {"init": "failed"})
        res = yield from self.targeted.episode(self.x, x_init, self.target, mask, generator, max(cap - spent, 0))
        res.queries += spent
        return res


class SVA:
    """Sparse video attack with an RL frame-selection agent (Algorithm 1).

    The ``N`` episodes of an epoch share the same policy ``p``, so they are independent
    given it: they run side by side (:func:`sva.blackbox.lockstep.run_lockstep`), their queries
    merged into full oracle batches. Each episode has its own noise generator, seeded
    from the video's generator, and its own query count and cap; when the video's
    budget cannot cover every episode's next step, lower-index episodes go first.
    """

    def __init__(self, untargeted: SparseFGSM, targeted: TargetedSparseFGSM, settings: SVASettings = SVASettings(),
                 *, q_full: int = 30000, q_half: int = 15000):
        self.untargeted, self.targeted, self.settings = untargeted, targeted, settings
        self.q_full, self.q_half = q_full, q_half

    def attack(self, oracle: Oracle, x: Tensor, label: int, features: Tensor, generator: torch.Generator, *,
               agent_seed: int, target: int | None = None, candidates: Tensor | None = None) -> AttackOutcome:
        """Attack ``x`` (float32 ``(T,3,H,W)``) of class ``label``; ``features`` ``(T, 512)``.

        ``generator`` (on ``x``'s device) seeds everything random: the mask sampler
        (a CPU generator) and one noise generator per episode.
        """
        t0 = time.time()
        s = self.settings
        clean_label = _first_look(oracle, x)
        agent = FrameAgent(features.shape[1], s.hidden, seed=agent_seed)
        learner = Reinforce(agent, lr=s.lr)
        make = _Episodes(x, label, target, self.untargeted, self.targeted, candidates)
        mask_gen = _child(_child_seed(generator), "cpu")
        feats = features.float().cpu()
        best: tuple[float, int, EpisodeResult, Tensor] | None = None
        episodes: list[dict] = []
        epochs: list[dict] = []
        for epoch in range(s.epochs):
            cap = oracle.remaining if s.episode_queries is None else min(s.episode_queries, oracle.remaining)
            if cap < make.step_cost:
                break
            with torch.no_grad():
                p = agent(feats)
            masks = [sample_actions(p, mask_gen) for _ in range(s.episodes)]
            gens = [_child(_child_seed(generator), x.device) for _ in masks]
            results = run_lockstep(oracle, [make(m, cap, g) for m, g in zip(masks, gens)])
            batch = []
            for mask, res in zip(masks, results):
                if res.queries == 0:  # the budget ran out before this episode could start
                    continue
                map255 = mean_absolute_perturbation(res.x_adv, x) if res.success else None
                r_att = attack_reward((map255 or 0.0) / 255.0, res.queries, res.success,
                                      q_full=self.q_full, q_half=self.q_half)
                reward = s.rewards(feats, mask, r_att)
                idx = len(episodes)
                episodes.append({"epoch": epoch, "episode": idx, "frames": mask.nonzero().flatten().tolist(),
                                 "success": res.success, "queries": res.queries, "map": map255,
                                 "r_attack": r_att, "reward": reward, **_episode_extras(res)})
                batch.append((mask, reward))
                if res.success and (best is None or map255 < best[0]):
                    best = (map255, idx, res, mask)
            if not batch:
                break
            stats = learner.update(feats, batch)
            epochs.append({"epoch": epoch, **stats, "episodes": len(batch)})
            if len(batch) < s.episodes:
                break
        return self._outcome(oracle, x, clean_label, best, episodes, epochs, t0)

    @staticmethod
    def _outcome(oracle, x, clean_label, best, episodes, epochs, t0) -> AttackOutcome:
        if best is None:
            mask = torch.zeros(x.shape[0], dtype=torch.bool)
            return AttackOutcome(x.clone(), False, mask, oracle.used, oracle.used_by_phase, None, None,
                                 clean_label, episodes, epochs, time.time() - t0)
        _, idx, res, mask = best
        return AttackOutcome(res.x_adv, True, mask, oracle.used, oracle.used_by_phase, idx, res.queries,
                             clean_label, episodes, epochs, time.time() - t0)


class DenseAttack:
    """The "No RL" baseline (Table 5): the same FGSM+NES attack on every frame, one
    episode with the whole budget."""

    def __init__(self, untargeted: SparseFGSM, targeted: TargetedSparseFGSM):
        self.untargeted, self.targeted = untargeted, targeted

    def attack(self, oracle: Oracle, x: Tensor, label: int, features: Tensor | None, generator: torch.Generator, *,
               agent_seed: int = 0, target: int | None = None, candidates: Tensor | None = None) -> AttackOutcome:
        t0 = time.time()
        clean_label = _first_look(oracle, x)
        mask = torch.ones(x.shape[0], dtype=torch.bool)
        make = _Episodes(x, label, target, self.untargeted, self.targeted, candidates)
        res = run_alone(oracle, make(mask, oracle.remaining, generator))
        map255 = mean_absolute_perturbation(res.x_adv, x) if res.success else None
        episode = {"epoch": 0, "episode": 0, "frames": list(range(x.shape[0])), "success": res.success,
                   "queries": res.queries, "map": map255, **_episode_extras(res)}
        best = (map255, 0, res, mask) if res.success else None
        return SVA._outcome(oracle, x, clean_label, best, [episode], [], t0)
