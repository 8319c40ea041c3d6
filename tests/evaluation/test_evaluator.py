"""The evaluator's mean-perturbation reading of success (MAP ≤ ε, docs/attacks.md)."""

from __future__ import annotations

import pytest
import torch
from toys import FrameZeroVictim, frame_zero_video

from sva.evaluation.evaluator import confirm, mean_reading, meets_mean_reading

T = 8


def test_meets_mean_reading_is_goal_and_map_within_eps():
    eps = 0.05  # 12.75 grey levels
    assert meets_mean_reading(pred=3, label=1, target=None, map_255=12.75, eps=eps)  # at the bound
    assert not meets_mean_reading(3, 1, None, 12.8, eps)  # MAP over the bound
    assert not meets_mean_reading(1, 1, None, 0.5, eps)  # still the true class
    assert meets_mean_reading(2, 1, 2, 5.0, eps) and not meets_mean_reading(3, 1, 2, 5.0, eps)  # targeted
    assert meets_mean_reading(3, 1, None, 255 * eps * (1 + 1e-6), eps)  # the float check's allowance


def _frame_zero_darkened(delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, perturbed) for the frame-zero victim: frame 0 at 0.51 (class 0), and the
    same video with frame 0 darkened by ``delta`` (class 1 when it falls below 0.5); MAP
    = 255·delta / T, L∞ = delta."""
    x = frame_zero_video(T)
    adv = x.clone()
    adv[0] -= delta
    return x, adv


def test_mean_reading_judges_the_fallback_by_its_map():
    model = FrameZeroVictim()
    x, adv = _frame_zero_darkened(0.03)  # adversarial, L∞ 0.03, MAP 255·0.03/8 = 0.956
    label = 0
    # beyond ε = 0.01 in L∞ (an L∞ failure), yet its MAP is under 255·ε = 2.55
    assert not confirm(model, x, adv, label, None, 0.01)["success"]
    got = mean_reading(model, x, adv, label, None, 0.01)
    assert got["success_mean_reading"] is True
    assert got["map_mean_reading"] == pytest.approx(255 * 0.03 / T, rel=1e-5)
    # ε = 0.003: MAP 0.956 > 0.765
    assert mean_reading(model, x, adv, label, None, 0.003)["success_mean_reading"] is False
    # a video that does not fool the victim fails whatever its MAP
    x, small = _frame_zero_darkened(0.005)
    assert mean_reading(model, x, small, label, None, 0.05)["success_mean_reading"] is False
    # targeted: the target class is 1 here
    x, adv = _frame_zero_darkened(0.03)
    assert mean_reading(model, x, adv, label, 1, 0.01)["success_mean_reading"] is True
    assert mean_reading(model, x, adv, label, 0, 0.01)["success_mean_reading"] is False


def test_mean_reading_without_a_video_and_with_a_known_prediction():
    model = FrameZeroVictim()
    x, adv = _frame_zero_darkened(0.03)
    assert mean_reading(model, x, None, 0, None, 0.05) == {"success_mean_reading": False, "map_mean_reading": None}
    # a prediction given is used as is (the float check's), no forward pass needed
    assert mean_reading(model, x, adv, 0, None, 0.05, pred=0)["success_mean_reading"] is False


def test_every_linf_success_meets_the_mean_reading():
    model = FrameZeroVictim()
    for delta in (0.011, 0.02, 0.05):
        x, adv = _frame_zero_darkened(delta)
        adv[1:] += delta  # every frame at the L∞ bound: MAP = 255·L∞, the largest it can be
        adv.clamp_(0, 1)
        check = confirm(model, x, adv, 0, None, delta)
        assert check["success"]
        got = mean_reading(model, x, adv, 0, None, delta, pred=check["pred_float"])
        assert got["success_mean_reading"] and got["map_mean_reading"] <= 255 * delta + 1e-4
