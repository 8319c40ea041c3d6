import math

import pytest
import torch

from sva.evaluation.metrics import (
    Z95,
    is_success,
    linf,
    mean_absolute_perturbation,
    perturbed_frames,
    sparsity,
    to_uint8,
    wilson_interval,
)


def test_map_is_mean_abs_times_255():
    x = torch.zeros(4, 3, 2, 2)
    adv = x.clone()
    adv[1] = 2 / 255
    assert abs(mean_absolute_perturbation(adv, x) - 0.5) < 1e-6  # a quarter of values moved by 2 levels


def test_sparsity_is_measured_on_the_video():
    x = torch.rand(5, 3, 4, 4)
    adv = x.clone()
    adv[2, 0, 0, 0] += 1e-3
    adv[4] += 0.01
    assert perturbed_frames(adv, x).tolist() == [False, False, True, False, True]
    assert sparsity(adv, x) == 0.6
    assert abs(linf(adv, x) - 0.01) < 1e-6


def test_uint8_rounding_and_success_rule():
    v = torch.tensor([0.0, 0.5 / 255 + 1e-4, 1.0, 1.2])
    assert torch.allclose(to_uint8(v), torch.tensor([0.0, 1 / 255, 1.0, 1.0]))
    assert is_success(3, true_label=2, target=None) and not is_success(2, 2, None)
    assert is_success(5, 2, target=5) and not is_success(3, 2, target=5)


# -- the Wilson score interval -------------------------------------------------------------------


def _score_roots(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson interval from its definition, independently of the closed form: the
    proportions p with (k/n − p)² = z²·p(1 − p)/n, the roots of the quadratic
    (1 + z²/n)·p² − (2k/n + z²/n)·p + (k/n)² = 0, found by bisection on each side of k/n."""
    phat = k / n

    def f(p: float) -> float:
        return (phat - p) ** 2 - z * z * p * (1 - p) / n  # ≤ 0 inside the interval

    def bisect(a: float, b: float) -> float:  # f(a), f(b) of opposite signs (or an end is a root)
        for _ in range(200):
            m = 0.5 * (a + b)
            if (f(m) <= 0) == (f(a) <= 0):
                a = m
            else:
                b = m
        return 0.5 * (a + b)

    lo = 0.0 if f(0.0) <= 0 else bisect(0.0, phat)
    hi = 1.0 if f(1.0) <= 0 else bisect(phat, 1.0)
    return lo, hi


@pytest.mark.parametrize("k, n", [(0, 6), (6, 6), (3, 6), (57, 100), (1, 1), (7, 9)])
def test_wilson_interval_solves_the_score_equation(k, n):
    lo, hi = wilson_interval(k, n)
    ref_lo, ref_hi = _score_roots(k, n)
    assert lo == pytest.approx(ref_lo, abs=1e-9) and hi == pytest.approx(ref_hi, abs=1e-9)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_wilson_interval_known_values():
    # 95 % intervals, to 4 decimals
    assert wilson_interval(0, 6) == (0.0, pytest.approx(0.3903, abs=5e-5))  # upper end z²/(n + z²)
    assert wilson_interval(6, 6) == (pytest.approx(0.6097, abs=5e-5), 1.0)
    assert wilson_interval(3, 6) == pytest.approx((0.1876, 0.8124), abs=5e-5)
    assert wilson_interval(57, 100) == pytest.approx((0.4722, 0.6627), abs=5e-5)
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (score, no
    # continuity correction)
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert wilson_interval(15, 148) == pytest.approx((0.0624, 0.1605), abs=5e-5)
    assert wilson_interval(0, 20) == (0.0, pytest.approx(0.1611, abs=5e-5))
    assert wilson_interval(1, 29) == pytest.approx((0.0061, 0.1718), abs=5e-5)
    # symmetry: k successes of n mirror n − k
    lo, hi = wilson_interval(2, 11)
    assert wilson_interval(9, 11) == pytest.approx((1 - hi, 1 - lo), abs=1e-12)
    # a larger z widens it
    assert wilson_interval(3, 6, z=2.5758)[0] < wilson_interval(3, 6)[0]


def test_wilson_interval_edge_cases():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))  # no video: no interval
    for bad in ((-1, 5), (6, 5), (0, -1)):
        with pytest.raises(ValueError, match="0 <= successes <= n"):
            wilson_interval(*bad)
    with pytest.raises(ValueError, match="z must be positive"):
        wilson_interval(1, 2, z=0.0)
