"""Hard-label baselines in Cheng's formulation, L∞ form: **Opt-attack** (Cheng et al.,
ICLR 2019, arXiv 1807.04457) and **Sign-OPT** (Cheng et al., ICLR 2020, arXiv 1909.10773).

Both see top-1 labels only (``oracle_mode = "label"``) and minimise the same function
of a direction ``θ`` (a tensor shaped like the video, ``(T, 3, H, W)``)::

    g(θ) = min { λ > 0 : clip(x + λ·θ/‖θ‖∞, 0, 1) is adversarial }

— the L∞ radius, in [0, 1] pixel units, at which the ray from the clean video ``x``
along ``θ`` leaves the true class (untargeted) or enters the target class (targeted).
``g`` is evaluated by a search that costs queries (Opt-attack Algorithm 1: a
fine-grained search that grows or shrinks ``λ`` by a ratio from a hint, then a binary
search to a tolerance). The returned video is always one the oracle answered as
adversarial, at ``λ`` = the upper end of that search; clipping to [0, 1] can only
shorten the perturbation, so its L∞ distance to ``x`` is at most ``λ``.

The two methods differ only in the gradient estimate of ``g``:

* Opt-attack (Algorithm 2, RGF): ``ĝ = 1/q Σ (g(θ+βu_i) − g(θ))/β · u_i``, each
  ``g(θ+βu_i)`` a full search; the ``q`` searches run side by side
  (:func:`~sva.blackbox.lockstep.run_lockstep`), so their queries reach the victim in
  batches of up to ``q`` videos;
* Sign-OPT (Algorithm 1): ``ĝ = 1/Q Σ sign_i · u_i`` where ``sign_i`` costs one query:
  is ``x + g(θ)·(θ+βu_i)/‖θ+βu_i‖∞`` adversarial (−1: ``g`` decreases along ``u_i``) or
  not (+1). The ``Q`` probes go to the oracle as one ask of ``Q`` videos.

Then both take the authors' step-size search on ``θ − α·ĝ`` (double ``α`` while ``g``
keeps decreasing; otherwise quarter it until ``g`` decreases), and both stop as soon
as the returned video is within ε (``stop_at_eps``), when the budget cannot pay the
next query, or when the step size collapses twice over (``min_beta``). Every choice
the papers leave open is in ``docs/baselines.md``.

**Geometry** (setting ``geometry``, default ``linf``). Everything above is the L∞ form.
``geometry: l2`` is the authors' L2 form (``attack/OPT_attack.py``,
``attack/Sign_OPT.py``): θ, the probe directions ``u`` and every step are normalised
in L2 (``θ̂ = θ/‖θ‖₂``, ``‖u‖₂ = 1``), so ``λ`` and ``g`` are L2 radii of the unclipped
ray. The limits of a search are set by the ray's L∞ extent ``λ·‖θ̂‖∞`` (the largest
pixel change) in both geometries: ``g = ∞`` beyond an extent of :data:`LAMBDA_CAP`,
and no bisection step below an extent of :data:`TOL_FLOOR`. What the attack keeps and
returns does not depend on the geometry: the answered adversarial video closest to
``x`` in L∞, and ``stop_at_eps`` stops when that L∞ distance is within ε — the
evaluator's criterion. :class:`LinfGeometry` and :class:`L2Geometry` hold the
difference; ``docs/baselines.md`` ("L2 geometry") gives the reasons.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from sva.attacks.base import Attack, AttackOutcome, AttackTask, first_look, register_attack
from sva.attacks.selectors import all_frames, no_frames
from sva.blackbox.lockstep import Ask, run_alone, run_lockstep
from sva.blackbox.oracle import Answer, BudgetExhausted, Oracle
from sva.evaluation.metrics import linf, mean_absolute_perturbation
from sva.utils.settings import PositiveFloat, PositiveInt, StrictModel

#: the largest L∞ extent ``λ·‖θ̂‖∞`` of a ray (pixel units) a search tries before it
#: declares ``g = ∞`` (authors' code: ``if lbd_hi > 20: return float('inf')``); far
#: beyond any pixel's range. In the L∞ geometry it is the largest ``λ`` itself.
LAMBDA_CAP = 20.0
#: the smallest binary-search tolerance as an L∞ extent, in [0, 1] pixel units: steps
#: that move no pixel by more than this no longer change a float32 video near 1 (its
#: spacing there is 6e-8). In the L∞ geometry it is a step of ``λ`` itself.
TOL_FLOOR = 1e-7

#: the norm θ, the probe directions and g(θ) are normalised and searched in
GeometryName = Literal["linf", "l2"]


# -- settings -----------------------------------------------------------------------------------


class ChengSettings(StrictModel):
    """What Opt-attack and Sign-OPT share (Cheng's formulation, the search, the step size)."""

    init_directions: PositiveInt = Field(
        100, description="untargeted start: random Gaussian directions tried; the best g(θ) is the start θ0")
    alpha: PositiveFloat = Field(0.2, description="initial step size α of the step-size search on θ − α·ĝ")
    beta: PositiveFloat = Field(0.001, description="smoothing β of the gradient estimate (θ + β·u, ‖u‖ = 1 in "
                                "the geometry's norm)")
    search_ratio: float = Field(0.01, gt=0, lt=1, description="fine-grained search: grow / shrink λ by this "
                                "ratio from the hint until the answer flips (Opt-attack Algorithm 1)")
    tolerance: PositiveFloat = Field(0.002, description="binary-search tolerance as a fraction of β "
                                     "(tol = β × this, floored at 1e-7 pixel units)")
    line_search_steps: PositiveInt = Field(15, description="most tries of each loop of the step-size search "
                                           "(doubling, then quartering α)")
    min_alpha: PositiveFloat = Field(1e-4, description="α below this: reset α to 1 and divide β by 10")
    min_beta: PositiveFloat = Field(5e-5, description="β below this: stop (the search has stagnated)")
    stop_at_eps: bool = Field(True, description="stop as soon as the returned video is within ε (the success "
                              "criterion); false: keep reducing the distortion until the budget or stagnation")
    geometry: GeometryName = Field("linf", description="the norm in which θ, the probe directions u and g(θ) are "
                                   "normalised and searched: linf (Cheng's L∞ form, the authors' *_lf.py code) or "
                                   "l2 (their L2 form, docs/baselines.md 'L2 geometry'); success is always the "
                                   "evaluator's L∞ ≤ ε on the returned video, the answered adversarial video "
                                   "closest to the clean one in L∞")


class OptSettings(ChengSettings):
    """Opt-attack: RGF over ``q`` Gaussian directions, each a full search of ``g``."""

    directions: PositiveInt = Field(20, description="q: random directions per RGF gradient estimate, each "
                                    "one g(θ+βu) search; the q searches share oracle batches")


class SignOptSettings(ChengSettings):
    """Sign-OPT: ``Q`` single-query sign probes per gradient estimate."""

    directions: PositiveInt = Field(200, description="Q: single-query sign probes per gradient estimate, "
                                    "sent to the oracle as one batch")


# -- the state of one attack --------------------------------------------------------------------


@dataclass
class SearchResult:
    """A search of ``g`` along one direction.

    ``g``: the boundary radius found, in the geometry's units (``inf`` when the ray is
    not adversarial up to the L∞ extent :data:`LAMBDA_CAP`, or when a bounded search
    stopped early because ``g`` exceeds its hint); ``video``: float32 ``(T, 3, H, W)``, the answered adversarial video at
    ``λ = g`` (``None`` when ``g`` is ``inf``); ``complete``: ``False`` when the budget
    ended the search (``g``/``video`` are then the best upper bound reached).
    """

    g: float
    video: Tensor | None
    complete: bool = True


@dataclass
class Best:
    """The best answered adversarial video so far: ``video`` float32 ``(T, 3, H, W)``,
    its L∞ distance ``linf`` to the clean video (pixel units), the ray radius ``g`` it
    was found at (the geometry's units) and the oracle's count ``queries`` when it was answered."""

    video: Tensor
    linf: float
    g: float
    queries: int


@dataclass
class Estimate:
    """A gradient estimate ``grad`` (shape of ``x``) and, for Opt-attack, the best probe
    direction ``probe_theta`` with its ``probe_g`` (the authors' fallback when it beats
    the step-size search)."""

    grad: Tensor
    probe_theta: Tensor | None = None
    probe_g: float = math.inf


def unit(theta: Tensor) -> Tensor | None:
    """``θ / ‖θ‖∞`` for one direction (any shape), ``None`` for the zero direction."""
    norm = float(theta.abs().max())
    return theta / norm if norm > 0 else None


def units_(thetas: Tensor) -> Tensor:
    """Each of ``B`` directions ``(B, ...)`` divided by its own L∞ norm, in place (none may
    be zero); returns ``thetas``."""
    norms = thetas.abs().flatten(1).amax(dim=1)
    return thetas.div_(norms.view(-1, *([1] * (thetas.dim() - 1))))


def unit_l2(theta: Tensor) -> Tensor | None:
    """``θ / ‖θ‖₂`` for one direction (any shape), ``None`` for the zero direction."""
    norm = float(theta.norm())
    return theta / norm if norm > 0 else None


def units_l2_(thetas: Tensor) -> Tensor:
    """Each of ``B`` directions ``(B, ...)`` divided by its own L2 norm, in place (none may
    be zero); returns ``thetas``."""
    norms = thetas.flatten(1).norm(dim=1)
    return thetas.div_(norms.view(-1, *([1] * (thetas.dim() - 1))))


def ray_video(x: Tensor, theta: Tensor, lam: float) -> Tensor:
    """``clip(x + λ·θ, 0, 1)``: the video at radius ``λ`` along the unit direction ``θ``
    (float32 ``(T, 3, H, W)``; unit in the geometry's norm)."""
    return (x + lam * theta).clamp_(0.0, 1.0)


class LinfGeometry:
    """Cheng's formulation in L∞ (``geometry: linf``): ``θ̂ = θ/‖θ‖∞``, ``‖u‖∞ = 1``, and
    the radius ``λ`` of a ray is its L∞ extent (pixel units).

    Every method takes unit directions of this geometry; ``extent`` is the ray's L∞
    extent ``λ·‖θ̂‖∞`` (the largest pixel change before clipping), which bounds the L∞
    distance of ``clip(x + λθ̂, 0, 1)`` to ``x``. The L∞ methods are the module's
    functions, untouched (``lam_at`` and ``extent`` return their argument), so this
    geometry computes exactly what the code did before the setting existed.
    """

    name: GeometryName = "linf"

    @staticmethod
    def norms(thetas: Tensor) -> Tensor:
        """The norm of each row of ``(B, ...)``: ``‖θ‖∞``, shape ``(B,)``."""
        return thetas.abs().flatten(1).amax(dim=1)

    @staticmethod
    def unit(theta: Tensor) -> Tensor | None:
        """``θ/‖θ‖∞`` (any shape), ``None`` for the zero direction."""
        return unit(theta)

    @staticmethod
    def units_(thetas: Tensor) -> Tensor:
        """Each row of ``(B, ...)`` divided by its ``‖·‖∞``, in place; returns ``thetas``."""
        return units_(thetas)

    def lam_at(self, theta: Tensor, extent: float) -> float:
        """The radius at which the ray along the unit direction ``theta`` reaches the L∞
        extent ``extent`` (pixel units): ``extent`` itself."""
        return extent

    def extent(self, theta: Tensor, lam: float) -> float:
        """The L∞ extent (pixel units) of the ray along the unit ``theta`` at radius
        ``lam``: ``lam`` itself."""
        return lam

    def tol(self, theta: Tensor, tol: float) -> float:
        """The bisection tolerance along ``theta``: ``tol`` (already floored at
        :data:`TOL_FLOOR` pixel units by :meth:`Run.tol`)."""
        return tol

    def start_radii(self, norms: Tensor, thetas: Tensor, cap: float) -> Tensor:
        """The radius each start direction is first checked at: its own length
        ``norms`` ``(B,)`` (so the video is ``x + θ``, clipped), at most the L∞ extent
        ``cap``; ``thetas`` ``(B, ...)`` are the unit directions."""
        return norms.clamp(max=cap)


class L2Geometry(LinfGeometry):
    """The authors' L2 form (``geometry: l2``; ``attack/OPT_attack.py``,
    ``attack/Sign_OPT.py``): ``θ̂ = θ/‖θ‖₂``, ``‖u‖₂ = 1``, and ``λ`` is the L2 norm of
    the unclipped perturbation ``λθ̂``. Limits given as L∞ extents (:data:`LAMBDA_CAP`,
    :data:`TOL_FLOOR`, ε) become ``extent/‖θ̂‖∞`` in ``λ``, so they mean the same pixel
    changes in both geometries."""

    name: GeometryName = "l2"

    @staticmethod
    def norms(thetas: Tensor) -> Tensor:
        """The norm of each row of ``(B, ...)``: ``‖θ‖₂``, shape ``(B,)``."""
        return thetas.flatten(1).norm(dim=1)

    @staticmethod
    def unit(theta: Tensor) -> Tensor | None:
        """``θ/‖θ‖₂`` (any shape), ``None`` for the zero direction."""
        return unit_l2(theta)

    @staticmethod
    def units_(thetas: Tensor) -> Tensor:
        """Each row of ``(B, ...)`` divided by its ``‖·‖₂``, in place; returns ``thetas``."""
        return units_l2_(thetas)

    def lam_at(self, theta: Tensor, extent: float) -> float:
        """``extent / ‖θ̂‖∞``: the L2 radius at which the largest pixel change along the
        unit ``theta`` is ``extent`` (pixel units)."""
        return extent / float(theta.abs().max())

    def extent(self, theta: Tensor, lam: float) -> float:
        """``λ·‖θ̂‖∞``: the largest pixel change (pixel units) at L2 radius ``lam``."""
        return lam * float(theta.abs().max())

    def tol(self, theta: Tensor, tol: float) -> float:
        """``tol`` (L2 units, the authors' β/500), but no finer than a step that moves
        the largest pixel by :data:`TOL_FLOOR`: ``max(tol, TOL_FLOOR/‖θ̂‖∞)``."""
        return max(tol, self.lam_at(theta, TOL_FLOOR))

    def start_radii(self, norms: Tensor, thetas: Tensor, cap: float) -> Tensor:
        """``min(‖θ‖₂, cap/‖θ̂‖∞)``: the video ``x + θ`` (clipped), unless its L∞ extent
        exceeds ``cap`` — the same videos the L∞ geometry checks first."""
        return torch.minimum(norms, cap / thetas.abs().flatten(1).amax(dim=1))


#: the geometry of each ``geometry`` setting
GEOMETRIES: dict[str, LinfGeometry] = {"linf": LinfGeometry(), "l2": L2Geometry()}


class Run:
    """One attack on one video: the oracle, the goal, the settings and the best video.

    The searches are generators for :mod:`sva.blackbox.lockstep`; every query they ask
    for is one video with ``reserve=1``, so a refused reservation ends a search after
    its last answered query and nothing overshoots the budget. ``geometry``: the
    settings' (:data:`GEOMETRIES`); the directions the searches take are unit in its
    norm, and ``λ``, ``g`` are its radii. The best video is ranked in L∞ whatever the
    geometry.
    """

    def __init__(self, oracle: Oracle, task: AttackTask, settings: ChengSettings, eps: float):
        self.oracle, self.x, self.settings, self.eps = oracle, task.x, settings, float(eps)
        self.label, self.target = int(task.label), task.target
        self.geometry: LinfGeometry = GEOMETRIES[settings.geometry]
        self.best: Best | None = None

    def adversarial(self, labels: Tensor) -> Tensor:
        """Bool ``(B,)``: untargeted, top-1 ≠ true label; targeted, top-1 = target."""
        return labels == self.target if self.target is not None else labels != self.label

    def offer(self, video: Tensor, g: float) -> None:
        """Keep ``video`` (answered adversarial, found at radius ``g``) if it is the closest
        yet in L∞ (in every geometry: the success criterion's norm)."""
        d = linf(video, self.x)
        if self.best is None or d < self.best.linf:
            self.best = Best(video, d, g, self.oracle.used)

    @property
    def within_eps(self) -> bool:
        """The best video meets the success criterion (L∞ ≤ ε)."""
        return self.best is not None and self.best.linf <= self.eps

    @property
    def done(self) -> bool:
        """Stop now: the success criterion is met and ``stop_at_eps`` is on."""
        return self.settings.stop_at_eps and self.within_eps

    def tol(self, beta: float) -> float:
        """Binary-search tolerance for smoothing ``beta``, in the geometry's radius units
        (L∞: pixel units); the L2 geometry raises it per direction to a step of at least
        :data:`TOL_FLOOR` pixel units (:meth:`L2Geometry.tol`)."""
        return max(beta * self.settings.tolerance, TOL_FLOOR)

    # -- queries ---------------------------------------------------------------------------------

    def check(self, theta: Tensor, lam: float, phase: str) -> Generator[Ask, Answer, tuple[bool, Tensor] | None]:
        """One query: is the video at radius ``lam`` along ``theta`` adversarial?
        Returns ``(adversarial, video)``, or ``None`` when the budget refused it."""
        video = ray_video(self.x, theta, lam)
        try:
            answer = yield Ask(video[None], phase, reserve=1)
        except BudgetExhausted:
            return None
        adv = bool(self.adversarial(answer.labels)[0])
        if adv:
            self.offer(video, lam)
        return adv, video

    def search(self, theta: Tensor, hint: float, tol: float, phase: str,
               bound: bool = False) -> Generator[Ask, Answer, SearchResult]:
        """``g(θ)`` for a unit direction ``theta`` from the estimate ``hint`` (Opt-attack
        Algorithm 1): one query at ``hint``; if adversarial, shrink ``λ`` by the ratio
        until it is not, else grow it until it is; then bisect to ``tol``.

        ``bound``: the caller only needs ``g`` when it is below ``hint`` (a step-size
        search candidate); a non-adversarial answer at ``hint`` then ends the search
        with ``g = inf`` after that one query. Growing stops with ``g = inf`` past the
        L∞ extent :data:`LAMBDA_CAP`; shrinking below the extent :data:`TOL_FLOOR`
        reaches the clean video.
        """
        r = self.settings.search_ratio
        cap, floor = self.geometry.lam_at(theta, LAMBDA_CAP), self.geometry.lam_at(theta, TOL_FLOOR)
        res = yield from self.check(theta, hint, phase)
        if res is None:
            return SearchResult(math.inf, None, complete=False)
        adv, video = res
        if adv:
            hi, hi_video, lo = hint, video, hint * (1.0 - r)
            while True:
                if lo < floor:  # reached the clean video, which is not adversarial
                    lo = 0.0
                    break
                res = yield from self.check(theta, lo, phase)
                if res is None:
                    return SearchResult(hi, hi_video, complete=False)
                if not res[0]:
                    break
                hi, hi_video, lo = lo, res[1], lo * (1.0 - r)
        else:
            if bound:
                return SearchResult(math.inf, None)
            lo, hi = hint, hint * (1.0 + r)
            while True:
                if hi > cap:
                    return SearchResult(math.inf, None)
                res = yield from self.check(theta, hi, phase)
                if res is None:
                    return SearchResult(math.inf, None, complete=False)
                if res[0]:
                    hi_video = res[1]
                    break
                lo, hi = hi, hi * (1.0 + r)
        return (yield from self.bisect(theta, lo, hi, hi_video, tol, phase))

    def bisect(self, theta: Tensor, lo: float, hi: float, hi_video: Tensor, tol: float,
               phase: str) -> Generator[Ask, Answer, SearchResult]:
        """Binary search of ``[lo, hi]`` (``hi`` answered adversarial as ``hi_video``,
        ``lo`` not) until ``hi − lo ≤ tol`` (raised by the geometry, :meth:`LinfGeometry.tol`);
        returns ``g = hi``."""
        tol = self.geometry.tol(theta, tol)
        while hi - lo > tol:
            mid = 0.5 * (lo + hi)
            res = yield from self.check(theta, mid, phase)
            if res is None:
                return SearchResult(hi, hi_video, complete=False)
            if res[0]:
                hi, hi_video = mid, res[1]
            else:
                lo = mid
        return SearchResult(hi, hi_video)

    def start_search(self, theta: Tensor, lam0: float, video0: Tensor, best_g: float,
                     tol: float) -> Generator[Ask, Answer, SearchResult]:
        """``g`` of a start direction already answered adversarial at ``lam0`` (authors'
        ``fine_grained_binary_search``): when ``lam0`` exceeds the best start so far,
        one query at that best decides whether the direction can beat it at all; then
        bisect from 0."""
        hi, hi_video = lam0, video0
        if lam0 > best_g:
            res = yield from self.check(theta, best_g, "init")
            if res is None:
                return SearchResult(math.inf, None, complete=False)
            if not res[0]:
                return SearchResult(math.inf, None)
            hi, hi_video = best_g, res[1]
        return (yield from self.bisect(theta, 0.0, hi, hi_video, tol, "init"))


# -- the methods ---------------------------------------------------------------------------------


class ChengAttack(Attack):
    """Cheng's formulation of the hard-label attack (shared by Opt-attack and Sign-OPT).

    Subclasses supply :meth:`estimate`, the gradient estimate of ``g`` at ``θ``. The
    setting ``geometry`` picks the norm of θ, ``u`` and ``g`` (:attr:`geometry`).
    """

    oracle_mode = "label"
    Settings = ChengSettings
    #: the largest L∞ extent (pixel units) at which a start direction is first checked
    lambda_cap: float = LAMBDA_CAP

    @property
    def geometry(self) -> LinfGeometry:
        """The geometry of the ``geometry`` setting (:data:`GEOMETRIES`)."""
        return GEOMETRIES[self.settings.geometry]

    def direction_norms(self, thetas: Tensor) -> Tensor:
        """The norm a direction is measured in, per row of ``(B, ...)``: the geometry's
        (L∞ or L2), shape ``(B,)``."""
        return self.geometry.norms(thetas)

    @abc.abstractmethod
    def estimate(self, run: Run, theta: Tensor, g: float, beta: float,
                 generator: torch.Generator) -> Estimate | None:
        """The gradient estimate of ``g`` at the unit direction ``theta`` (``g = g(θ)``),
        or ``None`` when the budget ended it (its queries still count)."""

    def run(self, oracle: Oracle, task: AttackTask) -> AttackOutcome:
        x = task.x
        clean_label = first_look(oracle, x)
        run = Run(oracle, task, self.settings, self.context.eps)
        trace: list[dict] = []
        if bool(run.adversarial(torch.tensor([clean_label]))[0]):
            # the clean video already meets the goal: nothing to search (distance 0)
            run.best = Best(x.clone(), 0.0, 0.0, oracle.used)
            stop, iterations = "clean", 0
        else:
            stop, iterations = self._attack(run, task, trace)
        return self._outcome(run, task, clean_label, stop, iterations, trace)

    def _attack(self, run: Run, task: AttackTask, trace: list[dict]) -> tuple[str, int]:
        """Start, then iterate gradient estimate → step-size search; returns the stop
        reason and the number of iterations."""
        s = self.settings
        alpha, beta = s.alpha, s.beta
        start = self._start(run, task)
        if isinstance(start, str):
            return start, 0
        theta, g = start
        trace.append(self._log(run, 0, g, alpha, beta))
        if run.done:
            return "eps", 0
        generator = task.generator("directions")
        iteration = 0
        while True:
            iteration += 1
            est = self.estimate(run, theta, g, beta, generator)
            if est is None:
                return "budget", iteration - 1
            if run.done:  # a probe's own search already reached ε (Opt-attack)
                if est.probe_theta is not None and est.probe_g < g:
                    theta, g = est.probe_theta, est.probe_g
                trace.append(self._log(run, iteration, g, alpha, beta))
                return "eps", iteration
            new_theta, new_g, alpha, complete = self._step(run, theta, g, est.grad, alpha, run.tol(beta))
            if est.probe_theta is not None and est.probe_g < new_g:  # authors' fallback (Opt-attack)
                new_theta, new_g = est.probe_theta, est.probe_g
            theta, g = new_theta, new_g
            if not complete:
                trace.append(self._log(run, iteration, g, alpha, beta))
                return "budget", iteration
            if alpha < s.min_alpha:  # not moving: restart the step size, finer smoothing
                alpha, beta = 1.0, beta * 0.1
            trace.append(self._log(run, iteration, g, alpha, beta))
            if run.done:
                return "eps", iteration
            if beta < s.min_beta:
                return "stagnation", iteration

    def _start(self, run: Run, task: AttackTask) -> tuple[Tensor, float] | str:
        """The start θ0 and ``g(θ0)``: untargeted, the best of ``init_directions``
        Gaussian directions; targeted, the best of the target-class videos
        ``task.candidates`` (θ = candidate − x). Each is first checked at its own
        length, i.e. the video ``x + θ`` clipped, unless its L∞ extent exceeds
        :attr:`lambda_cap` (one batch, phase ``init``); the adversarial ones are
        searched in order, each only if it can beat the best so far. A string instead: why there is no
        start (``init``: no adversarial direction; ``budget``: the budget ended it)."""
        x, s = run.x, self.settings
        if run.target is None:
            gen = task.generator("init")
            thetas = torch.randn((s.init_directions, *x.shape), generator=gen, device=x.device, dtype=x.dtype)
        else:
            if task.candidates is None or len(task.candidates) == 0:
                return "init"
            thetas = task.candidates.to(x.device, x.dtype) - x[None]
        norms = self.direction_norms(thetas)
        keep = norms > 0
        thetas, norms = thetas[keep], norms[keep]
        if len(thetas) == 0:
            return "init"
        thetas = self.geometry.units_(thetas)
        lam0 = self.geometry.start_radii(norms, thetas, self.lambda_cap)
        videos = (x[None] + lam0.view(-1, 1, 1, 1, 1) * thetas).clamp_(0.0, 1.0)
        answer = self._ask_batch(run, videos, "init")
        if answer is None:
            return "budget"
        adv = run.adversarial(answer.labels)
        tol = run.tol(s.beta)
        best_theta, best_g = None, math.inf
        for i in adv.nonzero().flatten().tolist():
            run.offer(videos[i].clone(), float(lam0[i]))
            res = run_alone(run.oracle, run.start_search(thetas[i], float(lam0[i]), videos[i].clone(), best_g, tol))
            if res.complete and res.g < best_g:
                best_theta, best_g = thetas[i].clone(), res.g
            if not res.complete:
                return "budget" if best_theta is None else (best_theta, best_g)
            if run.done:
                break
        return "init" if best_theta is None else (best_theta, best_g)

    @staticmethod
    def _ask_batch(run: Run, videos: Tensor, phase: str) -> Answer | None:
        """Ask about ``videos`` ``(B, T, 3, H, W)`` as one reserved batch; ``None`` when
        the budget cannot pay all ``B``."""

        def episode() -> Generator[Ask, Answer, Answer | None]:
            try:
                return (yield Ask(videos, phase, reserve=int(videos.shape[0])))
            except BudgetExhausted:
                return None

        return run_alone(run.oracle, episode())

    def _step(self, run: Run, theta: Tensor, g: float, grad: Tensor, alpha: float,
              tol: float) -> tuple[Tensor, float, float, bool]:
        """The authors' step-size search on ``θ − α·ĝ`` (phase ``search``): while the
        step improves ``g``, accept it and double ``α`` (up to ``line_search_steps``
        tries); if the first try fails, quarter ``α`` until a step improves ``g``.
        Returns ``(θ', g(θ'), α, complete)``; ``θ' = θ`` when nothing improved.
        ``complete`` is ``False`` when the budget ended it."""
        s = self.settings
        best_theta, best_g = theta, g
        for _ in range(s.line_search_steps):
            res = self._try_step(run, theta, grad, alpha, best_g, tol)
            if res is None:
                return best_theta, best_g, alpha, False
            alpha *= 2.0
            if res[1] < best_g:
                best_theta, best_g = res
                if run.done:
                    return best_theta, best_g, alpha, True
            else:
                break
        if best_g >= g:
            for _ in range(s.line_search_steps):
                alpha *= 0.25
                res = self._try_step(run, theta, grad, alpha, g, tol)
                if res is None:
                    return best_theta, best_g, alpha, False
                if res[1] < g:
                    best_theta, best_g = res
                    break
        return best_theta, best_g, alpha, True

    @staticmethod
    def _try_step(run: Run, theta: Tensor, grad: Tensor, alpha: float, threshold: float,
                  tol: float) -> tuple[Tensor, float] | None:
        """``(θ', g(θ'))`` for ``θ' = unit(θ − α·ĝ)`` (unit in the run's geometry),
        searched only as far as it can beat ``threshold`` (``g = inf`` otherwise);
        ``None`` when the budget ended it."""
        new = run.geometry.unit(theta - alpha * grad)
        if new is None:
            return theta, math.inf
        res = run_alone(run.oracle, run.search(new, threshold, tol, "search", bound=True))
        if not res.complete:
            return None
        return new, res.g

    @staticmethod
    def _log(run: Run, iteration: int, g: float, alpha: float, beta: float) -> dict:
        """One trace entry: the iteration (0 = the start), ``g(θ)``, the best video's
        L∞ distance, the step size, the smoothing and the queries so far."""
        return {"iteration": iteration, "g": g, "linf": None if run.best is None else run.best.linf,
                "alpha": alpha, "beta": beta, "queries": run.oracle.used}

    def _outcome(self, run: Run, task: AttackTask, clean_label: int, stop: str, iterations: int,
                 trace: list[dict]) -> AttackOutcome:
        """The outcome: the best answered adversarial video when it lies within ε (every
        frame may differ: a dense method), else the clean video; one episode entry with
        the per-iteration trace.

        On a failure with an answered adversarial video (the closest one, in L∞, is
        beyond ε), that video is the outcome's ``fallback`` for the evaluator's
        mean-perturbation reading, and the mask covers its frames (all of them); the
        returned video is still the clean one."""
        x, oracle = task.x, run.oracle
        success = run.within_eps
        best = run.best
        episode = {"epoch": 0, "episode": 0, "frames": list(range(task.num_frames)), "success": success,
                   "queries": oracle.used, "map": mean_absolute_perturbation(best.video, x) if success else None,
                   "iterations": iterations, "stop": stop, "g": None if best is None else best.g,
                   "linf": None if best is None else best.linf, "trace": trace}
        if not success:
            fallback = None if best is None else best.video.clone()
            mask = no_frames(task.num_frames) if fallback is None else all_frames(task.num_frames)
            return AttackOutcome(x.clone(), False, mask, oracle.used, oracle.used_by_phase,
                                 None, None, clean_label, [episode], [], fallback=fallback)
        return AttackOutcome(best.video, True, all_frames(task.num_frames), oracle.used, oracle.used_by_phase,
                             0, best.queries, clean_label, [episode], [])


@register_attack
class OptAttack(ChengAttack):
    """Opt-attack (Cheng et al., ICLR 2019): hard-label, RGF on Cheng's g(θ), L∞ or L2."""

    name = "opt"
    Settings = OptSettings

    def directions(self, theta: Tensor, generator: torch.Generator) -> Tensor:
        """The ``q`` random directions ``u_i`` of one RGF estimate: Gaussian, each scaled
        to ``‖u_i‖ = 1`` in the geometry's norm, shape ``(q, *θ.shape)`` (a subclass may
        restrict them)."""
        return self.geometry.units_(torch.randn((self.settings.directions, *theta.shape), generator=generator,
                                                device=theta.device, dtype=theta.dtype))

    def estimate(self, run: Run, theta: Tensor, g: float, beta: float,
                 generator: torch.Generator) -> Estimate | None:
        """RGF (Opt-attack Algorithm 2 averaged over ``q`` directions):
        ``ĝ = 1/q Σ (g(θ+βu_i) − g(θ))/β · u_i``, ``u_i`` Gaussian with ``‖u_i‖ = 1``
        (:meth:`directions`); the ``q`` searches (phase ``probe``, hint ``g(θ)``) run
        side by side. A direction whose ray is not adversarial up to the L∞ extent
        :data:`LAMBDA_CAP` is left out of the average."""
        us = self.directions(theta, generator)
        pairs = [(u, p) for u in us if (p := run.geometry.unit(theta + beta * u)) is not None]
        tol = run.tol(beta)
        results = run_lockstep(run.oracle, [run.search(p, g, tol, "probe") for _, p in pairs])
        if not all(r.complete for r in results):
            return None
        grad = torch.zeros_like(theta)
        finite = 0
        probe_theta, probe_g = None, math.inf
        for (u, p), r in zip(pairs, results):
            if math.isfinite(r.g):
                grad += (r.g - g) / beta * u
                finite += 1
                if r.g < probe_g:
                    probe_theta, probe_g = p, r.g
        return Estimate(grad / max(finite, 1), probe_theta, probe_g)


@register_attack
class SignOptAttack(ChengAttack):
    """Sign-OPT (Cheng et al., ICLR 2020): hard-label, single-query sign gradient on Cheng's g(θ), L∞ or L2."""

    name = "sign_opt"
    Settings = SignOptSettings

    def estimate(self, run: Run, theta: Tensor, g: float, beta: float,
                 generator: torch.Generator) -> Estimate | None:
        """Sign-OPT's estimate (Algorithm 1): ``ĝ = 1/Q Σ sign_i · u_i`` with ``u_i``
        Gaussian, ``‖u_i‖ = 1``, and ``sign_i = −1`` when
        ``x + g(θ)·(θ+βu_i)/‖θ+βu_i‖`` is adversarial (``g`` decreases along
        ``u_i``), ``+1`` otherwise: ``Q`` queries, asked as one batch (phase ``probe``).
        ``‖·‖``: the geometry's norm."""
        units = run.geometry.units_
        us = units(torch.randn((self.settings.directions, *theta.shape), generator=generator,
                               device=theta.device, dtype=theta.dtype))
        # x + g·unit(θ + βu_i), built in one buffer (Q videos: the largest tensor of the method)
        videos = units(torch.add(theta[None], us, alpha=beta)).mul_(g).add_(run.x[None]).clamp_(0.0, 1.0)
        answer = self._ask_batch(run, videos, "probe")
        if answer is None:
            return None
        signs = 1.0 - 2.0 * run.adversarial(answer.labels).to(us.dtype).to(us.device)
        grad = (signs.view(-1, *([1] * theta.dim())) * us).mean(dim=0)
        return Estimate(grad)


__all__ = ["GEOMETRIES", "LAMBDA_CAP", "TOL_FLOOR", "ChengAttack", "ChengSettings", "GeometryName", "L2Geometry",
           "LinfGeometry", "OptAttack", "OptSettings", "Run", "SearchResult", "SignOptAttack", "SignOptSettings",
           "ray_video", "unit", "unit_l2", "units_", "units_l2_"]
