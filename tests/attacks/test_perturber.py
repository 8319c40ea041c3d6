"""EpisodeChoice: which episode a sparse-perturber method returns, and its fallback."""

import torch

from sva.attacks.fgsm import EpisodeResult
from sva.attacks.perturber import EpisodeChoice
from sva.blackbox.oracle import Oracle
from sva.evaluation.metrics import mean_absolute_perturbation
from toys import LinearVictim


def _res(x, delta, success, meets_goal=False):
    return EpisodeResult((x + delta).clamp(0, 1), success, 10, 0, 1, 0.0, meets_goal=meets_goal)


def _mask(*frames):
    m = torch.zeros(8, dtype=torch.bool)
    m[list(frames)] = True
    return m


def test_the_smallest_map_success_wins_and_ties_go_to_the_earliest():
    x = torch.full((8, 3, 8, 8), 0.5)
    choice = EpisodeChoice(x)
    choice.offer(0, _res(x, 0.04, True), _mask(0))
    choice.offer(1, _res(x, 0.02, True), _mask(1))
    choice.offer(2, _res(x, 0.02, True), _mask(2))
    choice.offer(3, _res(x, 0.001, False, meets_goal=True), _mask(3))  # a failure never beats a success
    out = choice.outcome(Oracle(LinearVictim(), 5), 1, [], [])
    assert out.success and out.best_episode == 1 and out.mask.tolist() == _mask(1).tolist()
    assert out.fallback is None


def test_failures_return_the_clean_video_and_the_smallest_map_video_that_meets_the_goal():
    x = torch.full((8, 3, 8, 8), 0.5)
    choice = EpisodeChoice(x)
    choice.offer(0, _res(x, 0.3, False, meets_goal=True), _mask(0, 1))
    choice.offer(1, _res(x, 0.01, False), _mask(2))  # does not meet the goal: never a fallback
    choice.offer(2, _res(x, 0.2, False, meets_goal=True), _mask(4))
    out = choice.outcome(Oracle(LinearVictim(), 5), 1, [], [])
    assert not out.success and torch.equal(out.x_adv, x)
    assert out.fallback is not None and out.mask.tolist() == _mask(4).tolist()
    assert abs(mean_absolute_perturbation(out.fallback, x) - 0.2 * 255) < 1e-3
    none = EpisodeChoice(x)
    none.offer(0, _res(x, 0.01, False), _mask(2))
    out = none.outcome(Oracle(LinearVictim(), 5), 1, [], [])
    assert out.fallback is None and not out.mask.any()


def test_a_success_meets_the_goal():
    x = torch.zeros(8, 3, 8, 8)
    assert _res(x, 0.0, True).meets_goal
