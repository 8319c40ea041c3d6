"""The agent's rewards (paper Eq. 5-9), as pure functions; see ``docs/agent.md``.

All inputs are CPU or device tensors / Python numbers; all outputs are Python floats
(rewards are constants for the policy gradient: they never carry autograd history).

* :func:`representativeness` -- Eq. 5, ``exp(-mean_t min_{t' in K} ||v_t - v_t'||_2)``.
* :func:`diversity` -- Eq. 6-7, mean pairwise cosine dissimilarity inside ``K``.
* :func:`attack_reward` -- Eq. 8, from the episode's MAP (in [0, 1] pixel units),
  queries and success.
* :func:`total_reward` / :class:`RewardWeights` -- Eq. 9 and the Table 5 ablations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "RewardWeights",
    "attack_reward",
    "diversity",
    "representativeness",
    "total_reward",
]


def _check(features: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    if features.dim() != 2:
        raise ValueError(f"features must be (T, D), got {tuple(features.shape)}")
    if mask.dtype != torch.bool or mask.shape != (features.shape[0],):
        raise ValueError(f"mask must be bool ({features.shape[0]},), got {mask.dtype} {tuple(mask.shape)}")
    return features.detach().to(torch.float64), mask.to(features.device)


def representativeness(features: Tensor, mask: Tensor) -> float:
    """R_rep (Eq. 5): ``exp(-(1/T) sum_t min_{t' in K} ||v_t - v_t'||_2)``.

    ``features``: ``(T, D)`` per-frame features (any float dtype; computed in float64),
    ``mask``: bool ``(T,)``, ``K`` = selected frames. Euclidean (not squared) distances,
    as in the paper; the mean runs over all ``T`` frames, selected ones contributing 0.
    In (0, 1]; 1 when every frame is selected. Empty ``K``: 0.0 (the limit of the
    formula -- the minimum over an empty set is +inf -- "nothing represents the video").
    """
    v, m = _check(features, mask)
    if not bool(m.any()):
        return 0.0
    d = torch.cdist(v, v[m], compute_mode="donot_use_mm_for_euclid_dist")  # (T, |K|), exact
    return float(torch.exp(-d.min(dim=1).values.mean()))


def diversity(features: Tensor, mask: Tensor, *, eps: float = 1e-12) -> float:
    """R_div (Eq. 6-7): mean over ordered pairs ``t != t'`` in ``K`` of ``1 - cos(v_t, v_t')``.

    ``features``: ``(T, D)``, ``mask``: bool ``(T,)``. In [0, 2] (0 for identical
    directions, 1 for orthogonal). ``|K| <= 1``: 0.0 (no pair; the formula is 0/0).
    A zero feature vector has cosine 0 with everything (dissimilarity 1), by ``eps``.
    """
    v, m = _check(features, mask)
    k = int(m.sum())
    if k <= 1:
        return 0.0
    s = v[m]
    s = s / s.norm(dim=1, keepdim=True).clamp_min(eps)
    cos = s @ s.T
    off_diag = cos.sum() - cos.diagonal().sum()
    return float(1.0 - off_diag / (k * (k - 1)))


def attack_reward(
    map_value: float,
    queries: int,
    success: bool,
    *,
    q_full: int = 30000,
    q_half: int = 15000,
    penalty: float = 0.999,
    scale: float = 0.05,
) -> float:
    """R_attack (Eq. 8) for one episode.

    ``map_value``: the episode's mean absolute perturbation ``mean|x_adv - x|`` in
    **[0, 1] pixel units** (the records' MAP is this times 255): Eq. 8's normaliser
    0.05 is the L_inf bound in [0, 1] units, so ``P`` must be in those units too; a
    value above 1 cannot be a [0, 1]-scale MAP and raises ``ValueError``.
    ``queries``: the episode's queries (Algorithm 2's ``Q``).

    * failed episode (``success`` false): -1, like ``Q > q_full`` (no adversarial
      video was found, so its MAP means nothing; same as "attack unavailable");
    * ``Q > q_full``: -1;
    * ``q_half < Q <= q_full``: ``penalty * exp(-P / scale)`` (the paper leaves
      ``Q == q_full`` undefined; a run that used exactly the budget is within it);
    * ``Q <= q_half``: ``exp(-P / scale)``.
    """
    map_value = float(map_value)
    if not 0.0 <= map_value <= 1.0:  # also rejects NaN
        raise ValueError(
            f"map_value must be the mean absolute perturbation in [0, 1] pixel units, got {map_value!r} "
            "(a 0-255 MAP must be divided by 255)"
        )
    if queries < 0:
        raise ValueError(f"queries must be >= 0, got {queries!r}")
    if not 0 <= q_half <= q_full:
        raise ValueError(f"need 0 <= q_half <= q_full, got q_half={q_half}, q_full={q_full}")
    if not success or queries > q_full:
        return -1.0
    r = math.exp(-map_value / scale)
    return r if queries <= q_half else penalty * r


def total_reward(r_div: float, r_rep: float, r_attack: float, gamma1: float = 2.0, gamma2: float = 3.0) -> float:
    """R (Eq. 9) ``= r_div + gamma1 * r_rep + gamma2 * r_attack`` (paper: gamma1=2, gamma2=3)."""
    return float(r_div) + gamma1 * float(r_rep) + gamma2 * float(r_attack)


@dataclass(frozen=True)
class RewardWeights:
    """Eq. 9 with switches for the Table 5 ablations.

    ``RewardWeights()`` is the full SVA reward; :meth:`preset` gives ``"attack"``
    (R_attack only), ``"attack+rep"`` (R_attack + R_rep) and ``"full"``. A dropped term
    contributes exactly 0; the gammas of the kept terms are unchanged.
    """

    gamma1: float = 2.0
    gamma2: float = 3.0
    use_div: bool = True
    use_rep: bool = True
    use_attack: bool = True

    PRESETS = ("attack", "attack+rep", "full")

    @classmethod
    def preset(cls, name: str, *, gamma1: float = 2.0, gamma2: float = 3.0) -> RewardWeights:
        flags = {
            "attack": (False, False, True),
            "attack+rep": (False, True, True),
            "full": (True, True, True),
        }
        if name not in flags:
            raise ValueError(f"unknown reward preset {name!r}; known: {', '.join(cls.PRESETS)}")
        div, rep, att = flags[name]
        return cls(gamma1=gamma1, gamma2=gamma2, use_div=div, use_rep=rep, use_attack=att)

    def total(self, r_div: float, r_rep: float, r_attack: float) -> float:
        """Eq. 9 restricted to the enabled terms."""
        return total_reward(
            r_div if self.use_div else 0.0,
            r_rep if self.use_rep else 0.0,
            r_attack if self.use_attack else 0.0,
            self.gamma1,
            self.gamma2,
        )

    def __call__(self, features: Tensor, mask: Tensor, r_attack: float) -> float:
        """The episode reward from the features, the episode's mask and its R_attack
        (skips computing the disabled intrinsic terms)."""
        r_div = diversity(features, mask) if self.use_div else 0.0
        r_rep = representativeness(features, mask) if self.use_rep else 0.0
        return self.total(r_div, r_rep, r_attack)
