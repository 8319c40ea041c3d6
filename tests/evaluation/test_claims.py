"""The paper's claims checked against tables: each status from constructed rows, so
that a verdict can be read off the numbers (``sva/evaluation/claims.py``)."""

from __future__ import annotations

import pandas as pd
import pytest

from sva.evaluation import claims
from sva.evaluation.metrics import wilson_interval


def _row(method, fr_hits, videos=6, map_=None, s=None, q=None, victim="c3d", row=None):
    lo, hi = wilson_interval(fr_hits, videos)
    r = {"dataset": "syn", "victim": victim, "method": method, "FR (%)": 100.0 * fr_hits / videos,
         "FR lo (%)": 100 * lo, "FR hi (%)": 100 * hi, "MAP": map_ if fr_hits else None,
         "S (%)": s if fr_hits else None, "Q": q if fr_hits else None, "videos": videos}
    if row is not None:
        r["row"] = row
    return r


def _table(*rows):
    return pd.DataFrame(list(rows))


def test_fooling_rate_statuses_follow_the_wilson_intervals():
    t = _table(_row("sva", 20, 20, 2.0), _row("opt", 2, 20, 3.0), _row("heuristic", 15, 20, 2.5))
    (v,) = claims.higher_fooling_rate(t)
    assert v.status == "not significant" and v.where == "syn/c3d"  # 100 vs 75 %: intervals overlap
    (v,) = claims.higher_fooling_rate(t, baselines=("opt",))
    assert v.status == "supported" and "opt FR 10 %" in v.evidence[1]
    (v,) = claims.higher_fooling_rate(_table(_row("sva", 3, 20, 2.0), _row("opt", 3, 20, 2.0)))
    assert v.status == "not supported"  # equal is not "more"
    (v,) = claims.higher_fooling_rate(_table(_row("sva", 1, 20, 2.0), _row("opt", 19, 20, 2.0)))
    assert v.status == "not supported"


def test_lower_map_needs_successes_on_both_sides():
    (v,) = claims.lower_map(_table(_row("sva", 4, map_=2.0), _row("opt", 5, map_=3.0), _row("heuristic", 5, map_=2.5)))
    assert v.status == "supported" and v.evidence[0].startswith("sva MAP 2")
    (v,) = claims.lower_map(_table(_row("sva", 4, map_=2.6), _row("opt", 5, map_=3.0), _row("heuristic", 5, map_=2.5)))
    assert v.status == "not supported"
    (v,) = claims.lower_map(_table(_row("sva", 4, map_=2.0), _row("opt", 0)))
    assert v.status == "not measurable" and "opt MAP –" in v.evidence[1]
    assert claims.lower_map(_table(_row("dense", 4, map_=2.0))) == []  # no sva row: nothing to say


def test_sparsity_per_victim():
    t = _table(_row("sva", 4, s=62.5, map_=2.0), _row("sva", 4, s=50.0, map_=2.0, victim="lrcn"),
               _row("sva", 0, victim="i3d"))
    got = {v.where: v.status for v in claims.sparse_perturbation(t)}
    assert got == {"syn/c3d": "supported", "syn/lrcn": "not supported", "syn/i3d": "not measurable"}


def test_random_selection_ties_on_fr_are_decided_by_map():
    t = _table(_row("sva", 6, map_=2.0, q=900, row="SVA"), _row("random", 6, map_=2.4, q=800, row="Random"))
    (v,) = claims.beats_random_selection(t)
    assert v.status == "supported" and v.evidence[0].startswith("SVA FR 100 %") and "Q 800" in v.evidence[1]
    t.loc[1, "MAP"] = 1.5
    assert claims.beats_random_selection(t)[0].status == "not supported"
    (v,) = claims.beats_random_selection(_table(_row("sva", 5, map_=2.0), _row("random", 3, map_=2.0)))
    assert v.status == "not significant"


def test_reward_ablation():
    rows = ["dense", "sva_a", "sva_ar", "sva"]
    t = _table(_row("dense", 2, 20, 5.0), _row("sva_a", 18, 20, 3.0), _row("sva_ar", 19, 20, 3.0),
               _row("sva", 20, 20, 2.9))
    got = {v.claim: v for v in claims.reward_ablation(t, rows)}
    assert got["R_attack improves on no RL (FGSM+NES on every frame)"].status == "supported"
    assert got["Full SVA improves on no RL"].status == "supported"
    small = got["R_rep and R_div contribute less than R_attack"]
    assert small.status == "supported" and "+80 points" in small.evidence[0] and "+10 points" in small.evidence[0]
    t.loc[0, ["FR (%)"]] = 85.0  # no RL nearly as good: the intrinsic rewards now matter more
    assert {v.claim: v.status for v in claims.reward_ablation(t, rows)}[
        "R_rep and R_div contribute less than R_attack"] == "not supported"
    assert claims.reward_ablation(t, rows[:2]) == []
    flat = _table(*(_row(m, 0, 20) for m in rows))  # nothing fools the victim: no term shows
    assert {v.status for v in claims.reward_ablation(flat, rows)} == {"not measurable"}
    # R_attack only and full SVA with the same results (the agent's masks did not change):
    # the reward terms cannot be told apart, whatever no RL did
    same = _table(_row("dense", 5, 6, 5.2, 0.0, 2961), _row("sva_a", 3, 6, 2.61, 52.1, 25187),
                  _row("sva_ar", 3, 6, 2.61, 52.1, 25187), _row("sva", 3, 6, 2.61, 52.1, 25187))
    got = {v.claim: v for v in claims.reward_ablation(same, rows)}
    small = got["R_rep and R_div contribute less than R_attack"]
    assert small.status == "not measurable" and "gave identical results" in small.evidence[-1]


@pytest.mark.parametrize("fr, maps, status", [
    ((10, 9, 10), (2.0, 2.2, 2.1), "supported"),
    ((10, 9, 10), (2.0, 3.0, 2.1), "not supported"),  # MAP 50 % apart
    ((20, 2, 10), (2.0, 2.0, 2.0), "not supported"),  # FR intervals apart
    ((3, 0, 3), (2.0, None, 2.0), "not measurable"),  # FRs agree, one MAP missing
])
def test_estimator_insensitivity(fr, maps, status):
    t = _table(*(_row(m, f, 20, mp) for m, f, mp in zip(("sva", "zo", "so"), fr, maps)))
    (v,) = claims.estimator_insensitive(t, ["sva", "zo", "so"])
    assert v.status == status and len(v.evidence) == 3


def test_the_chosen_setting_against_its_sweep():
    t = _table(_row("g1", 3, 20, 2.5, row="γ2 = 1"), _row("sva", 10, 20, 2.4, row="γ2 = 3"),
               _row("g5", 10, 20, 2.6, row="γ2 = 5"))
    (v,) = claims.chosen_setting(t, "sva", "γ2 = 3 is the best")
    assert v.status == "not significant" and len(v.evidence) == 3  # beats γ2=1 only within the intervals
    t3 = _table(_row("g1", 3, 20, 2.5), _row("sva", 10, 20, 2.4), _row("g5", 20, 20, 2.6))
    assert claims.chosen_setting(t3, "sva", "x")[0].status == "not supported"  # γ2 = 5 fools more
    t2 = _table(_row("g1", 10, 20, 2.5), _row("sva", 10, 20, 2.4), _row("g5", 10, 20, 2.6))
    assert claims.chosen_setting(t2, "sva", "x")[0].status == "supported"  # equal FR, lowest MAP
    # a sweep whose values all gave the same results ranks nothing
    t4 = _table(_row("g1", 3, 6, 2.61, 52.1, 25187, row="γ2 = 1"), _row("sva", 3, 6, 2.61, 52.1, 25187, row="γ2 = 3"),
                _row("g5", 3, 6, 2.61, 52.1, 25187, row="γ2 = 5"))
    (v,) = claims.chosen_setting(t4, "sva", "x")
    assert v.status == "not measurable" and v.evidence[-1] == "γ2 = 1, γ2 = 5 gave results identical to γ2 = 3"
    t4.loc[2, "Q"] = 25000  # one query apart: no longer identical
    assert claims.chosen_setting(t4, "sva", "x")[0].status == "not measurable"  # γ2 = 1 still is
    t4.loc[0, "Q"] = 25000
    assert claims.chosen_setting(t4, "sva", "x")[0].status == "supported"  # equal FR and MAP


def test_sva_opt_against_h_opt():
    t = _table(_row("heuristic", 2, 20, 3.0, row="H_opt"), _row("sva_opt", 15, 20, 2.0, row="SVA_opt"))
    (v,) = claims.sva_frames_help_the_heuristic(t)
    assert v.status == "supported" and v.evidence[0].startswith("SVA_opt")
