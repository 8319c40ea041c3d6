"""Trajectories: the first adversarial video within ε an attack saw and every better one
(``sva/evaluation/trajectory.py``), and the budget curves read off them."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from sva.blackbox.oracle import Answer
from sva.evaluation.figures import budget_curves_figure
from sva.evaluation.trajectory import Trajectory, best_within, budget_curves, curves_frame
from sva.utils.errors import UserError

T = 4


def _clean() -> torch.Tensor:
    return torch.full((T, 3, 2, 2), 0.5)


def _perturbed(delta: float, frames: list[int]) -> torch.Tensor:
    v = _clean()
    v[frames] += delta
    return v


def _answer(labels: list[int]) -> Answer:
    return Answer(torch.tensor(labels), None)


def test_records_the_first_success_and_each_smaller_map_only():
    x = _clean()
    traj = Trajectory(x, label=3, target=None, eps=0.05)
    # query 1: not adversarial; 2: adversarial but beyond ε; 3: adversarial, 2 frames
    traj(torch.stack([_perturbed(0.01, [0]), _perturbed(0.2, [0]), _perturbed(0.04, [0, 1])]),
         _answer([3, 1, 1]), used_before=0)
    # query 4: adversarial but a larger MAP (ignored); 5: smaller MAP, one frame
    traj(torch.stack([_perturbed(0.05, [0, 1, 2]), _perturbed(0.04, [2])]), _answer([0, 0]), used_before=3)
    pts = traj.as_lists()
    assert [p[0] for p in pts] == [3, 5]
    assert pts[0][1] == pytest.approx(255 * 0.04 * 2 / T) and pts[0][2] == pytest.approx(0.5)
    assert pts[1][1] == pytest.approx(255 * 0.04 / T) and pts[1][2] == pytest.approx(0.75)


def test_targeted_counts_only_the_target_class():
    traj = Trajectory(_clean(), label=3, target=7, eps=0.05)
    traj(torch.stack([_perturbed(0.02, [0]), _perturbed(0.03, [1])]), _answer([1, 7]), used_before=10)
    assert [p[0] for p in traj.as_lists()] == [12]


def test_eps_bound_allows_the_evaluators_rounding_slack_only():
    traj = Trajectory(_clean(), label=0, target=None, eps=0.05)
    traj(torch.stack([_perturbed(0.05 + 1e-5, [0])]), _answer([1]), used_before=0)
    assert traj.as_lists() == []
    traj(torch.stack([_perturbed(0.05, [0])]), _answer([1]), used_before=1)
    assert [p[0] for p in traj.as_lists()] == [2]


def test_best_within_and_budget_curves():
    a = [[10, 3.0, 0.5], [40, 2.0, 0.25]]
    b = [[30, 1.0, 0.75]]
    assert best_within(a, 9) is None and best_within(a, 10) == (3.0, 0.5) and best_within(a, 100) == (2.0, 0.25)
    rows = budget_curves([a, b, []], [0, 10, 30, 40])
    assert [r["FR (%)"] for r in rows] == pytest.approx([0, 100 / 3, 200 / 3, 200 / 3])
    assert rows[0]["MAP"] is None and rows[1]["MAP"] == 3.0
    assert rows[2]["MAP"] == pytest.approx(2.0) and rows[3]["MAP"] == pytest.approx(1.5)
    assert rows[3]["S (%)"] == pytest.approx(50.0) and all(r["videos"] == 3 for r in rows)


def _records(traj_a, traj_b):
    base = {"dataset": "synthetic", "victim": "c3d", "mode": "untargeted", "budget": 100}
    return pd.DataFrame([{**base, "method": "sva", "trajectory": traj_a},
                         {**base, "method": "opt", "trajectory": traj_b},
                         {**base, "mode": "targeted", "method": "opt", "trajectory": []}])


def test_curves_frame_per_method_over_the_budget_and_figure(tmp_path):
    curves = curves_frame(_records([[10, 3.0, 0.5]], []), "untargeted", steps=10)
    assert set(curves["method"]) == {"sva", "opt"}
    sva = curves[curves["method"] == "sva"]
    assert list(sva["budget"]) == list(range(0, 101, 10))
    assert list(sva["FR (%)"]) == [0.0] + [100.0] * 10
    assert (curves[curves["method"] == "opt"]["FR (%)"] == 0).all()
    out = budget_curves_figure(curves, tmp_path / "curves.png", "untargeted")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = budget_curves_figure(curves_frame(_records([], []).iloc[:0], "untargeted"), tmp_path / "e.png", "x")
    assert empty.is_file()


def test_records_without_a_trajectory_are_refused_naming_the_group():
    recs = _records([[1, 1.0, 0.0]], None)
    with pytest.raises(UserError, match=r"synthetic/c3d/opt \(untargeted\): 1 record\(s\) without"):
        curves_frame(recs, "untargeted")
