"""Anytime results: when an attack first saw an adversarial video, and each better one
(``docs/attacks.md``, "Trajectories and success against queries").

A :class:`Trajectory` is an :class:`~sva.blackbox.oracle.Oracle` observer attached by the
attack job (the evaluation side, never the attack). For every answered query it looks at
the videos the attacker sent and the answers it got, exactly what the attacker itself
knows: a video **meets the goal** when its answered top-1 label differs from the true
label (untargeted) or equals the target (targeted), and it **counts** when its L∞
distance to the clean video is at most ε (+1e-6, the evaluator's rounding allowance,
:func:`sva.evaluation.evaluator.confirm`). The trajectory keeps a point at the first such
query and at every later one whose MAP is smaller: ``(queries, MAP, S)``, the query
number counted by the oracle (1-based), MAP in grey levels (0–255) and S the fraction of
unperturbed frames, both of that video.

From the points, :func:`best_within` gives "the best result found within the first b
queries" and :func:`budget_curves` the fooling rate, MAP and S against b for a set of
records (the paper's Fig. 6; success-against-queries for every method), all from one
run at the full budget.

How this differs from a run with budget b: the attack would have asked exactly the same
first b queries (every method here decides from past answers, not from the budget left,
except that it does not start a batch it cannot pay; ``tests/evaluation/test_trajectory.py``
checks the prefix on real attacks), so a run with budget b *saw* the same points. What it
*returns* is its own choice among what it saw (SVA returns its best successful episode's
last iterate, not an adversarial NES probe with a smaller MAP), so the curve is an upper
bound on FR(b) and a lower bound on MAP(b) of runs with budget b, and at the full budget
FR is at least the table's FR.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Trajectory", "TrajectoryPoint", "best_within", "budget_curves"]

#: the evaluator's allowance for float rounding on the L∞ bound
EPS_SLACK = 1e-6
#: float32 screening margins (L∞ in [0, 1] units, MAP in grey levels): far above the
#: float32 rounding of |v − x| and of a mean over a video, so the screen never drops a
#: row the exact float64 check would keep
SCREEN_MARGIN = 1e-5
SCREEN_MARGIN_255 = 1e-4


@dataclass(frozen=True)
class TrajectoryPoint:
    """One improvement: query number (1-based, the oracle's count), MAP (0–255) and S
    (fraction of frames left exactly unperturbed, 0–1) of the video asked there."""

    queries: int
    map: float
    sparsity: float

    def as_list(self) -> list:
        return [self.queries, self.map, self.sparsity]


class Trajectory:
    """Oracle observer that records the attack's improvements (see the module docstring).

    ``x``: the clean video, float ``(T, 3, H, W)`` in [0, 1]; ``label``: its true class;
    ``target``: the target class in the targeted mode, else ``None``; ``eps``: the L∞
    bound in [0, 1] units.
    """

    def __init__(self, x: Tensor, label: int, target: int | None, eps: float):
        if x.dim() != 4:
            raise ValueError(f"x must be one video (T, 3, H, W), got {tuple(x.shape)}")
        self._x = x.detach().to(torch.float64)
        self._x32 = x.detach().to(torch.float32)
        self._label = int(label)
        self._target = None if target is None else int(target)
        self._eps = float(eps)
        self.points: list[TrajectoryPoint] = []

    @property
    def best_map(self) -> float:
        return self.points[-1].map if self.points else float("inf")

    def __call__(self, videos: Tensor, answer, used_before: int) -> None:
        labels = answer.labels
        meets = labels == self._target if self._target is not None else labels != self._label
        rows = meets.nonzero().flatten().tolist()
        if not rows:
            return
        if self._x.device != videos.device:
            self._x = self._x.to(videos.device)
            self._x32 = self._x32.to(videos.device)
        with torch.inference_mode():
            # screen the rows in float32 (one pass each), with margins far above float32's
            # rounding, so that only a possible improvement is measured exactly (float64)
            v = videos.detach()
            if len(rows) < v.shape[0]:
                v = v.index_select(0, torch.tensor(rows, device=v.device))
            d32 = (v.to(torch.float32) - self._x32).abs_().flatten(1)
            near = (d32.amax(dim=1) <= self._eps + EPS_SLACK + SCREEN_MARGIN).tolist()
            means = (d32.mean(dim=1) * 255.0).tolist()
            for i, ok, m32 in zip(rows, near, means):
                if not ok or m32 >= self.best_map + SCREEN_MARGIN_255:
                    continue
                d = (videos[i].detach().to(torch.float64) - self._x).abs()
                if float(d.max()) > self._eps + EPS_SLACK:
                    continue
                map_255 = float(d.mean()) * 255.0
                if map_255 < self.best_map:
                    unperturbed = float((d.flatten(1).amax(dim=1) == 0).double().mean())
                    self.points.append(TrajectoryPoint(used_before + i + 1, map_255, unperturbed))

    def as_lists(self) -> list[list]:
        """The points as ``[[queries, MAP, S], ...]`` (a record's ``trajectory`` field)."""
        return [p.as_list() for p in self.points]


def best_within(trajectory: Sequence[Sequence[float]], budget: int) -> tuple[float, float] | None:
    """``(MAP, S)`` of the best point found within the first ``budget`` queries of a
    record's ``trajectory`` (``[[queries, MAP, S], ...]``, MAP decreasing), else ``None``."""
    best = None
    for q, m, s in trajectory:
        if q > budget:
            break
        best = (float(m), float(s))
    return best


def budget_curves(trajectories: Iterable[Sequence[Sequence[float]]], budgets: Sequence[int]) -> list[dict]:
    """FR (%), MAP and S (%) against the budget for a set of videos' trajectories.

    Per budget ``b``: ``FR (%)`` = share of the videos with a point within ``b`` queries;
    ``MAP`` and ``S (%)`` = means over those videos of their best point's MAP and S (as
    the tables average over successes; ``None`` where no video succeeded); ``videos``.
    """
    trajs = [list(t) for t in trajectories]
    out = []
    for b in budgets:
        best = [p for p in (best_within(t, b) for t in trajs) if p is not None]
        n = len(trajs)
        out.append({
            "budget": int(b),
            "FR (%)": 100.0 * len(best) / n if n else None,
            "MAP": sum(m for m, _ in best) / len(best) if best else None,
            "S (%)": 100.0 * sum(s for _, s in best) / len(best) if best else None,
            "videos": n,
        })
    return out


#: budgets per curve: 0, budget/CURVE_STEPS, …, budget
CURVE_STEPS = 60


def curves_frame(records, mode: str, steps: int = CURVE_STEPS):
    """Budget curves per (dataset, victim, method) of ``mode`` from the records (a
    DataFrame with ``dataset``, ``victim``, ``method``, ``mode``, ``budget`` and
    ``trajectory`` columns): one row per budget, columns as :func:`budget_curves` plus
    the three keys. Records without a ``trajectory`` (older records) are refused with a
    :class:`~sva.utils.errors.UserError` naming the group."""
    import pandas as pd

    from sva.utils.errors import UserError

    keys = ["dataset", "victim", "method"]
    cols = [*keys, "budget", "FR (%)", "MAP", "S (%)", "videos"]
    recs = records[records["mode"] == mode] if len(records) else records
    if not len(recs):
        return pd.DataFrame(columns=cols)
    if "trajectory" not in recs.columns:
        raise UserError("the attack records have no 'trajectory' field: rerun the attacks with this code")
    rows = []
    for (dataset, victim, method), g in recs.groupby(keys, sort=True):
        missing = g["trajectory"].isna()
        if missing.any():
            raise UserError(f"{dataset}/{victim}/{method} ({mode}): {int(missing.sum())} record(s) without a "
                            "'trajectory' field: rerun the attacks with this code")
        full = int(g["budget"].max())
        budgets = sorted({round(full * i / steps) for i in range(steps + 1)})
        for row in budget_curves(g["trajectory"], budgets):
            rows.append({"dataset": dataset, "victim": victim, "method": method, **row})
    return pd.DataFrame(rows, columns=cols)
