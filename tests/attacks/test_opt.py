"""Opt-attack and Sign-OPT (``sva/attacks/opt.py``, ``docs/baselines.md``) on toy victims:
the search of g(θ) against the analytic boundary, query accounting and the budget,
the batching of the gradient directions, success in both modes, descent, stopping and
determinism."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from sva.attacks import AttackContext, build_attack
from sva.attacks.base import AttackTask
from sva.attacks.opt import LAMBDA_CAP, OptSettings, Run, SignOptSettings, ray_video, unit
from sva.attacks.settings import TargetedCfg, UntargetedCfg
from sva.blackbox.lockstep import run_alone
from sva.blackbox.oracle import Oracle
from toys import CountingVictim as Recorder
from toys import LinearVictim, SpyOracle, frame_zero_case

METHODS = {"opt": OptSettings, "sign_opt": SignOptSettings}
SHAPE = (2, 3, 4, 4)  # a small video: the optimisation makes progress within a few thousand queries


def linear_case(mode: str, seed: int = 5):
    """A 4-class linear victim on a small video in [0.3, 0.7] (no clipping near the
    boundary), its label, a target and 5 target-class candidates."""
    model = LinearVictim(shape=SHAPE, classes=4, seed=seed)
    x = 0.3 + 0.4 * torch.rand(SHAPE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        label = int(model(x[None]).argmax())
        target = (label + 1) % 4
        pool = torch.rand(512, *SHAPE, generator=torch.Generator().manual_seed(1))
        candidates = pool[model(pool).argmax(1) == target][:5]
    return model, x, label, (target if mode == "targeted" else None), (candidates if mode == "targeted" else None)


def attack(method: str, mode: str, case, budget: int, eps: float = 0.05, batch_size: int = 64, seed: int = 0,
           **settings):
    """Run ``method`` on ``case``; returns (outcome, oracle, recorder)."""
    model, x, label, target, candidates = case
    cfg = UntargetedCfg(budget=budget) if mode == "untargeted" else TargetedCfg(budget=budget)
    method_ = build_attack(method, AttackContext(mode, eps, cfg), METHODS[method](**settings))
    recorder = Recorder(model)
    oracle = SpyOracle(recorder, budget, batch_size=batch_size, mode="label")
    task = AttackTask(x, label, target, None, candidates, seed=seed, seed_keys=("toy", method, mode))
    return method_(oracle, task), oracle, recorder


# -- g(θ) ---------------------------------------------------------------------------------------


def two_class_boundary(distance: float):
    """A float64 two-class linear victim, a clean video ``x`` of class 0 and a unit
    direction ``θ`` along which the boundary lies exactly ``distance`` away (no pixel
    leaves [0, 1] before it)."""
    model = LinearVictim(shape=SHAPE, classes=2, seed=3).double()
    x = 0.3 + 0.4 * torch.rand(SHAPE, generator=torch.Generator().manual_seed(4))
    theta = unit(torch.randn(SHAPE, generator=torch.Generator().manual_seed(5)))
    with torch.no_grad():
        dw = (model.w[0] - model.w[1]).view(SHAPE)
        if float((dw.double() * theta.double()).sum()) > 0:
            theta = -theta
        slope = float((dw.double() * theta.double()).sum())  # margin change per unit λ, < 0
        # margin(x + λθ) = dw·x + b0 − b1 + λ·slope: put its zero at λ = distance
        model.b[0] = -float((dw.double() * x.double()).sum()) - distance * slope
        model.b[1] = 0.0
    return model, x, theta


@pytest.mark.parametrize("hint", [0.02, 0.1, 0.1005, 0.3])
@pytest.mark.parametrize("tol", [2e-6, 1e-3])
def test_g_matches_the_analytic_boundary_distance(hint, tol):
    distance = 0.1
    model, x, theta = two_class_boundary(distance)
    oracle = Oracle(Recorder(model), 10_000, mode="label")
    run = Run(oracle, AttackTask(x, 0), OptSettings(), eps=0.05)
    res = run_alone(oracle, run.search(theta, hint, tol, "probe"))
    assert res.complete
    # g is the upper end of the last bracket: the boundary lies within tol below it
    assert distance - 1e-9 <= res.g <= distance + tol + 1e-9
    # the video returned with it is the one the oracle answered adversarial at λ = g
    assert torch.equal(res.video, ray_video(x, theta, res.g))
    assert int(model(res.video[None].double()).argmax()) == 1
    assert float((res.video - x).abs().max()) <= res.g + 1e-6
    assert oracle.used == oracle.used_by_phase["probe"]
    # the start search (bisection from 0, beating the best so far) finds the same g
    oracle2 = Oracle(model, 10_000, mode="label")
    run2 = Run(oracle2, AttackTask(x, 0), OptSettings(), eps=0.05)
    res2 = run_alone(oracle2, run2.start_search(theta, 0.5, ray_video(x, theta, 0.5), math.inf, tol))
    assert distance - 1e-9 <= res2.g <= distance + tol + 1e-9


def test_a_bounded_search_stops_at_one_query_when_it_cannot_improve():
    model, x, theta = two_class_boundary(0.1)
    oracle = Oracle(model, 100, mode="label")
    run = Run(oracle, AttackTask(x, 0), OptSettings(), eps=0.05)
    res = run_alone(oracle, run.search(theta, 0.05, 1e-4, "search", bound=True))
    assert res.g == math.inf and res.complete and oracle.used == 1
    # below the hint the bound changes nothing: the exact g is searched
    res = run_alone(oracle, run.search(theta, 0.2, 1e-4, "search", bound=True))
    assert 0.1 - 1e-9 <= res.g <= 0.1 + 1e-4


def test_a_ray_that_never_flips_has_g_infinite():
    model, x, _ = two_class_boundary(0.1)
    with torch.no_grad():  # every pixel moves the margin away from the boundary, even once clipped
        away = unit(torch.sign(model.w[0] - model.w[1]).view(SHAPE).float() * torch.rand(SHAPE))
    oracle = Oracle(model, 10_000, mode="label")
    run = Run(oracle, AttackTask(x, 0), OptSettings(search_ratio=0.5), eps=0.05)
    res = run_alone(oracle, run.search(away, 0.1, 1e-4, "probe"))
    assert res.g == math.inf and res.video is None and res.complete
    assert oracle.used == math.ceil(math.log(LAMBDA_CAP / 0.1) / math.log(1.5))


def test_a_search_the_budget_cuts_returns_its_upper_bound():
    model, x, theta = two_class_boundary(0.1)
    oracle = Oracle(model, 5, mode="label")
    run = Run(oracle, AttackTask(x, 0), OptSettings(), eps=0.05)
    res = run_alone(oracle, run.search(theta, 0.2, 1e-6, "probe"))
    assert not res.complete and oracle.used == 5
    assert 0.1 <= res.g < 0.2 and torch.equal(res.video, ray_video(x, theta, res.g))


# -- accounting and the budget ------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["untargeted", "targeted"])
@pytest.mark.parametrize("budget", [1, 150, 700])
def test_every_query_is_counted_and_the_budget_holds(method, mode, budget):
    out, oracle, recorder = attack(method, mode, linear_case(mode), budget, stop_at_eps=False)
    assert recorder.videos == oracle.used == out.queries <= budget
    assert sum(out.queries_by_phase.values()) == out.queries
    assert set(out.queries_by_phase) <= {"init", "probe", "search"}
    episode = out.episodes[0]
    assert episode["stop"] == "budget" and episode["queries"] == out.queries
    if budget > 1:  # the first look and the start's batch fit; searches spend to the last query
        q = METHODS[method]().directions
        assert budget - out.queries < (q if method == "sign_opt" else 1)
    model, x, label, target, _ = linear_case(mode)
    assert not out.success and torch.equal(out.x_adv, x)
    if out.fallback is None:  # nothing adversarial was answered
        assert not out.mask.any()
    else:  # the closest answered adversarial video (beyond ε) is kept for the mean reading, on every frame
        assert out.mask.all() and out.fallback.shape == x.shape and out.fallback.dtype == torch.float32
        d = float((out.fallback - x).abs().max())
        assert d == pytest.approx(out.episodes[0]["linf"]) and d > 0.05
        with torch.no_grad():
            y = int(model(out.fallback[None]).argmax())
        assert y == target if target is not None else y != label


# -- batching -----------------------------------------------------------------------------------


def test_the_opt_directions_reach_the_oracle_side_by_side():
    q = OptSettings().directions
    out, oracle, recorder = attack("opt", "untargeted", linear_case("untargeted"), 2000, batch_size=64,
                                   stop_at_eps=False)
    probe_calls = [len(v) for phase, v, _ in oracle.calls if phase == "probe"]
    # each round of the q searches is one oracle call: the first has all q directions
    assert max(probe_calls) == q and probe_calls[0] == q
    assert len(probe_calls) < out.queries_by_phase["probe"] / 4
    assert q in recorder.forwards  # the victim itself sees the q videos in one forward
    # the sequential parts ask one video at a time
    assert {len(v) for phase, v, _ in oracle.calls if phase == "search"} == {1}


def test_the_sign_opt_probes_are_one_batch():
    big_q = SignOptSettings().directions
    out, oracle, recorder = attack("sign_opt", "untargeted", linear_case("untargeted"), 2000, batch_size=64,
                                   stop_at_eps=False)
    probe_calls = [len(v) for phase, v, _ in oracle.calls if phase == "probe"]
    assert probe_calls and set(probe_calls) == {big_q}
    assert out.queries_by_phase["probe"] == big_q * len(probe_calls)
    assert max(recorder.forwards) == 64  # the oracle's batch size
    assert len(out.episodes[0]["trace"]) - 1 == len(probe_calls)  # one estimate per iteration


# -- success, descent, stopping --------------------------------------------------------------------


def _answered_adversarial(oracle: SpyOracle, video: torch.Tensor, adversarial) -> bool:
    """``video`` is one the oracle was asked about and answered as adversarial."""
    for _, videos, labels in oracle.calls:
        for v, label in zip(videos, labels.tolist()):
            if torch.equal(v, video) and adversarial(label):
                return True
    return False


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode, eps", [("untargeted", 0.15), ("targeted", 0.25)])
def test_success_needs_the_optimisation_and_is_an_answered_video_within_eps(method, mode, eps):
    case = linear_case(mode)
    model, x, label, target, _ = case
    out, oracle, _ = attack(method, mode, case, 3000, eps=eps)
    episode = out.episodes[0]
    assert out.success and episode["stop"] == "eps"
    assert episode["trace"][0]["g"] > eps  # the start alone was not enough
    assert episode["iterations"] >= 1
    assert float((out.x_adv - x).abs().max()) <= eps
    goal = (lambda y: y == target) if target is not None else (lambda y: y != label)
    assert goal(int(model(out.x_adv[None]).argmax()))
    assert _answered_adversarial(oracle, out.x_adv, goal)
    assert out.mask.all() and out.best_episode == 0 and out.best_episode_queries <= out.queries
    assert out.queries < 3000  # stopped as soon as the criterion was met


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["untargeted", "targeted"])
def test_the_near_boundary_toy_falls_in_both_modes(method, mode):
    case = frame_zero_case(mode)
    out, _, _ = attack(method, mode, case, 1000, batch_size=8)
    assert out.success and float((out.x_adv - case[1]).abs().max()) <= 0.05
    assert int(case[0](out.x_adv[None]).argmax()) == 1
    assert out.queries < 1000


@pytest.mark.parametrize("method", METHODS)
def test_the_distortion_decreases_over_iterations(method):
    out, _, _ = attack(method, "untargeted", linear_case("untargeted"), 3000, stop_at_eps=False)
    trace = out.episodes[0]["trace"]
    gs = [e["g"] for e in trace]
    assert len(gs) > 5
    assert all(b <= a for a, b in itertools.pairwise(gs))  # every accepted step improves g
    assert gs[-1] < 0.6 * gs[0]
    assert [e["queries"] for e in trace] == sorted(e["queries"] for e in trace)


@pytest.mark.parametrize("method", METHODS)
def test_stop_at_eps_trades_queries_for_distortion(method):
    case = linear_case("untargeted")
    stop, _, _ = attack(method, "untargeted", case, 3000, eps=0.2)
    going, _, _ = attack(method, "untargeted", case, 3000, eps=0.2, stop_at_eps=False)
    assert stop.success and going.success
    assert stop.queries < going.queries <= 3000
    assert going.episodes[0]["linf"] < stop.episodes[0]["linf"] <= 0.2
    assert going.best_episode_queries > stop.best_episode_queries


def test_a_clean_video_already_misclassified_costs_one_query():
    model, x, label, _, _ = linear_case("untargeted")
    out, _, _ = attack("sign_opt", "untargeted", (model, x, (label + 1) % 4, None, None), 100)
    assert out.success and out.queries == 1 and torch.equal(out.x_adv, x)
    assert out.episodes[0]["stop"] == "clean"


def test_no_adversarial_start_is_a_failure():
    model, x, label, target, _ = linear_case("targeted")
    out, _, _ = attack("opt", "targeted", (model, x, label, target, None), 100)
    assert not out.success and out.queries == 1 and out.episodes[0]["stop"] == "init"
    assert torch.equal(out.x_adv, x) and not out.mask.any() and out.best_episode is None


# -- determinism ---------------------------------------------------------------------------------


def _same(a, b) -> bool:
    return (torch.equal(a.x_adv, b.x_adv) and a.success == b.success and a.queries == b.queries
            and a.queries_by_phase == b.queries_by_phase and a.episodes == b.episodes
            and a.best_episode_queries == b.best_episode_queries)


@pytest.mark.parametrize("method", METHODS)
def test_the_same_seed_gives_the_same_outcome(method):
    case = linear_case("untargeted")
    first = attack(method, "untargeted", case, 1500, stop_at_eps=False)[0]
    second = attack(method, "untargeted", case, 1500, stop_at_eps=False)[0]
    other = attack(method, "untargeted", case, 1500, stop_at_eps=False, seed=1)[0]
    assert _same(first, second)
    assert first.episodes[0]["trace"] != other.episodes[0]["trace"]


def test_the_methods_are_registered_label_only():
    for name in METHODS:
        cls = build_attack(name, AttackContext("untargeted", 0.05, UntargetedCfg())).__class__
        assert cls.name == name and cls.oracle_mode == "label" and cls.modes == ("untargeted", "targeted")
    assert OptSettings().directions == 20 and SignOptSettings().directions == 200
