"""Our Sign-OPT against the reference implementation in the Adversarial Robustness
Toolbox (``art.attacks.evasion.SignOPTAttack``), on the same victim, inputs, budget and
queries: the reusable part of ``benchmarks/art_reference.py`` (its test:
``tests/benchmarks/test_art_reference.py``).

Every query of both attacks goes through one :class:`~sva.blackbox.oracle.Oracle` per
video, in ``label`` mode, with the same budget:

* ours receives the oracle, as in the pipeline;
* ART receives a ``BlackBoxClassifier`` whose predict function asks the oracle
  (:class:`OracleClassifier`) and answers one-hot top-1 labels. ART counts queries
  itself and checks its ``query_limit`` only after each iteration (and misses some
  queries in its count); the oracle is what bounds it. A call the oracle refuses
  (``BudgetExhausted``) is answered with the clean class, i.e. "not adversarial",
  without evaluating anything: a refused query can never lower ART's distortion,
  ART's own count passes ``query_limit`` within an iteration, and it stops. The
  refused videos are reported.

What each attack reached is measured outside it, the same way for both: the victim is
wrapped in :class:`QueryLog`, which sees every video the oracle evaluates (its count
equals ``oracle.used``) and keeps, per answered query, whether it was adversarial and
its L∞ and L2 distance to the clean video. From that log: the best adversarial video
answered within the first ``c`` queries (per norm) at checkpoints of the budget, and
the first query that was adversarial within ε in L∞. The video each attack *returns*
is checked on the victim directly (uncounted, as the evaluator does).

Norms. ART's Sign-OPT is L2 only (θ, the probe directions u and g(θ) are all in L2;
``art/attacks/evasion/sign_opt.py`` has no norm parameter). Ours (``sign_opt``) is L∞
by default and L2 with its setting ``geometry: l2``. So three attacks are compared:

* ``ours``: our ``sign_opt`` exactly as the project runs it (L∞), except
  ``stop_at_eps: false`` so that it spends the whole budget as ART does;
* ``art``: ART's ``SignOPTAttack`` with its defaults (which equal ours: 100 start
  directions, k = Q = 200 probes, α = 0.2, smoothing 0.001 — ART's ``epsilon`` —,
  tolerance 0.001/500 — ART's ``beta``/500 —), ``max_iter`` unbounded and
  ``query_limit`` = the budget;
* ``ours_l2``: our ``sign_opt`` with ``geometry: l2`` (``docs/baselines.md``, "L2
  geometry"), otherwise as ``ours``: θ, the probes and g(θ) in L2, the start checked
  at ``x + θ`` and normalised in L2. Like every geometry of the project's method it
  returns the answered adversarial video closest in **L∞** (the success criterion's
  norm); ART returns its closest in L2.
  ``ours_l2`` against ``art`` is the like-for-like (same norm) check of the
  implementation; ``ours`` against ``art`` answers the project's question (on the L∞
  criterion, would ART's Sign-OPT be the stronger baseline?).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from sva.attacks.base import AttackTask
from sva.attacks.opt import SignOptAttack, SignOptSettings
from sva.attacks.settings import AttackContext, UntargetedCfg
from sva.blackbox.oracle import BudgetExhausted, Oracle
from sva.evaluation.metrics import linf, mean_absolute_perturbation

METHODS = ("ours", "art", "ours_l2")
CHECKPOINTS = (0.25, 0.5, 1.0)


# -- the victim, and the log of what it was asked --------------------------------------------------


class Standardized(nn.Module):
    """``(inner(v) − mean) / std`` per logit: a fixed affine map on a victim's output.

    A victim with random weights answers one class for every input (its logits vary by
    ~1e-4 across inputs around per-class offsets ~1e-3): no untargeted attack can
    start. Standardising each logit over a few calibration videos leaves a fixed,
    deterministic classifier whose labels vary with the input, so decision boundaries
    are within reach. Both attacks see the same one.
    """

    def __init__(self, inner: nn.Module, calibration: Tensor):
        super().__init__()
        self.inner = inner.eval()
        with torch.inference_mode():
            z = inner(calibration).double()
        self.register_buffer("mean", z.mean(0).float())
        self.register_buffer("std", z.std(0).clamp_min(1e-12).float())

    def forward(self, videos: Tensor) -> Tensor:
        return (self.inner(videos) - self.mean) / self.std


class LinearVideoVictim(nn.Module):
    """A random linear classifier over the whole video (``tests/toys.py``'s
    ``LinearVictim`` at any size): ``logits = W·vec(v) + b``, ``W`` Gaussian
    × ``scale / √n``. Its minimal adversarial distances are known (:func:`linear_optimum`)."""

    def __init__(self, shape: tuple[int, ...], classes: int, seed: int = 0, scale: float = 3.0):
        super().__init__()
        n = math.prod(shape)
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(classes, n, generator=g) * scale / n**0.5)
        self.b = nn.Parameter(torch.zeros(classes))

    def forward(self, videos: Tensor) -> Tensor:
        return videos.flatten(1) @ self.w.T + self.b


def linear_optimum(weight: Tensor, bias: Tensor, x: Tensor, label: int) -> tuple[float, float]:
    """For the linear classifier ``weight`` ``(C, n)``, ``bias`` ``(C,)`` and the clean
    video ``x`` of class ``label``: the smallest L∞ distance of a video in [0, 1] that
    is not classified ``label`` (exact up to 1e-12, by bisection on the radius: within
    radius ``r`` the largest gain of class ``j`` over ``label`` is a sum over pixels),
    and the smallest L2 distance ignoring the [0, 1] clip (a lower bound:
    margin / ‖Δw‖₂). Float64; a tie counts as adversarial."""
    w, b, v = weight.detach().double(), bias.detach().double(), x.detach().double().flatten()
    z = w @ v + b
    best_inf = best_2 = math.inf
    for j in range(w.shape[0]):
        if j == label:
            continue
        dw, margin = w[j] - w[label], float(z[label] - z[j])
        best_2 = min(best_2, margin / float(dw.norm()))
        if _gain(dw, v, 1.0) < margin:
            continue  # class j cannot win anywhere in the video range
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if _gain(dw, v, mid) >= margin else (mid, hi)
        best_inf = min(best_inf, hi)
    return best_inf, best_2


def _gain(dw: Tensor, v: Tensor, r: float) -> float:
    """The largest ``dw·(v' − v)`` over videos ``v'`` in [0, 1] within L∞ radius ``r`` of ``v``."""
    up, down = (v + r).clamp(max=1.0) - v, (v - r).clamp(min=0.0) - v
    return float(torch.maximum(dw * up, dw * down).sum())


class QueryLog(nn.Module):
    """The victim, logging every video it evaluates for one clean video ``x`` (label
    ``label``): per query, adversarial (top-1 ≠ ``label``), the L∞ / L2 distance to
    ``x`` and the MAP (mean |δ| × 255), float64. The oracle evaluates exactly the videos it counts, so
    ``count == oracle.used``."""

    def __init__(self, inner: nn.Module, x: Tensor, label: int):
        super().__init__()
        self.inner = inner
        self.x = x.detach().double().flatten()
        self.label = int(label)
        self.adv: list[bool] = []
        self.linf: list[float] = []
        self.l2: list[float] = []
        self.map: list[float] = []

    @property
    def count(self) -> int:
        return len(self.adv)

    def forward(self, videos: Tensor) -> Tensor:
        logits = self.inner(videos)
        labels = logits.detach().double().max(dim=-1).indices.cpu()  # the oracle's top-1 (ties: lowest)
        d = videos.detach().double().flatten(1).cpu() - self.x
        self.adv += (labels != self.label).tolist()
        self.linf += d.abs().amax(dim=1).tolist()
        self.l2 += d.norm(dim=1).tolist()
        self.map += (d.abs().mean(dim=1) * 255.0).tolist()
        return logits

    def best(self, queries: int, norm: str) -> float:
        """The smallest ``norm`` ('linf' | 'l2') distance of an adversarial video among
        the first ``queries`` answered; ``inf`` when none was adversarial."""
        dist = self.linf if norm == "linf" else self.l2
        return min((d for a, d in zip(self.adv[:queries], dist[:queries]) if a), default=math.inf)

    def first_within(self, eps: float) -> int | None:
        """The 1-based query count at which a video adversarial within ``eps`` (L∞) was
        first answered, or ``None``."""
        for i, (a, d) in enumerate(zip(self.adv, self.linf)):
            if a and d <= eps:
                return i + 1
        return None


# -- ART's classifier around our oracle -------------------------------------------------------------


class OracleClassifier:
    """An ART ``BlackBoxClassifier`` (``self.classifier``) whose every prediction is an
    oracle query: ``predict_fn`` sends ART's batch ``(N, T, 3, H, W)`` to ``oracle``
    and answers one-hot top-1 labels (float32 ``(N, classes)``).

    A batch the oracle refuses (``BudgetExhausted``: nothing evaluated, nothing counted)
    is answered as ``refused_label`` — the clean class, "not adversarial" — and counted
    in ``refused`` (videos) and ``refused_calls``. ``answered`` counts the videos the
    oracle answered (equals ``oracle.used``).
    """

    def __init__(self, oracle: Oracle, input_shape: tuple[int, ...], classes: int, refused_label: int):
        from art.estimators.classification import BlackBoxClassifier

        self.oracle, self.classes, self.refused_label = oracle, int(classes), int(refused_label)
        self.answered = self.refused = self.refused_calls = 0
        self.classifier = BlackBoxClassifier(self.predict_fn, tuple(input_shape), self.classes,
                                             clip_values=(0.0, 1.0))

    def predict_fn(self, batch: np.ndarray) -> np.ndarray:
        n = int(batch.shape[0])
        try:
            labels = self.oracle.query(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).labels
            self.answered += n
        except BudgetExhausted:
            self.refused += n
            self.refused_calls += 1
            labels = torch.full((n,), self.refused_label, dtype=torch.long)
        out = np.zeros((n, self.classes), dtype=np.float32)
        out[np.arange(n), labels.numpy()] = 1.0
        return out


# -- distances ------------------------------------------------------------------------------------


def l2_distance(x_adv: Tensor, x: Tensor) -> float:
    """The L2 distance of ``x_adv`` to ``x`` (float64; both float ``(T, 3, H, W)``)."""
    return float((x_adv.double() - x.double()).norm())


# -- one attack on one video -----------------------------------------------------------------------


@dataclass
class Result:
    """One attack on one video. ``queries``: the oracle's count (all phases);
    ``refused``: videos the oracle refused (ART asking past the budget; 0 for ours);
    ``returned_*``: the video the attack returned, checked on the victim directly
    (``adversarial``: top-1 ≠ the clean label; distances to the clean video, MAP on the
    0–255 scale, all ``inf`` when it is not adversarial; ``success``: adversarial and
    L∞ ≤ ε); ``best_linf`` / ``best_l2``:
    checkpoint (fraction of the budget) → the closest adversarial video answered within
    that many queries, per norm (``inf``: none); ``queries_to_eps``: the first query
    answered adversarial within ε in L∞, and ``map_at_eps`` that video's MAP (what a
    run that stops at ε, as the pipeline's ``stop_at_eps`` does, is judged by); ``stop``: why it stopped (ours) or ``-``."""

    method: str
    video: int
    label: int
    queries: int
    refused: int
    returned_adversarial: bool
    returned_linf: float
    returned_l2: float
    returned_map: float
    success: bool
    queries_to_eps: int | None
    map_at_eps: float | None
    best_linf: dict[float, float] = field(default_factory=dict)
    best_l2: dict[float, float] = field(default_factory=dict)
    stop: str = "-"
    phases: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _label(model: nn.Module, video: Tensor) -> int:
    with torch.inference_mode():
        return int(model(video[None]).double().max(dim=-1).indices[0])


def _result(method: str, index: int, model: nn.Module, log: QueryLog, oracle: Oracle, x: Tensor, label: int,
            returned: Tensor, eps: float, budget: int, checkpoints: Sequence[float], refused: int, stop: str,
            seconds: float) -> Result:
    adversarial = _label(model, returned) != label
    reach = log.first_within(eps)
    # a returned video that is not adversarial (no start found) reached nothing: inf
    d_inf, d_2, d_map = ((linf(returned, x), l2_distance(returned, x), mean_absolute_perturbation(returned, x))
                         if adversarial else (math.inf, math.inf, math.inf))
    return Result(
        method=method, video=index, label=label, queries=oracle.used, refused=refused,
        returned_adversarial=adversarial, returned_linf=d_inf, returned_l2=d_2,
        returned_map=d_map, success=adversarial and d_inf <= eps,
        queries_to_eps=reach, map_at_eps=None if reach is None else log.map[reach - 1],
        best_linf={c: log.best(round(c * budget), "linf") for c in checkpoints},
        best_l2={c: log.best(round(c * budget), "l2") for c in checkpoints},
        stop=stop, phases=oracle.used_by_phase, seconds=seconds)


def run_ours(model: nn.Module, x: Tensor, label: int, budget: int, *, norm: str = "linf", eps: float = 0.05,
             seed: int = 0, index: int = 0, batch_size: int = 16, checkpoints: Sequence[float] = CHECKPOINTS,
             settings: SignOptSettings | None = None) -> Result:
    """Our ``sign_opt`` on one video, untargeted, with ``geometry`` = ``norm``
    (``'linf'``: the project's default; ``'l2'``: ``ours_l2``) and ``stop_at_eps: false``
    unless ``settings`` say otherwise (their ``geometry`` is replaced by ``norm``)."""
    log = QueryLog(model, x, label)
    oracle = Oracle(log, budget, batch_size=batch_size, mode="label")
    # ε = ∞ in the context: the attack returns its closest video whatever its distance;
    # success at the project's ε is decided here, on the returned video
    context = AttackContext("untargeted", math.inf, UntargetedCfg(budget=budget))
    base = settings or SignOptSettings(stop_at_eps=False)
    attack = SignOptAttack(context, SignOptSettings(**{**base.model_dump(), "geometry": norm}))
    task = AttackTask(x, int(label), seed=seed, seed_keys=("art_reference", norm, index))
    t0 = time.perf_counter()
    outcome = attack(oracle, task)
    seconds = time.perf_counter() - t0
    method = "ours" if norm == "linf" else "ours_l2"
    return _result(method, index, model, log, oracle, x, label, outcome.x_adv, eps, budget, checkpoints, 0,
                   outcome.episodes[0]["stop"], seconds)


def art_attack(classifier, budget: int, **overrides):
    """ART's ``SignOPTAttack`` untargeted, its defaults, unbounded iterations,
    ``query_limit`` = the budget."""
    from art.attacks.evasion import SignOPTAttack

    kwargs = {"targeted": False, "epsilon": 0.001, "num_trial": 100, "max_iter": 10**9, "query_limit": budget,
              "k": 200, "alpha": 0.2, "beta": 0.001, "batch_size": 64, "verbose": False}
    kwargs.update(overrides)
    return SignOPTAttack(classifier, **kwargs)


def run_art(model: nn.Module, x: Tensor, label: int, budget: int, classes: int, *, eps: float = 0.05,
            seed: int = 0, index: int = 0, batch_size: int = 16, checkpoints: Sequence[float] = CHECKPOINTS,
            **overrides) -> Result:
    """ART's Sign-OPT on one video through our oracle (``generate`` with the true label
    given, so ART spends one query on the clean video, as ours does). ART draws from
    NumPy's global generator: seeded here, and restored afterwards."""
    log = QueryLog(model, x, label)
    oracle = Oracle(log, budget, batch_size=batch_size, mode="label")
    wrapper = OracleClassifier(oracle, tuple(x.shape), classes, refused_label=label)
    attack = art_attack(wrapper.classifier, budget, **overrides)
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    t0 = time.perf_counter()
    try:
        adv = attack.generate(x.numpy()[None].astype(np.float32), y=np.array([int(label)]))
    finally:
        np.random.set_state(state)
    seconds = time.perf_counter() - t0
    assert wrapper.answered == oracle.used == log.count
    return _result("art", index, model, log, oracle, x, label, torch.from_numpy(adv[0]), eps, budget, checkpoints,
                   wrapper.refused, "-", seconds)


# -- the comparison ---------------------------------------------------------------------------------


def compare(model: nn.Module, videos: Tensor, labels: Sequence[int], budget: int, classes: int, *,
            eps: float = 0.05, methods: Sequence[str] = METHODS, seed: int = 0, batch_size: int = 16,
            checkpoints: Sequence[float] = CHECKPOINTS, progress=None) -> list[Result]:
    """Every method in ``methods`` on every video ``(N, T, 3, H, W)`` with its (clean)
    label, each with a fresh oracle of ``budget`` queries. ``progress``: called with
    each result."""
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    results = []
    for i, (x, label) in enumerate(zip(videos, labels)):
        for method in methods:
            common = {"eps": eps, "seed": seed + i, "index": i, "batch_size": batch_size, "checkpoints": checkpoints}
            if method == "art":
                r = run_art(model, x, int(label), budget, classes, **common)
            else:
                r = run_ours(model, x, int(label), budget, norm="linf" if method == "ours" else "l2", **common)
            results.append(r)
            if progress is not None:
                progress(r)
    return results


def summarize(results: Sequence[Result]) -> dict[str, dict]:
    """Per method: videos, successes, and the median of every number (``inf`` counts as
    the largest value; ``queries_to_eps`` over the videos that reached ε)."""
    out: dict[str, dict] = {}
    for method in dict.fromkeys(r.method for r in results):
        rs = [r for r in results if r.method == method]
        reach = [r.queries_to_eps for r in rs if r.queries_to_eps is not None]
        out[method] = {
            "videos": len(rs),
            "success": sum(r.success for r in rs),
            "adversarial": sum(r.returned_adversarial for r in rs),
            "queries": statistics.median(r.queries for r in rs),
            "refused": statistics.median(r.refused for r in rs),
            "returned_linf": statistics.median(r.returned_linf for r in rs),
            "returned_l2": statistics.median(r.returned_l2 for r in rs),
            "returned_map": statistics.median(r.returned_map for r in rs),
            "queries_to_eps": statistics.median(reach) if reach else None,
            "reached_eps": len(reach),
            "map_at_eps": statistics.median(r.map_at_eps for r in rs if r.map_at_eps is not None) if reach else None,
            "best_linf": {c: statistics.median(r.best_linf[c] for r in rs) for c in rs[0].best_linf},
            "best_l2": {c: statistics.median(r.best_l2[c] for r in rs) for c in rs[0].best_l2},
            "seconds": statistics.median(r.seconds for r in rs),
        }
    return out


def paired(results: Sequence[Result], a: str, b: str, key: str) -> tuple[int, int]:
    """Over the videos both ``a`` and ``b`` attacked: on how many ``a``'s ``key`` (a
    ``Result`` field, lower is better) is at most ``b``'s; returns (that, videos)."""
    by = {(r.method, r.video): getattr(r, key) for r in results}
    videos = sorted({r.video for r in results if (a, r.video) in by and (b, r.video) in by})
    return sum(by[(a, v)] <= by[(b, v)] for v in videos), len(videos)


def as_dict(result: Result) -> dict:
    """A JSON-able dict of ``result`` (checkpoint keys as strings, ``inf`` as ``None``)."""
    d = asdict(result)
    for key in ("returned_linf", "returned_l2", "returned_map"):
        d[key] = d[key] if math.isfinite(d[key]) else None
    for key in ("best_linf", "best_l2"):
        d[key] = {str(c): (v if math.isfinite(v) else None) for c, v in d[key].items()}
    return d


__all__ = ["CHECKPOINTS", "METHODS", "LinearVideoVictim", "OracleClassifier", "QueryLog", "Result", "Standardized",
           "art_attack", "as_dict", "compare", "l2_distance", "linear_optimum", "paired", "run_art", "run_ours",
           "summarize"]
