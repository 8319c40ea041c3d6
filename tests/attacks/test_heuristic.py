"""Heuristic-attack (``sva/attacks/heuristic.py``, ``docs/baselines.md``) on toy victims:
the frames it keeps, the salient regions the perturbation stays in, query accounting
and the budget at every stage, the batching of the importance probes, the removal's
bound, success in both modes and determinism."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sva.attacks import AttackContext, build_attack
from sva.attacks.base import AttackTask
from sva.attacks.heuristic import HeuristicSettings, radius_for, salient_regions, saturation_radius
from sva.attacks.opt import GEOMETRIES, LAMBDA_CAP, ray_video, unit
from sva.attacks.settings import TargetedCfg, UntargetedCfg
from sva.evaluation.metrics import mean_absolute_perturbation
from toys import CountingVictim as Recorder
from toys import SpyOracle, near_boundary_linear_case
from toys import frame_zero_case as _frame_zero_case

T = 8
def frame_zero_case(mode: str):
    return _frame_zero_case(mode, T)


def linear_case(mode: str = "untargeted"):
    return near_boundary_linear_case(mode, T)


PHASES = {"init", "regions", "importance", "removal", "probe", "search"}


class CornerVictim(nn.Module):
    """Two classes decided by one pixel of frame 0 (bottom-right corner, all channels):
    class 0 while it is brighter than ``threshold``."""

    def __init__(self, threshold: float = 0.29, k: float = 400.0):
        super().__init__()
        self.threshold, self.k = threshold, k
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        s = self.k * (videos[:, 0, :, -1, -1].mean(dim=1) - self.threshold) + 0 * self.dummy
        return torch.stack([s, -s], dim=1)


def attack(mode: str, case, budget: int, eps: float = 0.05, batch_size: int = 64, seed: int = 0, **settings):
    """Run Heuristic-attack on ``case``; returns (outcome, oracle, recorder)."""
    model, x, label, target, candidates = case
    cfg = UntargetedCfg(budget=budget) if mode == "untargeted" else TargetedCfg(budget=budget)
    method = build_attack("heuristic", AttackContext(mode, eps, cfg), HeuristicSettings(**settings))
    recorder = Recorder(model)
    oracle = SpyOracle(recorder, budget, batch_size=batch_size, mode="label")
    task = AttackTask(x, label, target, None, candidates, seed=seed, seed_keys=("toy", "heuristic", mode))
    return method(oracle, task), oracle, recorder


def _fooled(model, video, label, target) -> bool:
    with torch.no_grad():
        y = int(model(video[None]).argmax())
    return y == target if target is not None else y != label


# -- the frames it keeps ------------------------------------------------------------------------


@pytest.mark.parametrize("geometry", ["linf", "l2"])
@pytest.mark.parametrize("mode", ["untargeted", "targeted"])
def test_the_decisive_frame_is_kept_and_the_others_dropped(mode, geometry):
    case = frame_zero_case(mode)
    model, x, label, target, _ = case
    out, _, _ = attack(mode, case, 1000 if mode == "untargeted" else 1200, batch_size=8, geometry=geometry)
    assert out.success and _fooled(model, out.x_adv, label, target)
    assert out.mask.tolist() == [True] + [False] * (T - 1)
    assert torch.equal(out.x_adv[~out.mask], x[~out.mask])
    assert float((out.x_adv - x).abs().max()) <= 0.05
    info = out.extra["heuristic"]
    assert info["kept_frames"] == [0] and out.episodes[0]["frames"] == [0]
    # removing frame 0's perturbation leaves nothing adversarial: it is never a removal candidate
    assert next(e for e in info["importance"] if e["frame"] == 0)["g"] is None
    assert [e["frame"] for e in info["removal"] if e["accepted"]] and 0 not in [e["frame"] for e in info["removal"]]


def test_the_near_boundary_linear_toy_falls_on_fewer_frames():
    case = linear_case()
    model, x, label, _, _ = case
    out, _, _ = attack("untargeted", case, 1000, batch_size=8)
    assert out.success and _fooled(model, out.x_adv, label, None)
    assert 1 <= int(out.mask.sum()) < T  # every frame matters, yet some are not needed
    assert torch.equal(out.x_adv[~out.mask], x[~out.mask])
    assert float((out.x_adv - x).abs().max()) <= 0.05
    assert out.queries < 1000 and out.episodes[0]["stop"] == "eps"


# -- where the perturbation lives ---------------------------------------------------------------


@pytest.mark.parametrize("geometry", ["linf", "l2"])
def test_the_perturbation_stays_in_the_kept_frames_salient_regions(geometry):
    case = linear_case()
    _, x, _, _, _ = case
    out, oracle, _ = attack("untargeted", case, 900, batch_size=8, region_ratio=0.5, stop_at_eps=False,
                            geometry=geometry)
    regions = salient_regions(x, 0.5)
    assert out.extra["heuristic"]["regions"] == "salient"
    assert out.extra["heuristic"]["region_pixels"] == T * 32
    assert out.success and out.queries_by_phase.get("probe", 0) > 0  # the optimisation ran
    support = regions & out.mask.view(-1, 1, 1, 1)
    assert not ((out.x_adv != x) & ~support).any()
    # every video asked after the start (and the first look) differs from x only on the regions,
    # and the optimisation's only on the kept frames' regions
    for phase, videos, _ in oracle.calls:
        if phase in ("regions", "importance", "removal"):
            assert not ((videos != x) & ~regions).any(), phase
        elif phase in ("probe", "search"):
            assert not ((videos != x) & ~support).any(), phase


def test_salient_regions_take_the_most_salient_pixels_of_each_clean_frame():
    x = torch.full((2, 3, 8, 8), 0.3)
    x[:, :, 2:5, 2:5] = 0.9  # a bright square on a dark frame
    regions = salient_regions(x, 0.25)
    assert regions.shape == (2, 1, 8, 8) and regions.dtype == torch.bool
    assert regions.flatten(1).sum(1).tolist() == [16, 16]
    assert not regions[0, 0, 6:, 6:].any()  # the flat corner is not salient
    assert regions[0, 0, 2:5, 2:5].sum() >= 6
    assert torch.equal(regions, salient_regions(x, 0.25))  # deterministic
    assert salient_regions(x, 1.0).all() and int(salient_regions(x, 1e-6).sum()) == 2


def test_regions_that_cannot_fool_fall_back_to_whole_frames():
    model = CornerVictim()
    x = torch.full((T, 3, 8, 8), 0.3)
    x[:, :, 2:5, 2:5] = 0.9  # the corner the victim reads is not salient
    out, _, _ = attack("untargeted", (model, x, 0, None, None), 1000, batch_size=8, region_ratio=0.25)
    info = out.extra["heuristic"]
    assert info["regions"] == "whole_frames" and info["region_pixels"] == T * 64
    # the restricted ray is asked at doubling radii up to where it saturates, never beyond
    assert 1 <= out.queries_by_phase["regions"] <= 12
    assert out.success and out.mask.tolist() == [True] + [False] * (T - 1)
    assert float(out.x_adv[0, :, -1, -1].mean()) < 0.29  # the pixel the victim reads moved


def test_the_bound_radius_and_the_saturation_radius():
    x = torch.rand(T, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    theta = unit(torch.randn(T, 3, 8, 8, generator=torch.Generator().manual_seed(4)))
    for level in (0.5, 3.0, 20.0):
        r = radius_for(x, theta, level)
        # computed in float64 from the clean video; the float32 video rounds by ~1e-8 grey levels
        assert mean_absolute_perturbation(ray_video(x, theta, r), x) <= level + 1e-6
        assert mean_absolute_perturbation(ray_video(x, theta, r * 1.001 + 1e-9), x) > level
    assert saturation_radius(x, theta) == 20.0  # some |θ| are tiny: capped at LAMBDA_CAP
    g = torch.Generator().manual_seed(5)
    steep = unit(torch.sign(torch.randn(T, 3, 8, 8, generator=g)) * (0.5 + torch.rand(T, 3, 8, 8, generator=g)))
    sat = saturation_radius(x, steep)
    assert sat < 20.0
    assert torch.equal(ray_video(x, steep, sat), ray_video(x, steep, 2 * sat))
    assert not torch.equal(ray_video(x, steep, 0.99 * sat), ray_video(x, steep, sat))


def test_the_radii_in_l2_geometry_reach_as_far_as_in_linf():
    """With ``geometry: l2`` the radii are L2 radii of an L2-unit direction; their cap is
    the radius of L∞ extent LAMBDA_CAP, so they cover the same videos as in L∞."""
    x = torch.rand(T, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    raw = torch.randn(T, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    l2 = GEOMETRIES["l2"]
    theta, theta2 = unit(raw), l2.unit(raw)
    cap2 = l2.lam_at(theta2, LAMBDA_CAP)
    assert cap2 > LAMBDA_CAP  # ‖θ₂‖∞ < 1: an L2 radius of 20 would stop short of the L∞ cap
    assert saturation_radius(x, theta2, cap2) == cap2
    for level in (0.5, 3.0):
        r2 = radius_for(x, theta2, level, cap2)
        assert mean_absolute_perturbation(ray_video(x, theta2, r2), x) <= level + 1e-6
        # the same bound, the same video as along the L∞-unit direction
        assert l2.extent(theta2, r2) == pytest.approx(radius_for(x, theta, level), rel=1e-5)


# -- the removal ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bound", [0.05, 3.0])
def test_every_removal_keeps_the_perturbation_within_the_bound(bound):
    out, _, _ = attack("untargeted", linear_case(), 1000, batch_size=8, bound=bound)
    info = out.extra["heuristic"]
    level, within = info["selection_start"]["map"], info["selection_start"]["g"] <= 0.05
    accepted = [e for e in info["removal"] if e["accepted"]]
    for e in info["removal"]:
        if not e["accepted"]:
            continue
        assert e["map"] <= max(bound, level) + 1e-6
        if within:  # a set within ε is never traded for one beyond it
            assert e["g"] <= 0.05
        level, within = e["map"], e["g"] <= 0.05
    assert info["kept_frames"] == out.mask.nonzero().flatten().tolist()
    assert len(info["kept_frames"]) == T - len(accepted)


def test_the_importance_probes_reach_the_oracle_side_by_side():
    out, oracle, _ = attack("targeted", frame_zero_case("targeted"), 1200, batch_size=64)
    sizes = [len(v) for phase, v, _ in oracle.calls if phase == "importance"]
    assert sizes[0] == T  # one probe per frame, one ask
    assert len(sizes) < out.queries_by_phase["importance"] / 2
    assert T in [len(v) for phase, v, _ in oracle.calls]
    assert {len(v) for phase, v, _ in oracle.calls if phase == "removal"} == {1}


# -- accounting and the budget -------------------------------------------------------------------


@pytest.mark.parametrize("mode, case, budgets", [
    ("untargeted", linear_case, range(1, 420, 23)),
    ("targeted", frame_zero_case, range(1, 300, 17)),
])
def test_every_query_is_counted_and_the_budget_holds_at_every_stage(mode, case, budgets):
    stops = set()
    for budget in budgets:
        c = case(mode) if case is frame_zero_case else case()
        x = c[1]
        out, oracle, recorder = attack(mode, c, budget, batch_size=8, stop_at_eps=False)
        assert recorder.videos == oracle.used == out.queries <= budget
        assert sum(out.queries_by_phase.values()) == out.queries
        assert set(out.queries_by_phase) <= PHASES
        stops |= set(out.queries_by_phase)
        if out.success:
            assert float((out.x_adv - x).abs().max()) <= 0.05
            assert torch.equal(out.x_adv[~out.mask], x[~out.mask])
            assert _fooled(c[0], out.x_adv, c[2], c[3])
        else:
            assert torch.equal(out.x_adv, x)
            if out.fallback is None:
                assert not out.mask.any()
            else:  # the closest adversarial video beyond ε, kept for the mean reading: on the kept frames
                assert float((out.fallback - x).abs().max()) > 0.05
                assert torch.equal(out.fallback[~out.mask], x[~out.mask])
                assert _fooled(c[0], out.fallback, c[2], c[3])
    assert {"init", "importance", "removal"} <= stops  # the budgets cut every stage


def test_a_clean_video_already_misclassified_costs_one_query():
    model, x, label, _, _ = linear_case()
    out, _, _ = attack("untargeted", (model, x, (label + 1) % 4, None, None), 100)
    assert out.success and out.queries == 1 and torch.equal(out.x_adv, x)
    assert out.episodes[0]["stop"] == "clean" and "heuristic" not in out.extra


def test_no_target_class_video_is_a_failure():
    model, x, label, target, _ = linear_case("targeted")
    out, _, _ = attack("targeted", (model, x, label, target, None), 100)
    assert not out.success and out.queries == 1 and out.episodes[0]["stop"] == "init"
    assert torch.equal(out.x_adv, x) and not out.mask.any()


# -- determinism, registration --------------------------------------------------------------------


def test_the_same_seed_gives_the_same_outcome():
    case = linear_case()
    first = attack("untargeted", case, 600, stop_at_eps=False)[0]
    second = attack("untargeted", case, 600, stop_at_eps=False)[0]
    other = attack("untargeted", case, 600, stop_at_eps=False, seed=1)[0]
    for a, b in [(first, second)]:
        assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.mask, b.mask)
        assert a.queries == b.queries and a.queries_by_phase == b.queries_by_phase
        assert a.episodes == b.episodes and a.extra == b.extra
    assert first.extra != other.extra


def test_the_method_is_registered_label_only_in_both_modes():
    method = build_attack("heuristic", AttackContext("targeted", 0.05, TargetedCfg()))
    cls = method.__class__
    assert cls.name == "heuristic" and cls.oracle_mode == "label" and cls.modes == ("untargeted", "targeted")
    s = HeuristicSettings()
    assert s.region_ratio == 0.6 and s.bound == 3.0 and s.directions == 20
