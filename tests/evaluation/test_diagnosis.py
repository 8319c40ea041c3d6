"""Measured reasons behind failed attacks (sva/evaluation/diagnosis.py)."""

import pytest

from sva.evaluation.diagnosis import closest_linf, failure_summary, still_shrinking


def _hard(success=False, queries=30000, stop="budget", trace=((300, 0.3), (15000, 0.2), (30000, 0.1)),
          budget=30000):
    linf = trace[-1][1] if trace else None
    return {"mode": "untargeted", "dataset": "d", "victim": "c3d", "method": "opt", "success": success,
            "queries": queries, "budget": budget, "budget_scope": "video", "eps": 0.05,
            "episodes": [{"episode": 0, "frames": list(range(16)), "stop": stop, "linf": linf,
                          "trace": [{"queries": q, "linf": d} for q, d in trace]}]}


def _sva(success=False, queries=29891, episodes=10, frames=7):
    return {"mode": "untargeted", "dataset": "d", "victim": "c3d", "method": "sva", "success": success,
            "queries": queries, "budget": 30000, "budget_scope": "video", "eps": 0.05,
            "episodes": [{"episode": i, "frames": frames, "success": False} for i in range(episodes)]}


def test_closest_distance_and_whether_it_still_shrank():
    r = _hard()
    assert closest_linf(r) == pytest.approx(0.1)
    assert still_shrinking(r) is True  # 0.2 at half the queries, 0.1 at the end
    flat = _hard(trace=((300, 0.3), (14000, 0.2), (30000, 0.1995)))
    assert still_shrinking(flat) is False  # 0.25 % in the second half: stalled
    assert still_shrinking(_sva()) is None and closest_linf(_sva()) is None


def test_a_boundary_search_reports_its_stops_distance_and_progress():
    records = [_hard(), _hard(stop="stagnation", queries=17000,
                              trace=((300, 0.3), (8000, 0.2), (17000, 0.2))),
               _hard(stop="init", queries=101, trace=()), _hard(success=True)]
    s = failure_summary(records)
    assert (s.videos, s.failed) == (4, 3)
    assert s.stops == {"budget": 1, "stagnation": 1, "init": 1}
    assert s.spent_budget is None  # the stop reasons say it instead
    assert s.closest_over_eps == pytest.approx((0.1 / 0.05 + 0.2 / 0.05) / 2)  # the init failure has none
    assert (s.with_distance, s.shrinking) == (2, 1)
    text = s.sentence()
    assert "3 of 4 videos not fooled" in text and "no adversarial start found (1)" in text
    assert "3.0 × ε" in text and "1 of 2 were still closing in" in text


def test_sva_failures_count_budget_and_episodes():
    s = failure_summary([_sva(), _sva(queries=12000, episodes=4, frames=5), _sva(success=True)])
    assert (s.failed, s.spent_budget, s.stops) == (2, 1, {})  # 29,891 is 99.6 % of the budget, 12,000 40 %
    assert s.episodes == 7.0 and s.frames == pytest.approx((10 * 7 + 4 * 5) / 14)
    assert s.closest_over_eps is None
    assert "1 of them spent the query budget" in s.sentence() and "7 episodes each" in s.sentence()


def test_nothing_to_explain_when_every_video_was_fooled():
    assert failure_summary([_sva(success=True), _hard(success=True)]) is None
    assert failure_summary([]) is None


def test_episode_scope_leaves_the_budget_out():
    r = _sva()
    r["budget_scope"] = "episode"
    s = failure_summary([r])
    assert s.spent_budget is None and "budget" not in s.sentence()
