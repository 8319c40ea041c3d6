"""Opt-attack and Sign-OPT (``sva/attacks/opt.py``, ``docs/baselines.md``) on toy victims:
the search of g(θ) against the analytic boundary, query accounting and the budget,
the batching of the gradient directions, success in both modes, descent, stopping and
determinism — in both geometries (``geometry: linf``, the default, and ``l2``); and the
L∞ default computing exactly what it computed before the setting existed."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from sva.attacks import AttackContext, attack_classes, build_attack
from sva.attacks.base import AttackTask
from sva.attacks.opt import (GEOMETRIES, LAMBDA_CAP, TOL_FLOOR, ChengAttack, OptSettings, Run, SignOptSettings,
                             ray_video, unit, unit_l2)
from sva.attacks.settings import TargetedCfg, UntargetedCfg
from sva.blackbox.lockstep import run_alone
from sva.blackbox.oracle import Oracle
from toys import CountingVictim as Recorder
from toys import LinearVictim, SpyOracle, frame_zero_case, near_boundary_linear_case

METHODS = {"opt": OptSettings, "sign_opt": SignOptSettings}
GEOMETRY = ["linf", "l2"]
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


# -- the L2 geometry -----------------------------------------------------------------------------


@pytest.mark.parametrize("tol", [2e-6, 1e-3])
def test_l2_g_is_the_l2_radius_of_the_same_boundary(tol):
    """Along the same ray, g in L2 is g in L∞ times ‖θ∞‖₂ (θ∞ the L∞-unit direction):
    the boundary video is the same, only the radius is measured in another norm."""
    distance = 0.1
    model, x, theta = two_class_boundary(distance)
    theta2 = unit_l2(theta)
    expected = distance * float(theta.norm())
    oracle = Oracle(model, 10_000, mode="label")
    run = Run(oracle, AttackTask(x, 0), OptSettings(geometry="l2"), eps=0.05)
    assert run.geometry is GEOMETRIES["l2"]
    res = run_alone(oracle, run.search(theta2, 0.5 * expected, tol, "probe"))
    assert res.complete and expected - 1e-9 <= res.g <= expected + tol + 1e-9
    assert torch.equal(res.video, ray_video(x, theta2, res.g))
    assert int(model(res.video[None].double()).argmax()) == 1
    # the video's L∞ distance is the ray's L∞ extent g·‖θ₂‖∞ (no clipping here), ≈ the L∞ g
    assert float((res.video - x).abs().max()) == pytest.approx(run.geometry.extent(theta2, res.g), abs=1e-6)
    assert run.geometry.extent(theta2, res.g) == pytest.approx(distance, abs=tol)
    # kept as the best video, ranked by its L∞ distance
    assert run.best.linf == pytest.approx(float((res.video - x).abs().max()), abs=1e-12)


def test_l2_searches_stop_at_the_same_linf_extent():
    """A ray that never flips: the L2 search gives up where its L∞ extent passes
    LAMBDA_CAP, after as many queries as the L∞ search from the same extent."""
    model, x, _ = two_class_boundary(0.1)
    with torch.no_grad():
        away = torch.sign(model.w[0] - model.w[1]).view(SHAPE).float() * torch.rand(SHAPE)
    counts = {}
    for geometry in GEOMETRY:
        geo = GEOMETRIES[geometry]
        direction = geo.unit(away)
        oracle = Oracle(model, 10_000, mode="label")
        run = Run(oracle, AttackTask(x, 0), OptSettings(search_ratio=0.5, geometry=geometry), eps=0.05)
        res = run_alone(oracle, run.search(direction, geo.lam_at(direction, 0.1), 1e-4, "probe"))
        assert res.g == math.inf and res.video is None and res.complete
        counts[geometry] = oracle.used
    assert counts["l2"] == counts["linf"] == math.ceil(math.log(LAMBDA_CAP / 0.1) / math.log(1.5))


def test_the_geometries_convert_radii_and_extents():
    theta = torch.randn((3, *SHAPE), generator=torch.Generator().manual_seed(7))
    x = 0.3 + 0.4 * torch.rand(SHAPE, generator=torch.Generator().manual_seed(8))
    linf, l2 = GEOMETRIES["linf"], GEOMETRIES["l2"]
    assert torch.equal(linf.norms(theta), theta.abs().flatten(1).amax(1))
    assert torch.allclose(l2.norms(theta), theta.flatten(1).norm(dim=1))
    assert torch.allclose(l2.norms(l2.units_(theta.clone())), torch.ones(3))
    assert torch.allclose(linf.norms(linf.units_(theta.clone())), torch.ones(3))
    t2 = l2.unit(theta[0])
    assert float(t2.norm()) == pytest.approx(1.0) and l2.unit(torch.zeros(SHAPE)) is None
    lam = l2.lam_at(t2, 0.05)  # the L2 radius whose largest pixel change is 0.05
    assert l2.extent(t2, lam) == pytest.approx(0.05)
    assert float((ray_video(x, t2, lam) - x).abs().max()) == pytest.approx(0.05, abs=1e-6)
    assert linf.lam_at(t2, 0.05) == 0.05 and linf.extent(t2, 0.3) == 0.3 and linf.tol(t2, 1e-9) == 1e-9
    # the L2 bisection tolerance: the authors' value, but no step below TOL_FLOOR in pixels
    assert l2.tol(t2, 1e-3) == 1e-3
    assert l2.tol(t2, 1e-9) == pytest.approx(TOL_FLOOR / float(t2.abs().max()))


def test_both_geometries_check_the_same_start_videos():
    """The start checks each direction θ at x + θ (clipped) unless its L∞ extent exceeds
    the cap: the same videos in both geometries, only the radius differs."""
    thetas = torch.randn((4, *SHAPE), generator=torch.Generator().manual_seed(9))
    thetas[3] *= 30.0  # ‖θ‖∞ > LAMBDA_CAP: checked at the cap's extent
    x = 0.3 + 0.4 * torch.rand(SHAPE, generator=torch.Generator().manual_seed(10))
    videos = {}
    for geometry in GEOMETRY:
        geo = GEOMETRIES[geometry]
        norms = geo.norms(thetas)
        units = geo.units_(thetas.clone())
        lam0 = geo.start_radii(norms, units, LAMBDA_CAP)
        videos[geometry] = x[None] + lam0.view(-1, 1, 1, 1, 1) * units
        if geometry == "l2":
            assert torch.equal(lam0[:3], norms[:3])  # the authors' L2 start: x0 + θ
    assert torch.allclose(videos["l2"], videos["linf"], atol=1e-5)
    assert torch.allclose(videos["linf"][:3], x[None] + thetas[:3], atol=1e-6)
    assert float((videos["linf"][3] - x).abs().max()) == pytest.approx(LAMBDA_CAP)


def test_the_geometry_setting():
    for name in ("opt", "sign_opt", "heuristic"):
        settings = attack_classes()[name].Settings
        assert settings().geometry == "linf"  # the L∞ forms are the default
        assert settings(geometry="l2").geometry == "l2"
        with pytest.raises(ValueError):
            settings(geometry="l1")
    method = build_attack("sign_opt", AttackContext("untargeted", 0.05, UntargetedCfg()),
                          SignOptSettings(geometry="l2"))
    assert isinstance(method, ChengAttack) and method.geometry is GEOMETRIES["l2"]
    assert torch.allclose(method.direction_norms(torch.ones(2, 4)), torch.full((2,), 2.0))


# -- accounting and the budget ------------------------------------------------------------------


@pytest.mark.parametrize("geometry", GEOMETRY)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["untargeted", "targeted"])
@pytest.mark.parametrize("budget", [1, 150, 700])
def test_every_query_is_counted_and_the_budget_holds(method, mode, budget, geometry):
    out, oracle, recorder = attack(method, mode, linear_case(mode), budget, stop_at_eps=False, geometry=geometry)
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


@pytest.mark.parametrize("geometry", GEOMETRY)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode, eps", [("untargeted", 0.15), ("targeted", 0.25)])
def test_success_needs_the_optimisation_and_is_an_answered_video_within_eps(method, mode, eps, geometry):
    case = linear_case(mode)
    model, x, label, target, _ = case
    out, oracle, _ = attack(method, mode, case, 3000, eps=eps, geometry=geometry)
    episode = out.episodes[0]
    assert out.success and episode["stop"] == "eps"
    assert episode["trace"][0]["linf"] > eps  # the start alone was not enough
    assert episode["iterations"] >= 1
    # success is judged in L∞ in every geometry: the returned video's L∞ distance
    assert float((out.x_adv - x).abs().max()) <= eps
    assert episode["linf"] == pytest.approx(float((out.x_adv - x).abs().max()), abs=1e-7)
    # g is the ray's radius in the geometry's norm, at least the video's L∞ distance
    assert episode["g"] >= episode["linf"] - 1e-7
    goal = (lambda y: y == target) if target is not None else (lambda y: y != label)
    assert goal(int(model(out.x_adv[None]).argmax()))
    assert _answered_adversarial(oracle, out.x_adv, goal)
    assert out.mask.all() and out.best_episode == 0 and out.best_episode_queries <= out.queries
    assert out.queries < 3000  # stopped as soon as the criterion was met


@pytest.mark.parametrize("geometry", GEOMETRY)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["untargeted", "targeted"])
def test_the_near_boundary_toy_falls_in_both_modes(method, mode, geometry):
    case = frame_zero_case(mode)
    out, _, _ = attack(method, mode, case, 1000, batch_size=8, geometry=geometry)
    assert out.success and float((out.x_adv - case[1]).abs().max()) <= 0.05
    assert int(case[0](out.x_adv[None]).argmax()) == 1
    assert out.queries < 1000


@pytest.mark.parametrize("geometry", GEOMETRY)
@pytest.mark.parametrize("method", METHODS)
def test_the_distortion_decreases_over_iterations(method, geometry):
    out, _, _ = attack(method, "untargeted", linear_case("untargeted"), 3000, stop_at_eps=False, geometry=geometry)
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


@pytest.mark.parametrize("geometry", GEOMETRY)
@pytest.mark.parametrize("method", METHODS)
def test_the_same_seed_gives_the_same_outcome(method, geometry):
    case = linear_case("untargeted")
    first = attack(method, "untargeted", case, 1500, stop_at_eps=False, geometry=geometry)[0]
    second = attack(method, "untargeted", case, 1500, stop_at_eps=False, geometry=geometry)[0]
    other = attack(method, "untargeted", case, 1500, stop_at_eps=False, seed=1, geometry=geometry)[0]
    assert _same(first, second)
    assert first.episodes[0]["trace"] != other.episodes[0]["trace"]


# -- the default is the code as it was ----------------------------------------------------------------


def _recorded_case(case: str, mode: str):
    """The toys the records below were taken on: ``frame_zero`` and ``linear`` from
    ``tests/toys.py`` (8 frames), ``small`` = :func:`linear_case`."""
    if case == "small":
        return linear_case(mode)
    return frame_zero_case(mode, 8) if case == "frame_zero" else near_boundary_linear_case(mode, 8)


def _recorded_run(method: str, mode: str, case: str, budget: int, **settings):
    model, x, label, target, candidates = _recorded_case(case, mode)
    cfg = UntargetedCfg(budget=budget) if mode == "untargeted" else TargetedCfg(budget=budget)
    method_ = build_attack(method, AttackContext(mode, 0.05, cfg), attack_classes()[method].Settings(**settings))
    oracle = Oracle(model, budget, batch_size=8, mode="label")
    task = AttackTask(x, label, target, None, candidates, seed=0, seed_keys=("toy", method, mode, case))
    return method_(oracle, task)


#: (method, mode, toy, budget, settings) → (queries by phase, iterations, stop, L∞ of the best video), recorded
#: with the code before the ``geometry`` setting existed (sva/attacks/opt.py and heuristic.py of commit e364a7f)
RECORDED = [
    (("opt", "targeted", "linear", 1200, {}),
     ({"init": 65, "probe": 951, "search": 184}, 3, "budget", 0.5069713592529297)),
    (("sign_opt", "targeted", "linear", 1200, {}),
     ({"init": 65, "probe": 800, "search": 335}, 4, "budget", 0.1658497452735901)),
    (("opt", "untargeted", "small", 1500, {"stop_at_eps": False}),
     ({"init": 217, "probe": 1085, "search": 198}, 4, "budget", 0.13708621263504028)),
    (("sign_opt", "untargeted", "small", 1500, {"stop_at_eps": False}),
     ({"init": 202, "probe": 1000, "search": 285}, 5, "budget", 0.08367931842803955)),
    (("heuristic", "untargeted", "frame_zero", 1000, {}),
     ({"init": 144, "regions": 17, "importance": 120, "removal": 110, "probe": 220, "search": 125}, 1, "eps",
      0.0424843430519104)),
    (("heuristic", "targeted", "frame_zero", 1200, {}),
     ({"init": 25, "regions": 16, "importance": 113, "removal": 96}, 0, "eps", 0.03230893611907959)),
]


@pytest.mark.parametrize("run, expected", RECORDED, ids=["-".join(map(str, r[:3])) for r, _ in RECORDED])
def test_geometry_linf_is_the_default_and_the_code_as_it_was(run, expected):
    """``geometry: linf`` (given or not) computes exactly what opt, sign_opt and
    heuristic computed before the setting existed: the same outcome bit for bit with
    and without the setting, and the query counts recorded then."""
    method, mode, case, budget, settings = run
    default = _recorded_run(method, mode, case, budget, **settings)
    explicit = _recorded_run(method, mode, case, budget, geometry="linf", **settings)
    assert _same(default, explicit) and default.extra == explicit.extra
    assert (default.fallback is None) == (explicit.fallback is None)
    if default.fallback is not None:
        assert torch.equal(default.fallback, explicit.fallback)
    phases, iterations, stop, linf = expected
    episode = default.episodes[0]
    assert default.queries_by_phase == phases and default.queries == sum(phases.values())
    assert (episode["iterations"], episode["stop"]) == (iterations, stop)
    assert episode["linf"] == pytest.approx(linf, abs=1e-7)


def test_the_methods_are_registered_label_only():
    for name in METHODS:
        cls = build_attack(name, AttackContext("untargeted", 0.05, UntargetedCfg())).__class__
        assert cls.name == name and cls.oracle_mode == "label" and cls.modes == ("untargeted", "targeted")
    assert OptSettings().directions == 20 and SignOptSettings().directions == 200
