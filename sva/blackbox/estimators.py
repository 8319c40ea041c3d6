"""Black-box gradient estimators for the attack step (paper §3.1; ``docs/estimators.md``).

One interface, :class:`GradientEstimator`: given the oracle, the current video ``x``
``(T, 3, H, W)``, the agent's frame mask ``(T,)`` and an objective mapping an
:class:`~sva.blackbox.oracle.Answer` to float64 scores to *maximise*, return an
:class:`Estimate` of the objective's gradient w.r.t. ``x`` -- zero on unmasked frames.
Estimators query the oracle and nothing else. :func:`build_estimator` makes one by name.

Objectives (:func:`untargeted_objective`, :func:`targeted_objective`) use only what
the threat model gives: the top-1 label and its log-probability. Both are
``+g(p)`` when the top-1 label is the attacker's goal and ``-g(p)`` otherwise, with
``g(p) = -log(1 - p) >= 0`` (computed stably from ``log p``): every success scores
above every failure, and ``g`` resolves probabilities saturated at 1.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from sva.blackbox.lockstep import Ask, run_alone
from sva.blackbox.oracle import Answer, BudgetExhausted, Oracle, log_one_minus

__all__ = [
    "ESTIMATORS",
    "NES",
    "Estimate",
    "GradientEstimator",
    "Objective",
    "SignOPT",
    "ZOSignSGD",
    "build_estimator",
    "register_estimator",
    "sign_opt_gradient",
    "targeted_objective",
    "untargeted_objective",
]

#: Answer -> float64 ``(B,)`` scores to maximise, one per answered video.
Objective = Callable[[Answer], Tensor]


# ---------------------------------------------------------------------- objectives
def _signed_g(answer: Answer, good: Tensor) -> Tensor:
    g = -log_one_minus(answer.require_scores())  # -log(1 - p) in [0, -LOG_TINY]
    return torch.where(good, g, -g)


def untargeted_objective(true_label: int) -> Objective:
    """Scores for an untargeted attack on a video of class ``true_label``.

    ``f = log(1 - p)`` while the top-1 label is ``true_label`` (``p`` its probability:
    the log of the probability mass *off* the true class, < 0), and
    ``f = -log(1 - p_top)`` once another class is top-1 (> 0: more confidence in the
    wrong class is better). Monotone in the right direction on both sides and every
    success scores above every failure. Returns float64 ``(B,)``. Needs a score-mode
    answer.
    """
    y = int(true_label)

    def objective(answer: Answer) -> Tensor:
        return _signed_g(answer, answer.labels != y)

    objective.__name__ = f"untargeted_objective({y})"
    return objective


def targeted_objective(target_label: int) -> Objective:
    """Scores for a targeted attack towards ``target_label``.

    ``f = -log(1 - p)`` while the top-1 label is the target (> 0: more confidence in
    the target is better) and ``f = log(1 - p_top)`` otherwise (< 0: push the
    competing top-1 class down). Returns float64 ``(B,)``. Needs a score-mode answer.
    """
    t = int(target_label)

    def objective(answer: Answer) -> Tensor:
        return _signed_g(answer, answer.labels == t)

    objective.__name__ = f"targeted_objective({t})"
    return objective


# ---------------------------------------------------------------------- interface
@dataclass(frozen=True, eq=False)
class Estimate:
    """One gradient estimate.

    ``grad``: float32 ``(T, 3, H, W)`` on ``x``'s device; the estimated gradient of the
    objective (ascent direction), exactly zero on frames outside the mask.
    ``queries``: oracle queries this estimate cost (== number of probes).
    ``answer``: the oracle's answer for every probe, in probe order; the caller MAY
    notice that a probe already reaches the attack goal and keep it (:meth:`probe`),
    that choice is the attack's, not the estimator's. ``values``: float64 ``(n,)``
    objective values of the probes.
    """

    grad: Tensor
    queries: int
    answer: Answer
    values: Tensor
    _probe_fn: Callable[[int], Tensor] | None = field(default=None, repr=False)

    def probe(self, i: int) -> Tensor:
        """A fresh copy of the ``i``-th probe video ``(T, 3, H, W)`` (the exact tensor queried).

        Valid only until the next ``estimate`` call on the same estimator (buffers are
        reused); afterwards it raises ``RuntimeError``.
        """
        if self._probe_fn is None:
            raise RuntimeError("this estimate does not keep its probes")
        return self._probe_fn(i)


class GradientEstimator(abc.ABC):
    """Base class: estimate the gradient of ``objective`` at ``x`` through the oracle.

    A subclass writes :meth:`steps`, the estimate as an *episode* generator
    (:mod:`sva.blackbox.lockstep`): it yields :class:`~sva.blackbox.lockstep.Ask` for the probes it wants
    answered and returns an :class:`Estimate`. That lets the attack run several
    estimates (one per SVA episode) in one batched oracle call; :meth:`estimate` runs
    one directly against an oracle.
    """

    name: str = "?"
    #: one line for ``sva methods``: what the estimate is and what it costs
    summary: str = ""

    @abc.abstractmethod
    def steps(
        self,
        x: Tensor,
        mask: Tensor,
        objective: Objective,
        generator: torch.Generator,
        *,
        phase: str = "nes",
        reserve: int | None = None,
    ) -> Generator[Ask, Answer, Estimate]:
        """Estimate ``d objective / d x`` on the masked frames, as an episode generator.

        ``x``: float32 ``(T, 3, H, W)`` in [0, 1] (any device). ``mask``: bool ``(T,)``,
        at least one frame; probes differ from ``x`` only on masked frames, so every
        queried video is as sparse as the attack. ``objective``: Answer -> float64
        ``(B,)`` to maximise. ``generator``: all randomness (same device as ``x``).
        ``phase``: the oracle phase of the probes. ``reserve``: the reservation of the
        first ask (default: :attr:`queries_per_estimate`; a caller that follows the
        estimate with a check reserves both at once).
        """

    @property
    @abc.abstractmethod
    def queries_per_estimate(self) -> int:
        """Oracle queries one estimate costs (lets callers check the budget first)."""

    def estimate(
        self,
        oracle: Oracle,
        x: Tensor,
        mask: Tensor,
        objective: Objective,
        generator: torch.Generator,
    ) -> Estimate:
        """Run :meth:`steps` against ``oracle`` (probes counted under its current phase).

        Raises :class:`~sva.blackbox.oracle.BudgetExhausted`, with nothing queried and the
        generator untouched, when the oracle cannot answer a whole estimate.
        """
        n = self.queries_per_estimate
        if oracle.remaining < n:  # refuse before drawing noise: generator state unchanged
            raise BudgetExhausted(oracle.used, oracle.budget, n, oracle.current_phase)
        return run_alone(oracle, self.steps(x, mask, objective, generator, phase=oracle.current_phase))

    def spawn(self) -> GradientEstimator:
        """A new estimator with the same settings and its own buffers (one per episode
        when episodes run side by side)."""
        return copy.deepcopy(self)


ESTIMATORS: dict[str, type[GradientEstimator]] = {}


def register_estimator(name: str):
    """Class decorator adding an estimator to :data:`ESTIMATORS` under ``name``."""

    def deco(cls: type[GradientEstimator]) -> type[GradientEstimator]:
        if name in ESTIMATORS:
            raise ValueError(f"estimator {name!r} is already registered")
        cls.name = name
        ESTIMATORS[name] = cls
        return cls

    return deco


def build_estimator(name: str, **kwargs) -> GradientEstimator:
    """An estimator by registry name, e.g. ``build_estimator("nes", population=48, sigma=1e-3)``."""
    try:
        cls = ESTIMATORS[name]
    except KeyError:
        known = ", ".join(sorted(ESTIMATORS)) or "(none)"
        raise ValueError(f"unknown gradient estimator {name!r}; known: {known}") from None
    return cls(**kwargs)


def _ask_values(probes: Tensor, phase: str, reserve: int | None,
                objective: Objective) -> Generator[Ask, Answer, tuple[Answer, Tensor]]:
    """Ask the oracle about all ``probes`` ``(n, T, 3, H, W)`` in one call (reserving
    ``reserve``, default ``n``); returns the answer and the objective's float64 ``(n,)``."""
    n = int(probes.shape[0])
    answer = yield Ask(probes, phase, n if reserve is None else reserve)
    values = objective(answer)
    if values.shape != (n,):
        raise ValueError(f"objective returned shape {tuple(values.shape)}, expected ({n},)")
    return answer, values.to(torch.float64)


def _check_inputs(x: Tensor, mask: Tensor) -> Tensor:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"x must be (T, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be float, got {x.dtype}")
    if mask.dtype != torch.bool or mask.shape != (x.shape[0],):
        raise ValueError(f"mask must be bool ({x.shape[0]},), got {mask.dtype} {tuple(mask.shape)}")
    idx = mask.nonzero().squeeze(1).to(x.device)
    if idx.numel() == 0:
        raise ValueError("mask selects no frame: nothing to estimate (the agent never returns an empty mask)")
    return idx


def _point_and_probes(x: Tensor, idx: Tensor, delta: Tensor) -> Tensor:
    """The current point and its forward probes, for estimators that need ``f(x)``.

    ``x``: float32 ``(T, 3, H, W)``; ``idx``: the masked frame indices ``(k,)``;
    ``delta``: float32 ``(q, k, 3, H, W)``, the probe offsets on those frames (pixel
    units). Returns float32 ``(q + 1, T, 3, H, W)``: row 0 is ``x`` itself, row ``i``
    (1..q) is ``x`` with its masked frames replaced by ``clamp(x[idx] + delta[i-1], 0, 1)``
    and every other frame bit-identical to ``x``.
    """
    probes = x.expand(int(delta.shape[0]) + 1, *x.shape).clone()
    probes[1:].index_copy_(1, idx, (x.index_select(0, idx)[None] + delta).clamp_(0.0, 1.0))
    return probes


def _probe_getter(probes: Tensor) -> Callable[[int], Tensor]:
    """``Estimate.probe`` for an estimator that keeps its own (unshared) probe tensor ``(n, T, 3, H, W)``."""
    n = int(probes.shape[0])

    def probe(i: int) -> Tensor:
        if not -n <= i < n:
            raise IndexError(f"probe index {i} out of range for {n} probes")
        return probes[i].clone()

    return probe


# ---------------------------------------------------------------------- NES
@register_estimator("nes")
class NES(GradientEstimator):
    """Natural Evolution Strategies with antithetic sampling (paper Eq. 2).

    Draws ``h = population / 2`` noise tensors ``d_i ~ N(0, I)`` (float32) on the masked
    frames only, queries the ``population`` probes ``clamp(x + sigma d_i, 0, 1)``
    (probes ``0..h-1``) and ``clamp(x - sigma d_i, 0, 1)`` (probes ``h..n-1``) in one
    oracle call, and returns

        g = 1 / (sigma n) * sum_i d_i [f(x + sigma d_i) - f(x - sigma d_i)]

    i.e. Eq. 2 with ``d_{h+i} = -d_i``. The difference is taken in float64 before the
    float32 weighted sum, so objective differences far below float32 resolution of
    ``f`` itself still give a non-zero gradient.

    Clamping (a choice; the paper does not clamp): probes are valid videos, as the
    oracle requires. It only touches pixels within ``sigma`` of 0 or 1; for them the
    estimate is that of ``f(clamp(.))``, the function the clamped FGSM step moves on.

    Buffers (noise, probes) are reused between calls with the same shapes; an
    :class:`Estimate`'s :meth:`~Estimate.probe` is valid until the next call.
    """

    summary = "NES, antithetic pairs (paper §3.1, Eq. 2): population queries"

    def __init__(self, population: int = 48, sigma: float = 1e-3):
        if int(population) != population or population < 2 or population % 2:
            raise ValueError(f"population must be an even int >= 2, got {population!r}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        self.population = int(population)
        self.sigma = float(sigma)
        self._noise: Tensor | None = None
        self._tmp: Tensor | None = None
        self._probes: Tensor | None = None
        self._generation = 0
        self._filled: tuple[Tensor, Tensor, Tensor] | None = None  # (buffer, mask, unmasked frames)

    @property
    def queries_per_estimate(self) -> int:
        return self.population

    def __repr__(self) -> str:
        return f"NES(population={self.population}, sigma={self.sigma})"

    def _fill_unmasked(self, probes: Tensor, x: Tensor, mask: Tensor) -> None:
        """Make every probe equal ``x`` off the mask. Skipped when the buffer already
        holds exactly these unmasked frames (an FGSM episode never changes them), which
        saves writing ``population`` whole videos per estimate."""
        x_rest = x.index_select(0, (~mask).nonzero().squeeze(1).to(x.device))
        f = self._filled
        if f is not None and f[0] is probes and torch.equal(f[1], mask) and torch.equal(f[2], x_rest):
            return
        probes.copy_(x.expand_as(probes))
        self._filled = (probes, mask.clone(), x_rest)

    def _buffers(self, x: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
        """(noise (h, k, 3, H, W), scratch of the same shape, probes (n, T, 3, H, W)), reused."""
        n, h = self.population, self.population // 2
        noise_shape = (h, k, *x.shape[1:])
        probe_shape = (n, *x.shape)
        nz = self._noise
        if nz is None or nz.shape != noise_shape or nz.device != x.device:
            nz = self._noise = torch.empty(noise_shape, dtype=torch.float32, device=x.device)
            self._tmp = torch.empty_like(nz)
        pr = self._probes
        if pr is None or pr.shape != probe_shape or pr.device != x.device:
            pr = self._probes = torch.empty(probe_shape, dtype=torch.float32, device=x.device)
        return nz, self._tmp, pr

    def spawn(self) -> NES:
        return NES(self.population, self.sigma)

    def steps(
        self,
        x: Tensor,
        mask: Tensor,
        objective: Objective,
        generator: torch.Generator,
        *,
        phase: str = "nes",
        reserve: int | None = None,
    ) -> Generator[Ask, Answer, Estimate]:
        idx = _check_inputs(x, mask)
        x = x.detach().to(torch.float32)
        n, h, sigma = self.population, self.population // 2, self.sigma
        k = int(idx.numel())
        noise, tmp, probes = self._buffers(x, k)
        self._generation += 1
        noise.normal_(generator=generator)

        x_sel = x.index_select(0, idx)  # (k, 3, H, W)
        self._fill_unmasked(probes, x, mask)
        torch.add(x_sel, noise, alpha=sigma, out=tmp).clamp_(0.0, 1.0)  # (h, k, 3, H, W)
        probes[:h].index_copy_(1, idx, tmp)
        torch.sub(x_sel, noise, alpha=sigma, out=tmp).clamp_(0.0, 1.0)
        probes[h:].index_copy_(1, idx, tmp)

        answer, values = yield from _ask_values(probes, phase, reserve, objective)
        diff = (values[:h] - values[h:]) / (sigma * n)  # float64: keeps tiny differences
        w = diff.to(device=x.device, dtype=torch.float32)
        grad = torch.zeros_like(x, dtype=torch.float32)
        g_sel = (w @ noise.view(h, -1)).view(k, *x.shape[1:])
        grad.index_copy_(0, idx, g_sel)

        gen = self._generation

        def probe(i: int, _probes=probes, _gen=gen) -> Tensor:
            if self._generation != _gen or self._probes is not _probes:
                raise RuntimeError("stale Estimate: probes are only kept until the next estimate() call")
            if not -n <= i < n:
                raise IndexError(f"probe index {i} out of range for population {n}")
            return _probes[i].clone()

        return Estimate(grad=grad, queries=n, answer=answer, values=values, _probe_fn=probe)


# ---------------------------------------------------------------------- forward differences
class ForwardDifferences(GradientEstimator):
    """An estimate from the objective at the current point and at ``population`` forward
    probes ``clamp(x + sigma·u_k, 0, 1)`` on the masked frames, asked in one oracle call
    of ``population + 1`` videos (probe 0 is ``x``). A subclass gives the directions
    (:meth:`directions`) and how the values combine into the estimate on the masked
    frames (:meth:`combine`)."""

    def __init__(self, population: int = 48, sigma: float = 1e-3):
        if int(population) != population or population < 1:
            raise ValueError(f"population must be an int >= 1, got {population!r}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        self.population = int(population)
        self.sigma = float(sigma)

    @property
    def queries_per_estimate(self) -> int:
        return self.population + 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}(population={self.population}, sigma={self.sigma})"

    def directions(self, u: Tensor) -> Tensor:
        """The directions from ``u`` float32 ``(K, k, 3, H, W)`` ~ N(0, I) (may work in place)."""
        return u

    @abc.abstractmethod
    def combine(self, values: Tensor, u: Tensor) -> Tensor:
        """The estimate on the masked frames, float32 ``(k, 3, H, W)``, from ``values``
        float64 ``(K + 1,)`` (row 0: the current point) and the directions ``u``."""

    def steps(
        self,
        x: Tensor,
        mask: Tensor,
        objective: Objective,
        generator: torch.Generator,
        *,
        phase: str = "nes",
        reserve: int | None = None,
    ) -> Generator[Ask, Answer, Estimate]:
        idx = _check_inputs(x, mask)
        x = x.detach().to(torch.float32)
        k = int(idx.numel())
        u = torch.randn((self.population, k, *x.shape[1:]), generator=generator, device=x.device,
                        dtype=torch.float32)
        u = self.directions(u)
        probes = _point_and_probes(x, idx, self.sigma * u)
        answer, values = yield from _ask_values(probes, phase, reserve, objective)
        grad = torch.zeros_like(x, dtype=torch.float32)
        grad.index_copy_(0, idx, self.combine(values, u).to(device=x.device, dtype=torch.float32))
        return Estimate(grad=grad, queries=self.population + 1, answer=answer, values=values,
                        _probe_fn=_probe_getter(probes))


# ---------------------------------------------------------------------- ZO-SignSGD
@register_estimator("zo_signsgd")
class ZOSignSGD(ForwardDifferences):
    """The zeroth-order gradient estimate of ZO-signSGD (Liu, Chen, Chen, Hong: "signSGD
    via Zeroth-Order Oracle", ICLR 2019, Eq. 3), whose sign the FGSM step then takes:

        g = d / (mu q) * sum_i [f(x + mu u_i) - f(x)] u_i

    with ``q = population`` directions ``u_i`` drawn uniformly on the unit sphere of the
    ``d`` masked values (a normalised Gaussian, float32), forward differences against
    the current point, and ``mu = sigma``. One estimate asks ``q + 1`` videos in one
    oracle call: the current video (probe 0) and the ``q`` probes
    ``clamp(x + mu u_i, 0, 1)`` (probes 1..q), differing from ``x`` on masked frames
    only. Differences are taken in float64, as in :class:`NES`.
    """

    summary = ("ZO-SignSGD's estimate (Liu et al., ICLR 2019, Eq. 3): forward differences along unit-sphere "
               "directions; population + 1 queries")

    def directions(self, u: Tensor) -> Tensor:
        return u.div_(u.flatten(1).norm(dim=1).view(-1, *([1] * (u.dim() - 1))))  # uniform on the unit sphere

    def combine(self, values: Tensor, u: Tensor) -> Tensor:
        q, d = int(u.shape[0]), u[0].numel()
        w = ((values[1:] - values[0]) * (d / (self.sigma * q))).to(device=u.device, dtype=torch.float32)
        return (w @ u.view(q, -1)).view(u.shape[1:])


# ---------------------------------------------------------------------- Sign-OPT
def sign_opt_gradient(values: Tensor, directions: Tensor) -> Tensor:
    """Sign-OPT's estimate from forward comparisons (Cheng et al., ICLR 2020, Algorithm 1).

    ``values``: float64 ``(K + 1,)``, the objective at the current point (row 0) and at
    the ``K`` probes ``x + sigma u_k`` (rows 1..K). ``directions``: float32
    ``(K, *S)``, the ``u_k``. Returns float32 ``(*S)`` on ``directions``' device:

        g = 1/K * sum_k sign(values[k] - values[0]) u_k

    Each direction weighs ``±1/K`` whatever the size of its difference; a tie
    (``values[k] == values[0]``: the objective cannot tell the probe from the point)
    weighs 0. The comparison is made in float64.
    """
    k = int(directions.shape[0])
    if values.shape != (k + 1,):
        raise ValueError(f"values must be ({k + 1},) for {k} directions, got {tuple(values.shape)}")
    signs = torch.sign(values[1:].to(torch.float64) - values[0].to(torch.float64))
    w = (signs / k).to(device=directions.device, dtype=torch.float32)
    return (w @ directions.reshape(k, -1)).view(directions.shape[1:])


@register_estimator("sign_opt")
class SignOPT(ForwardDifferences):
    """Sign-OPT's single-query sign estimate (Cheng, Singh, Chen, Chen, Liu, Hsieh:
    "Sign-OPT: A Query-Efficient Hard-label Adversarial Attack", ICLR 2020, Algorithm 1)
    applied to the score-based objective ``f`` that :class:`NES` and :class:`ZOSignSGD`
    estimate, as in the SVA paper's §4.5.4 ablation:

        g = 1/K * sum_k sign(f(x + sigma u_k) - f(x)) u_k

    with ``K = population`` directions ``u_k ~ N(0, I)`` (float32, not normalised) on
    the masked frames only and ``sigma`` the per-pixel probe scale, as NES's. One
    estimate asks ``K + 1`` videos in one oracle call: the current video (probe 0, for
    ``f(x)``) and the ``K`` probes ``clamp(x + sigma u_k, 0, 1)`` (probes 1..K), which
    differ from ``x`` on masked frames only. See :func:`sign_opt_gradient` for the
    arithmetic (ties weigh 0) and ``docs/estimators.md`` for every choice.
    """

    summary = ("Sign-OPT's sign estimate (Cheng et al., ICLR 2020): mean of sign(f(x + σu) − f(x))·u over "
               "Gaussian u; population + 1 queries")

    def combine(self, values: Tensor, u: Tensor) -> Tensor:
        return sign_opt_gradient(values, u)
