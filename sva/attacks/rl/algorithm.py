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

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field

from sva.attacks.base import Attack, AttackOutcome, AttackTask, first_look, register_attack
from sva.attacks.perturber import EpisodeChoice, SparsePerturber, episode_log, episode_map, min_budget
from sva.attacks.rl.agent import FrameAgent, Reinforce, sample_actions
from sva.attacks.rl.rewards import RewardWeights, attack_reward
from sva.blackbox.lockstep import run_lockstep
from sva.blackbox.oracle import Oracle
from sva.utils.settings import PositiveFloat, PositiveInt, StrictModel


class SVAModeCfg(StrictModel):
    """SVA's per-mode settings (``attacks.sva.untargeted`` / ``attacks.sva.targeted``)."""

    episode_queries: PositiveInt | None = Field(
        None, description="query cap of one episode; null = whatever the video's budget has left")


class SVACfg(StrictModel):
    """Algorithm 1 (§3.2): epochs of N episodes, REINFORCE with Adam (``attacks.sva``)."""

    epochs: PositiveInt = Field(20, description="policy updates per video")
    episodes: PositiveInt = Field(5, description="N: episodes (sampled masks) per epoch")
    lr: PositiveFloat = Field(1e-5, description="Adam learning rate of the agent")
    hidden: PositiveInt = Field(128, description="hidden units of the agent's Bi-LSTM")
    gamma1: Annotated[float, Field(ge=0)] = Field(2.0, description="weight γ1 of R_rep in Eq. 9")
    gamma2: Annotated[float, Field(ge=0)] = Field(3.0, description="weight γ2 of R_attack in Eq. 9")
    rewards: Literal["full", "attack", "attack+rep"] = Field("full", description="Eq. 9 terms (Table 5 ablation)")
    untargeted: SVAModeCfg = SVAModeCfg()
    targeted: SVAModeCfg = SVAModeCfg()


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


def _child_seed(generator: torch.Generator) -> int:
    """A seed for a child generator, drawn from ``generator`` (deterministic)."""
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))


def _child(seed: int, device: torch.device | str) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


@register_attack
class SVA(Attack):
    """Sparse video attack: an RL agent picks key frames, sparse FGSM/NES perturbs them (Algorithm 1).

    The ``N`` episodes of an epoch share the same policy ``p``, so they are independent
    given it: they run side by side (:func:`sva.blackbox.lockstep.run_lockstep`), their
    queries merged into full oracle batches. Each episode has its own noise generator,
    seeded from the video's generator, and its own query count and cap; when the video's
    budget cannot cover every episode's next step, lower-index episodes go first.
    """

    name = "sva"
    runs_full_schedule = True  # every epoch of episodes, success or not: its jobs start first
    oracle_mode = "score"
    Settings = SVACfg

    def __init__(self, context, settings: SVACfg | None = None):
        super().__init__(context, settings)
        s = self.settings
        cap = getattr(s, context.mode).episode_queries
        if context.budget_scope == "episode":
            cap = context.budget
        self.sva = SVASettings(epochs=s.epochs, episodes=s.episodes, lr=s.lr, hidden=s.hidden,
                               rewards=RewardWeights.preset(s.rewards, gamma1=s.gamma1, gamma2=s.gamma2),
                               episode_queries=cap)
        # R_attack's thresholds (Eq. 8: 15000 / 30000 of a 30000 budget) scale with the
        # budget an episode may use
        self.q_full = cap if cap is not None else context.budget
        self.q_half = self.q_full // 2
        self.perturber = SparsePerturber(context)

    @classmethod
    def settings_problems(cls, settings: SVACfg, mode_cfgs: dict) -> list[str]:
        problems = []
        for mode, mode_cfg in mode_cfgs.items():
            cap = getattr(settings, mode).episode_queries
            need = min_budget(mode, mode_cfg) - 1
            if cap is not None and cap < need:
                problems.append(f"sva.{mode}.episode_queries: {cap} queries cannot finish one attack step; "
                                f"the smallest workable episode cap is {need}")
        return problems

    def oracle_budget(self) -> int:
        if self.context.budget_scope == "episode":
            # every episode may spend the whole budget, plus the first look and a start
            start = self.context.mode_cfg.init_candidates if self.context.targeted else 0
            return self.context.budget * self.sva.epochs * self.sva.episodes + 1 + start
        return self.context.budget

    def run(self, oracle: Oracle, task: AttackTask) -> AttackOutcome:
        """Attack ``task.x`` (float32 ``(T,3,H,W)``); the agent reads ``task.features``
        ``(T, D)``. The task's ``attack`` stream seeds the mask sampler (a CPU
        generator) and one noise generator per episode; its ``agent`` seed initialises
        the agent."""
        if task.features is None:
            raise ValueError("SVA needs per-frame features (task.features)")
        s = self.sva
        x = task.x
        generator = task.generator("attack")
        clean_label = first_look(oracle, x)
        agent = FrameAgent(task.features.shape[1], s.hidden, seed=task.derive_seed("agent") % (2**31))
        learner = Reinforce(agent, lr=s.lr)
        mask_gen = _child(_child_seed(generator), "cpu")
        feats = task.features.float().cpu()
        choice = EpisodeChoice(x)
        episodes: list[dict] = []
        epochs: list[dict] = []
        for epoch in range(s.epochs):
            cap = oracle.remaining if s.episode_queries is None else min(s.episode_queries, oracle.remaining)
            if cap < self.perturber.step_cost:
                break
            with torch.no_grad():
                p = agent(feats)
            masks = [sample_actions(p, mask_gen) for _ in range(s.episodes)]
            gens = [_child(_child_seed(generator), x.device) for _ in masks]
            results = run_lockstep(oracle, [self.perturber.episode(x, task.label, task.target, task.candidates, m,
                                                                   cap, g) for m, g in zip(masks, gens)])
            batch = []
            for mask, res in zip(masks, results):
                if res.queries == 0:  # the budget ran out before this episode could start
                    continue
                map255 = episode_map(res, x)
                r_att = attack_reward((map255 or 0.0) / 255.0, res.queries, res.success,
                                      q_full=self.q_full, q_half=self.q_half)
                reward = s.rewards(feats, mask, r_att)
                idx = len(episodes)
                episodes.append(episode_log(res, x, mask, epoch=epoch, episode=idx, r_attack=r_att, reward=reward))
                batch.append((mask, reward))
                choice.offer(idx, res, mask)
            if not batch:
                break
            stats = learner.update(feats, batch)
            epochs.append({"epoch": epoch, **stats, "episodes": len(batch)})
            if len(batch) < s.episodes:
                break
        return choice.outcome(oracle, clean_label, episodes, epochs)
