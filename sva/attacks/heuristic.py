"""**Heuristic-attack** (Wei, Guo, Yan, Sun, Zhu, Yu: *Heuristic Black-box Adversarial
Attacks on Video Recognition Models*, AAAI 2020, arXiv 1911.09449): Opt-attack's
hard-label optimisation on a perturbation that is sparse in time (the frames a
heuristic keeps) and in space (the salient regions of those frames).

Label-only (``oracle_mode = "label"``), in the L∞ form of Cheng's formulation that
:mod:`sva.attacks.opt` implements (or its L2 form, setting ``geometry``), which this
method reuses: the start, the search of ``g(θ)``, the step-size search, the stopping
rules and the outcome are :class:`~sva.attacks.opt.ChengAttack`'s. What the method adds, in order:

1. **the start** — ChengAttack's (untargeted: the best of ``init_directions`` Gaussian
   directions; targeted: the best target-class video ``task.candidates``), phase ``init``;
2. **salient regions** — OpenCV's spectral-residual saliency of every *clean* frame (the
   attacker holds the clean video: no query), the top ``region_ratio`` fraction of each
   frame's pixels; the start direction is restricted to them and its ``g`` searched
   again (phase ``regions``). Should the restricted ray not be adversarial up to where
   clipping stops changing it, the regions fall back to whole frames for this video;
3. **frame importance** — for every frame ``t``, the boundary radius ``g`` of the
   direction with frame ``t``'s perturbation removed and the perturbation (MAP) of the
   video there, one bounded search per frame; the ``T`` searches run side by side
   (:func:`~sva.blackbox.lockstep.run_lockstep`, phase ``importance``), so each of
   their rounds is one oracle ask of up to ``T`` videos;
4. **greedy frame removal** — frames in ascending order of that perturbation; a removal
   is kept when the remaining frames are still adversarial with a perturbation (the
   video's mean absolute perturbation, SVA's MAP, in grey levels) no larger than
   ``max(ω, the current one)``, and when it does not take a video already within ε
   beyond ε (phase ``removal``);
5. **Opt-attack's RGF optimisation** on the kept frames × regions: every random
   direction ``u`` is zero outside them, so ``θ`` stays zero there and every video the
   attack asks about (and returns) differs from the clean one only on the kept frames'
   salient pixels (phases ``probe`` and ``search``).

The returned mask is the kept frames. Every choice the paper leaves open is in
``docs/baselines.md`` ("Heuristic-attack").
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from sva.attacks.base import AttackOutcome, AttackTask, register_attack
from sva.attacks.opt import LAMBDA_CAP, OptAttack, OptSettings, Run, SearchResult, ray_video
from sva.blackbox.lockstep import Ask, run_alone, run_lockstep
from sva.blackbox.oracle import Answer, Oracle
from sva.evaluation.metrics import mean_absolute_perturbation
from sva.utils.settings import PositiveFloat

#: bisection steps of :func:`radius_for` over [0, cap] (L∞: 20 / 2^50 ≈ 2e-14 pixel units)
RADIUS_STEPS = 50


class HeuristicSettings(OptSettings):
    """Heuristic-attack: Opt-attack's settings plus the salient regions and the frame bound."""

    region_ratio: float = Field(0.6, gt=0, le=1, description="φ: the fraction of each frame's pixels that "
                                "forms its salient region (highest spectral-residual saliency of the clean "
                                "frame); 1 = whole frames")
    bound: PositiveFloat = Field(3.0, description="ω: the frame removal's perturbation bound, in grey levels "
                                 "(0-255): the mean absolute perturbation (MAP) of the video at the boundary; "
                                 "a frame is removed when the rest stays adversarial within max(ω, the "
                                 "current MAP)")


# -- salient regions (no query) ---------------------------------------------------------------


def salient_regions(x: Tensor, ratio: float) -> Tensor:
    """The salient region of every frame of the clean video ``x``.

    ``x``: float ``(T, 3, H, W)`` in [0, 1] (RGB). Each frame is rounded to uint8 and
    given to OpenCV's spectral-residual saliency (``StaticSaliencySpectralResidual``, in
    OpenCV's BGR channel order); its ``max(1, ⌊ratio·H·W⌋)`` most salient pixels form
    the region (ties: the lower flat index first, so the result is deterministic).
    Returns bool ``(T, 1, H, W)`` on ``x``'s device, the same pixels for all three
    channels. Uses no query: the attacker holds the clean video.
    """
    t, _, h, w = x.shape
    keep = max(1, int(ratio * h * w))
    frames = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    saliency = cv2.saliency.StaticSaliencySpectralResidual_create()
    regions = np.zeros((t, h * w), dtype=bool)
    for i, frame in enumerate(frames):
        ok, smap = saliency.computeSaliency(np.ascontiguousarray(frame[..., ::-1]))
        if not ok:
            raise RuntimeError(f"spectral-residual saliency failed on frame {i}")
        order = np.argsort(-np.asarray(smap, dtype=np.float64).ravel(), kind="stable")
        regions[i, order[:keep]] = True
    return torch.from_numpy(regions).view(t, 1, h, w).to(x.device)


# -- the perturbation measure (no query) ----------------------------------------------------------


def radius_for(x: Tensor, theta: Tensor, level: float, cap: float = LAMBDA_CAP) -> float:
    """The largest ray radius ``λ ≤ cap`` at which the video ``clip(x + λθ, 0, 1)`` has
    a mean absolute perturbation (MAP, over all ``T·3·H·W`` values, in grey levels: SVA
    Eq. 12) of at most ``level``.

    The MAP grows monotonically with λ (clipping only stops a pixel), so a bisection
    finds it; the value returned satisfies the bound. ``x``, ``theta``: float
    ``(T, 3, H, W)``; ``λ`` and ``cap`` in the units of ``theta``'s geometry (L∞: pixel
    units, ``cap`` = :data:`LAMBDA_CAP`; L2: ``run.geometry.lam_at(θ, LAMBDA_CAP)``).
    Computed from the clean video, no query.
    """
    sel = theta != 0
    xs, ts, n = x[sel].double(), theta[sel].double(), x.numel()

    def p(lam: float) -> float:
        return float(((xs + lam * ts).clamp_(0.0, 1.0) - xs).abs_().sum() * 255.0 / n)

    if p(cap) <= level:
        return cap
    lo, hi = 0.0, cap
    for _ in range(RADIUS_STEPS):
        mid = 0.5 * (lo + hi)
        if p(mid) <= level:
            lo = mid
        else:
            hi = mid
    return lo


def saturation_radius(x: Tensor, theta: Tensor, cap: float = LAMBDA_CAP) -> float:
    """The radius beyond which ``clip(x + λθ, 0, 1)`` no longer changes (every pixel
    that ``θ`` moves has reached 0 or 1), capped at ``cap``. ``x``, ``theta``: float
    ``(T, 3, H, W)``; radii in the units of ``theta``'s geometry (as :func:`radius_for`)."""
    up, down = theta > 0, theta < 0
    room = torch.zeros_like(x, dtype=torch.float64)
    room[up] = (1.0 - x[up].double()) / theta[up].double()
    room[down] = x[down].double() / -theta[down].double()
    return min(float(room.max()), cap) if room.numel() else 0.0


def bounded_search(run: Run, theta: Tensor, radius: float, tol: float,
                   phase: str) -> Generator[Ask, Answer, SearchResult]:
    """``g(θ)`` if it is at most ``radius``: one query at ``radius``; not adversarial
    there → ``g = inf`` (the frame set is refused) after that one query; adversarial →
    bisect ``[0, radius]`` (the clean end is not adversarial) to ``tol``."""
    res = yield from run.check(theta, radius, phase)
    if res is None:
        return SearchResult(math.inf, None, complete=False)
    adv, video = res
    if not adv:
        return SearchResult(math.inf, None)
    return (yield from run.bisect(theta, 0.0, radius, video, tol, phase))


def doubling_search(run: Run, theta: Tensor, hint: float, cap: float, tol: float,
                    phase: str) -> Generator[Ask, Answer, SearchResult]:
    """``g(θ)`` from the estimate ``hint``: one query at ``hint``, then at twice the
    radius each time until the answer is adversarial or ``cap`` (the geometry's units)
    was asked (``g = inf``: at most ``⌈log2(cap/hint)⌉ + 1`` queries); then bisect the
    last bracket (from the clean video when ``hint`` is already adversarial) to ``tol``."""
    lo, lam = 0.0, min(hint, cap)
    while True:
        res = yield from run.check(theta, lam, phase)
        if res is None:
            return SearchResult(math.inf, None, complete=False)
        if res[0]:
            return (yield from run.bisect(theta, lo, lam, res[1], tol, phase))
        if lam >= cap:
            return SearchResult(math.inf, None)
        lo, lam = lam, min(2.0 * lam, cap)


def drop_outside(run: Run, support: Tensor) -> None:
    """Forget the best video when it differs from the clean one outside ``support``
    (bool, broadcastable to ``(T, 3, H, W)``): the attack may only return a video on
    its current frames × regions."""
    if run.best is not None and bool(((run.best.video != run.x) & ~support).any()):
        run.best = None


def _finite(v: float) -> float | None:
    """``v``, or ``None`` for an infinite value (records are JSON)."""
    return v if math.isfinite(v) else None


# -- the state of one attack -------------------------------------------------------------------


@dataclass
class Selection:
    """What the heuristic chose for one video.

    ``regions``: bool ``(T, 1, H, W)``, the pixels the perturbation may occupy in each
    frame (the salient regions, or all pixels after the whole-frame fallback);
    ``salient``: the salient regions are in use (``False``: whole frames); ``kept``:
    bool ``(T,)``, the frames kept; ``start_g``: ``g`` of the unrestricted start;
    ``selection_start``: ``g`` and the MAP (grey levels) of the direction the frame
    selection starts from (the start on the regions);
    ``importance``: per frame, ``g`` and the MAP with that frame removed (``None``: the
    rest is not adversarial within the bound); ``removal``: one entry per frame tried,
    in order; ``stage``: how far the selection got (``done``, or ``budget``).
    """

    regions: Tensor
    salient: bool
    kept: Tensor
    start_g: float
    selection_start: dict = field(default_factory=dict)
    importance: list[dict] = field(default_factory=list)
    removal: list[dict] = field(default_factory=list)
    stage: str = "done"

    @property
    def support(self) -> Tensor:
        """Bool ``(T, 1, H, W)``: the kept frames' regions (where θ may be non-zero)."""
        return self.regions & self.kept.view(-1, 1, 1, 1).to(self.regions.device)

    def record(self, ratio: float) -> dict:
        """The JSON fields the record gets (``heuristic``)."""
        return {"regions": "salient" if self.salient else "whole_frames", "region_ratio": ratio,
                "region_pixels": int(self.regions.sum()), "kept_frames": self.kept.nonzero().flatten().tolist(),
                "start_g": _finite(self.start_g), "selection_start": self.selection_start,
                "importance": self.importance, "removal": self.removal,
                "stage": self.stage}


@register_attack
class HeuristicAttack(OptAttack):
    """Heuristic-attack (Wei et al., AAAI 2020): hard-label Opt-attack on heuristically kept frames × salient regions."""

    name = "heuristic"
    Settings = HeuristicSettings
    _selection: Selection | None = None

    def run(self, oracle: Oracle, task: AttackTask) -> AttackOutcome:
        """ChengAttack's run; the selection of this call lives in ``self._selection``
        (reset here, set by :meth:`_start`, read by :meth:`estimate` and :meth:`_outcome`)."""
        self._selection = None
        return super().run(oracle, task)

    # -- start, regions, frames ----------------------------------------------------------------

    def _start(self, run: Run, task: AttackTask) -> tuple[Tensor, float] | str:
        """ChengAttack's start, then the salient regions, the frame importance and the
        greedy removal. Returns the unit direction ``θ`` on the kept frames × regions and
        its ``g``, or ChengAttack's reason for having no start."""
        start = super()._start(run, task)
        if isinstance(start, str):
            return start
        theta, g = start
        x, s = run.x, self.settings
        everything = torch.ones((x.shape[0], 1, *x.shape[2:]), dtype=torch.bool, device=x.device)
        sel = Selection(everything, False, torch.ones(x.shape[0], dtype=torch.bool), g)
        self._selection = sel
        if s.region_ratio < 1:
            regions = salient_regions(x, s.region_ratio)
            if not bool(regions.all()):
                theta, g = self._restrict_to_regions(run, sel, regions, theta, g)
        if sel.stage == "budget":  # the budget ended the region search: nothing left to select with
            return theta, g
        return self._select_frames(run, sel, theta, g)

    def _restrict_to_regions(self, run: Run, sel: Selection, regions: Tensor, theta: Tensor,
                             g: float) -> tuple[Tensor, float]:
        """Restrict the start direction to the salient ``regions`` (bool ``(T, 1, H, W)``)
        and search its ``g`` (phase ``regions``) from the start's ``g`` by doubling the
        radius up to where clipping stops changing the ray (:func:`doubling_search`,
        :func:`saturation_radius`). A ray not adversarial up to there leaves whole frames
        (``sel.salient`` stays false) and the start's best video. The hint is the radius
        of the same L∞ extent as the start's ``g`` (L∞: ``g`` itself)."""
        saved = run.best
        drop_outside(run, regions)
        geo = run.geometry
        restricted = geo.unit(theta * regions)
        res = SearchResult(math.inf, None)
        if restricted is not None:
            hint = geo.lam_at(restricted, geo.extent(theta, g))
            cap = saturation_radius(run.x, restricted, geo.lam_at(restricted, LAMBDA_CAP))
            res = run_alone(run.oracle, doubling_search(run, restricted, hint, cap, run.tol(self.settings.beta),
                                                        "regions"))
        if res.video is None:  # not adversarial up to where the ray saturates (or no answer): whole frames
            run.best = saved
            if not res.complete:
                sel.stage = "budget"
            return theta, g
        sel.regions, sel.salient = regions, True
        if not res.complete:
            sel.stage = "budget"
        return restricted, res.g

    def _bound_radius(self, run: Run, theta: Tensor, level: float, within_eps: bool) -> float:
        """The radius at which a frame set's unit direction ``theta`` must be adversarial
        to be accepted: the video's MAP ≤ ``level`` grey levels, and L∞ ≤ ε (the ray's
        L∞ extent) when the current set is already within ε."""
        geo = run.geometry
        radius = radius_for(run.x, theta, level, geo.lam_at(theta, LAMBDA_CAP))
        return min(radius, geo.lam_at(theta, run.eps)) if within_eps else radius

    def _select_frames(self, run: Run, sel: Selection, theta: Tensor, g: float) -> tuple[Tensor, float]:
        """Frame importance (side by side, phase ``importance``), then the greedy removal
        (phase ``removal``). ``theta``: the unit start direction on ``sel.regions``, ``g``
        its boundary radius. Returns the kept frames' direction and its ``g``."""
        x, s, geo = run.x, self.settings, run.geometry
        frames = x.shape[0]
        tol = run.tol(s.beta)

        def without(keep: Tensor) -> Tensor | None:
            """The start direction on the frames ``keep`` (bool ``(T,)``), unit in the geometry's norm."""
            return geo.unit(theta * keep.view(-1, 1, 1, 1).to(x.device))

        p_now = mean_absolute_perturbation(ray_video(x, theta, g), x)
        level0, within0 = max(s.bound, p_now), geo.extent(theta, g) <= run.eps
        sel.selection_start = {"g": g, "map": p_now}
        # -- importance: g and MAP of the start direction without each frame -----------------------
        probes: dict[int, Tensor] = {}
        for t in range(frames):
            keep = torch.ones(frames, dtype=torch.bool)
            keep[t] = False
            if (direction := without(keep)) is not None:
                probes[t] = direction
        order = list(probes)
        results = run_lockstep(run.oracle, [
            bounded_search(run, probes[t], self._bound_radius(run, probes[t], level0, within0), tol, "importance")
            for t in order])
        scores: dict[int, tuple[float, SearchResult]] = {}
        for t, res in zip(order, results):
            p_t = mean_absolute_perturbation(res.video, x) if res.complete and res.video is not None else None
            if p_t is not None:
                scores[t] = (p_t, res)
            sel.importance.append({"frame": t, "g": _finite(res.g) if res.complete else None, "map": p_t})
        if not all(r.complete for r in results):
            sel.stage = "budget"
            return theta, g
        # -- greedy removal, least important first ------------------------------------------------
        kept, best_theta = sel.kept, theta
        for t in sorted(scores, key=lambda f: (scores[f][0], f)):
            if int(kept.sum()) <= 1:
                break
            trial = kept.clone()
            trial[t] = False
            if bool(kept.all()):  # the first removal is the importance probe itself (same bound)
                direction, res = probes[t], scores[t][1]
            else:
                if (direction := without(trial)) is None:
                    continue
                radius = self._bound_radius(run, direction, max(s.bound, p_now),
                                            geo.extent(best_theta, g) <= run.eps)
                res = run_alone(run.oracle, bounded_search(run, direction, radius, tol, "removal"))
            # accepted: answered adversarial within the bound (a try the budget cut may still have been)
            accepted = res.video is not None
            p_trial = mean_absolute_perturbation(res.video, x) if accepted else None
            sel.removal.append({"frame": t, "accepted": accepted, "g": _finite(res.g) if res.complete else None,
                                "map": p_trial, "queries": run.oracle.used})
            if accepted:
                kept, best_theta, g, p_now = trial, direction, res.g, p_trial
                drop_outside(run, sel.regions & trial.view(-1, 1, 1, 1).to(x.device))
                run.offer(res.video, res.g)
            if not res.complete:
                sel.stage = "budget"
                break
        sel.kept = kept
        return best_theta, g

    # -- the optimisation ------------------------------------------------------------------------

    def directions(self, theta: Tensor, generator: torch.Generator) -> Tensor:
        """Opt-attack's RGF directions (:meth:`sva.attacks.opt.OptAttack.directions`)
        with every Gaussian ``u_i`` zeroed outside the kept frames × regions before its
        normalisation (L∞ or L2: the geometry), so ``θ`` stays zero there."""
        assert self._selection is not None, "directions are drawn after _start"
        support = self._selection.support.to(theta.dtype)
        return self.geometry.units_(torch.randn((self.settings.directions, *theta.shape), generator=generator,
                                                device=theta.device, dtype=theta.dtype).mul_(support))

    # -- the outcome -------------------------------------------------------------------------------

    def _outcome(self, run: Run, task: AttackTask, clean_label: int, stop: str, iterations: int,
                 trace: list[dict]) -> AttackOutcome:
        """ChengAttack's outcome with the kept frames as the mask (and the episode's
        ``frames``) — on a success, and on a failure with a ``fallback``, which lies on
        them too (:func:`drop_outside`) — and the selection under ``extra["heuristic"]``."""
        outcome = super()._outcome(run, task, clean_label, stop, iterations, trace)
        sel = self._selection
        if sel is None:
            return outcome
        kept = sel.kept.clone()
        if outcome.success or outcome.fallback is not None:  # the best video lies on the kept frames
            outcome.mask = kept
        outcome.episodes[0]["frames"] = kept.nonzero().flatten().tolist()
        outcome.extra = {"heuristic": sel.record(self.settings.region_ratio)}
        return outcome


__all__ = ["HeuristicAttack", "HeuristicSettings", "Selection", "bounded_search", "doubling_search", "radius_for",
           "salient_regions", "saturation_radius"]
