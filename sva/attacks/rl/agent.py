"""The frame-selection agent of Algorithm 1 (paper §3.2) and its REINFORCE update.

``FrameAgent``: per-frame features ``(T, 512)`` -> BiLSTM (128 hidden each way) ->
FC(256 -> 1) -> sigmoid -> ``p`` ``(T,)`` (Eq. 3). Frames are selected by Bernoulli
sampling (Eq. 4) *conditioned on selecting at least one frame*: an empty mask would
attack nothing. :func:`sample_actions` draws exactly from that distribution and
:func:`action_log_prob` is its exact log-probability,

    log pi(a) = sum_t [a_t log p_t + (1 - a_t) log(1 - p_t)] - log(1 - prod_t (1 - p_t)),

the per-frame sum of Eq. 10/11 plus the normaliser of the conditioning (negligible
unless every ``p_t`` is small, and then it is what keeps the gradient unbiased).

``Reinforce``: Adam on ``loss = -(1/N) sum_n (R_n - b) log pi(a_n)`` (Eq. 11) with a
moving-average baseline ``b``. The reward is a constant (a float per episode): it
weights the log-probability, so the attack's feedback really trains the agent.
See ``docs/agent.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sva.blackbox.oracle import log_one_minus

__all__ = ["FEATURE_DIM", "FrameAgent", "Reinforce", "action_log_prob", "sample_actions"]

FEATURE_DIM = 512
_P_EPS = 1e-12  # p is clamped to [eps, 1 - eps] inside log-probs (float64): no inf/nan


def sample_actions(p: Tensor, generator: torch.Generator) -> Tensor:
    """Draw a non-empty frame mask from ``Bernoulli(p)`` conditioned on ``sum(a) >= 1``.

    ``p``: ``(T,)`` probabilities (any float dtype/device; not differentiated).
    ``generator``: a CPU ``torch.Generator`` (all randomness; sampling runs on CPU).
    Returns a CPU bool ``(T,)`` with at least one ``True``.

    Exact, loop-free: draw ``a ~ Bernoulli(p)``; if it is empty (probability
    ``prod(1 - p)``), draw instead the first selected frame ``k`` with probability
    ``p_k prod_{j<k}(1 - p_j) / (1 - prod_j (1 - p_j))`` and frames after ``k``
    independently. Returning a non-empty first draw as is gives every non-empty mask
    probability ``P(a) / (1 - P(empty))`` -- the conditional distribution, so
    :func:`action_log_prob` is its exact log-probability. If every ``p_t`` is 0 the
    first frame is uniform.
    """
    if p.dim() != 1 or p.numel() == 0:
        raise ValueError(f"p must be (T,) with T >= 1, got {tuple(p.shape)}")
    q = p.detach().to("cpu", torch.float64).clamp(0.0, 1.0)
    u = torch.rand(q.shape, generator=generator, dtype=torch.float64)
    a = u < q
    if bool(a.any()):
        return a
    # log w_k = log p_k + sum_{j<k} log(1 - p_j); first selected frame ~ softmax(log w)
    log1m = torch.log1p(-q.clamp(max=1.0 - _P_EPS))
    log_w = torch.log(q) + torch.cumsum(log1m, 0) - log1m
    if bool(torch.isneginf(log_w).all()):
        log_w = torch.zeros_like(log_w)
    k = int(torch.multinomial(torch.softmax(log_w, 0), 1, generator=generator))
    u = torch.rand(q.shape, generator=generator, dtype=torch.float64)
    a = u < q
    a[:k] = False
    a[k] = True
    return a


def action_log_prob(p: Tensor, actions: Tensor) -> Tensor:
    """Exact log-probability of ``actions`` under :func:`sample_actions`' policy.

    ``p``: ``(T,)`` (differentiable, e.g. the agent's output), ``actions``: bool
    ``(T,)`` or ``(N, T)`` (N episodes sharing ``p``). Returns float64: a scalar for
    ``(T,)``, ``(N,)`` for ``(N, T)``. Formula in the module docstring; ``p`` is clamped
    to ``[1e-12, 1 - 1e-12]`` so saturated probabilities give finite values and no
    nan gradients. An empty action has probability 0 under this policy: ``ValueError``.
    """
    if p.dim() != 1:
        raise ValueError(f"p must be (T,), got {tuple(p.shape)}")
    if actions.shape[-1:] != p.shape or actions.dim() > 2:
        raise ValueError(f"actions must be (T,) or (N, T) with T={p.shape[0]}, got {tuple(actions.shape)}")
    a = actions.to(device=p.device, dtype=torch.bool)
    if not bool(a.any(dim=-1).all()):
        raise ValueError("an empty action (no frame selected) has probability 0 under the agent's policy")
    q = p.to(torch.float64).clamp(_P_EPS, 1.0 - _P_EPS)
    log_p, log_1mp = torch.log(q), torch.log1p(-q)
    per_frame = torch.where(a, log_p, log_1mp).sum(dim=-1)
    log_nonempty = log_one_minus(log_1mp.sum())  # log(1 - prod(1 - p))
    return per_frame - log_nonempty


class FrameAgent(nn.Module):
    """BiLSTM frame scorer: features ``(T, D)`` -> selection probabilities ``p`` ``(T,)``.

    ``input_dim`` (512: ResNet18 features), ``hidden`` per direction (128, paper §3.2).
    Weights are initialised from ``seed`` with PyTorch's default distributions
    (uniform ``+-1/sqrt(hidden)`` for the LSTM, ``+-1/sqrt(fan_in)`` for the FC) drawn
    from a private generator: same seed, same agent; the global RNG is untouched.
    """

    def __init__(self, input_dim: int = FEATURE_DIM, hidden: int = 128, *, seed: int = 0):
        super().__init__()
        self.input_dim, self.hidden = int(input_dim), int(hidden)
        with torch.random.fork_rng(devices=[]):  # the default init would consume the global RNG
            self.lstm = nn.LSTM(self.input_dim, self.hidden, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(2 * self.hidden, 1)
        self.reset_parameters(seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        gen = torch.Generator().manual_seed(int(seed))
        k = 1.0 / math.sqrt(self.hidden)
        for w in self.lstm.parameters():
            w.uniform_(-k, k, generator=gen)
        k = 1.0 / math.sqrt(self.fc.in_features)
        self.fc.weight.uniform_(-k, k, generator=gen)
        self.fc.bias.uniform_(-k, k, generator=gen)

    def logits(self, features: Tensor) -> Tensor:
        """Pre-sigmoid scores ``W h_t``: ``(T, D) -> (T,)`` or ``(B, T, D) -> (B, T)``."""
        if features.dim() not in (2, 3) or features.shape[-1] != self.input_dim:
            d = self.input_dim
            raise ValueError(f"features must be (T, {d}) or (B, T, {d}), got {tuple(features.shape)}")
        single = features.dim() == 2
        x = features.unsqueeze(0) if single else features
        x = x.to(device=self.fc.weight.device, dtype=self.fc.weight.dtype)
        h, _ = self.lstm(x)  # (B, T, 2 * hidden)
        z = self.fc(h).squeeze(-1)  # (B, T)
        return z.squeeze(0) if single else z

    def forward(self, features: Tensor) -> Tensor:
        """``p_t = sigmoid(W h_t)`` (Eq. 3): float32 ``(T,)`` (or ``(B, T)``) in (0, 1)."""
        return torch.sigmoid(self.logits(features))

    sample = staticmethod(sample_actions)
    log_prob = staticmethod(action_log_prob)


class Reinforce:
    """REINFORCE with a moving-average baseline (Eq. 11) and Adam (lr 1e-5, paper §3.2).

    One :meth:`update` per epoch of Algorithm 1: the ``N`` episodes sampled from the
    current ``p`` and their rewards (floats, constants). Loss
    ``-(1/N) sum_n (R_n - b) log pi(a_n)`` (exact ``log pi``, :func:`action_log_prob`),
    one Adam step (gradient ascent on J).

    Baseline: ``b`` is the moving average of the per-epoch mean rewards seen *before*
    this update; the first update (no history) uses this epoch's mean reward. After
    the step: ``b <- mean(R)`` on the first epoch, else
    ``b <- momentum * b + (1 - momentum) * mean(R)`` (momentum 0.9).
    """

    def __init__(
        self,
        agent: FrameAgent,
        *,
        lr: float = 1e-5,
        baseline_momentum: float = 0.9,
        max_grad_norm: float | None = None,
    ):
        if not 0.0 <= baseline_momentum < 1.0:
            raise ValueError(f"baseline_momentum must be in [0, 1), got {baseline_momentum!r}")
        self.agent = agent
        self.optimizer = torch.optim.Adam(agent.parameters(), lr=lr)
        self.baseline_momentum = float(baseline_momentum)
        self.max_grad_norm = max_grad_norm
        self.baseline: float | None = None
        self.updates = 0

    def update(self, features: Tensor, episodes: Sequence[tuple[Tensor, float]],
               extra_loss: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
        """One policy-gradient step from ``episodes = [(actions bool (T,), reward), ...]``.

        ``features``: ``(T, D)``, the same the actions were sampled from (p is
        recomputed with gradients; the agent has not changed since sampling).
        ``extra_loss``: a differentiable term of ``p`` ``(T,)`` added to the loss (SVAL's
        L_percentage, Eq. 14), or ``None``.
        Returns floats: ``loss``, ``baseline`` (the one used), ``baseline_next``,
        ``reward_mean``, ``p_mean``, ``frames_mean`` (selected frames per episode),
        ``grad_norm`` (before clipping), and ``extra_loss`` when one was given.
        """
        if len(episodes) == 0:
            raise ValueError("update needs at least one episode")
        actions = torch.stack([torch.as_tensor(a, dtype=torch.bool) for a, _ in episodes])  # (N, T)
        rewards = torch.tensor([float(r) for _, r in episodes], dtype=torch.float64)
        if not bool(torch.isfinite(rewards).all()):
            raise ValueError(f"rewards must be finite, got {rewards.tolist()}")
        reward_mean = float(rewards.mean())
        b = reward_mean if self.baseline is None else self.baseline

        self.agent.train()
        p = self.agent(features)
        logp = action_log_prob(p, actions)  # (N,) float64
        advantage = (rewards - b).to(logp.device)
        loss = -(advantage * logp).mean()
        extra = None
        if extra_loss is not None:
            extra = extra_loss(p)
            loss = loss + extra.to(loss.dtype)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [q for q in self.agent.parameters() if q.grad is not None]
        if self.max_grad_norm is not None:
            grad_norm = float(nn.utils.clip_grad_norm_(params, self.max_grad_norm))
        else:
            grad_norm = float(torch.linalg.vector_norm(torch.stack([q.grad.norm() for q in params])))
        self.optimizer.step()

        m = self.baseline_momentum
        self.baseline = reward_mean if self.baseline is None else m * self.baseline + (1 - m) * reward_mean
        self.updates += 1
        return {
            "loss": float(loss.detach()),
            "baseline": float(b),
            "baseline_next": float(self.baseline),
            "reward_mean": reward_mean,
            "p_mean": float(p.detach().mean()),
            "frames_mean": float(actions.sum(dim=1).double().mean()),
            "grad_norm": grad_norm,
            **({} if extra is None else {"extra_loss": float(extra.detach())}),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"]
        self.updates = int(state["updates"])
