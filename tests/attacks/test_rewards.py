"""Rewards (paper Eq. 5-9) on hand-computed examples."""

from __future__ import annotations

import math

import pytest
import torch

from sva.attacks.rl.rewards import RewardWeights, attack_reward, diversity, representativeness, total_reward


def m(*bits: int) -> torch.Tensor:
    return torch.tensor([bool(b) for b in bits])


LINE = torch.tensor([[0.0], [1.0], [3.0]])  # three frames on a line


def test_representativeness_hand_computed():
    # K = {0}: distances 0, 1, 3 -> mean 4/3
    assert representativeness(LINE, m(1, 0, 0)) == pytest.approx(math.exp(-4 / 3), abs=1e-15)
    # K = {0, 2}: min distances 0, 1, 0 -> mean 1/3
    assert representativeness(LINE, m(1, 0, 1)) == pytest.approx(math.exp(-1 / 3), abs=1e-15)
    # K = {1}: 1, 0, 2 -> 1
    assert representativeness(LINE, m(0, 1, 0)) == pytest.approx(math.exp(-1.0), abs=1e-15)
    assert representativeness(LINE, m(1, 1, 1)) == 1.0
    assert representativeness(LINE, m(0, 0, 0)) == 0.0  # empty selection: nothing represents the video


def test_representativeness_is_euclidean_not_squared():
    v = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert representativeness(v, m(1, 0)) == pytest.approx(math.exp(-5 / 2), abs=1e-15)


def test_diversity_hand_computed():
    e1, e2 = [1.0, 0.0], [0.0, 1.0]
    diag = [1 / math.sqrt(2), 1 / math.sqrt(2)]
    assert diversity(torch.tensor([e1, e2]), m(1, 1)) == pytest.approx(1.0, abs=1e-15)  # orthogonal
    assert diversity(torch.tensor([e1, [2.0, 0.0]]), m(1, 1)) == pytest.approx(0.0, abs=1e-15)  # same direction
    assert diversity(torch.tensor([e1, [-3.0, 0.0]]), m(1, 1)) == pytest.approx(2.0, abs=1e-15)  # opposite
    # three frames: d = 1, 1 - 1/sqrt2, 1 - 1/sqrt2 (each pair counted in both orders)
    three = torch.tensor([e1, e2, diag])
    assert diversity(three, m(1, 1, 1)) == pytest.approx((3 - math.sqrt(2)) / 3, abs=1e-12)
    # unselected frames are ignored
    assert diversity(torch.tensor([e1, [5.0, 5.0], e2]), m(1, 0, 1)) == pytest.approx(1.0, abs=1e-15)


def test_diversity_degenerate_selections():
    v = torch.randn(4, 8)
    assert diversity(v, m(0, 0, 0, 0)) == 0.0
    assert diversity(v, m(0, 1, 0, 0)) == 0.0  # |K| = 1: no pair
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    assert diversity(z, m(1, 1)) == pytest.approx(1.0)  # a zero vector has cosine 0 with everything


def test_rewards_shape_checks_and_float_outputs():
    v = torch.randn(5, 3)
    with pytest.raises(ValueError):
        representativeness(v, m(1, 0, 1))  # wrong T
    with pytest.raises(ValueError):
        diversity(v, torch.ones(5))  # not bool
    with pytest.raises(ValueError):
        representativeness(v[0], m(1, 0, 0))
    assert isinstance(representativeness(v, m(1, 0, 0, 1, 0)), float)
    assert isinstance(diversity(v.requires_grad_(True), m(1, 0, 0, 1, 0)), float)


@pytest.mark.parametrize(
    ("queries", "factor"),
    [(0, 1.0), (14999, 1.0), (15000, 1.0), (15001, 0.999), (29999, 0.999), (30000, 0.999)],
)
def test_attack_reward_query_thresholds(queries, factor):
    p = 2.4 / 255  # a paper-sized MAP, converted to [0, 1] units
    assert attack_reward(p, queries, True) == pytest.approx(factor * math.exp(-p / 0.05), rel=1e-15)


def test_attack_reward_failure_and_overbudget():
    assert attack_reward(0.01, 30001, True) == -1.0
    assert attack_reward(0.01, 100, False) == -1.0  # failed attack
    assert attack_reward(0.0, 0, True) == 1.0
    assert attack_reward(0.05, 10, True) == pytest.approx(math.exp(-1.0))
    assert attack_reward(0.05, 20000, True) == pytest.approx(0.999 * math.exp(-1.0))
    # configurable thresholds (e.g. a targeted budget)
    assert attack_reward(0.0, 40000, True, q_full=60000, q_half=30000) == pytest.approx(0.999)
    # smaller perturbation, higher reward; any success beats -1
    assert attack_reward(0.001, 10, True) > attack_reward(0.01, 10, True) > attack_reward(1.0, 29999, True) > -1


def test_attack_reward_rejects_0_255_map():
    with pytest.raises(ValueError, match="255"):
        attack_reward(2.4, 100, True)
    with pytest.raises(ValueError):
        attack_reward(float("nan"), 100, True)
    with pytest.raises(ValueError):
        attack_reward(-0.1, 100, True)
    with pytest.raises(ValueError):
        attack_reward(0.1, -1, True)


def test_total_reward_and_ablation_weights():
    assert total_reward(0.5, 0.25, 0.1) == pytest.approx(0.5 + 2 * 0.25 + 3 * 0.1)
    assert total_reward(0.5, 0.25, 0.1, gamma1=1.0, gamma2=0.0) == pytest.approx(0.75)
    full, att, rep = RewardWeights(), RewardWeights.preset("attack"), RewardWeights.preset("attack+rep")
    assert RewardWeights.preset("full") == full
    assert full.total(0.5, 0.25, 0.1) == pytest.approx(1.3)
    assert att.total(0.5, 0.25, 0.1) == pytest.approx(0.3)
    assert rep.total(0.5, 0.25, 0.1) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="attack\\+rep"):
        RewardWeights.preset("rep-only")
    # the callable form computes the intrinsic terms from features and mask
    v, mask = LINE, m(1, 0, 1)
    r_rep, r_div = representativeness(v, mask), diversity(v, mask)
    assert full(v, mask, 0.1) == pytest.approx(r_div + 2 * r_rep + 0.3)
    assert att(v, mask, 0.1) == pytest.approx(0.3)
