"""Why videos were not fooled, measured from the attack records
(``results/reproduction.md``, "Why videos were not fooled").

A claim of the paper fails on our benchmark when a method fools few videos, or none.
The records say why, without guessing:

* **What ended it.** A boundary-search attack records why it stopped (``stop``: the
  budget, stagnation, or no adversarial start found); for the others, whether each
  failed video spent its query budget, at least :data:`SPENT` (95 %) of it: the last
  request, or the last episode under its cap, may not fit what is left
  (``budget_scope: video``; under ``episode`` the budget bounds each episode and this is
  left out).
* **How far the closest adversarial video was** (a method that searches the decision
  boundary, i.e. its episodes record ``linf``: Opt-attack, Sign-OPT, Heuristic-attack,
  SVA_opt). Its L∞ distance over ε: 1.0 would be a success, 3 means the attack found
  adversarial videos only three times farther out than allowed.
* **Whether it was still closing in.** From the trajectory of that episode (``trace``:
  the best L∞ after each iteration, with the queries spent): the distance shrank by
  more than :data:`SHRINKING` (1 %) over the second half of the queries. Then the
  budget ended an attack still making progress; otherwise it had stalled.
* **Episodes** (SVA and its kin): how many each failed video ran, none successful, and
  how many frames they perturbed on average.

Pure functions of record dicts as :mod:`sva.pipeline.attack_job` writes them.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass

__all__ = ["SHRINKING", "SPENT", "STOPS", "FailureSummary", "closest_linf", "failure_summary", "still_shrinking"]

#: the relative fall of the closest L∞ over the second half of the queries that counts
#: as "still closing in"
SHRINKING = 0.01
#: the share of the budget a failed video must have spent to count as "spent it"
SPENT = 0.95
#: how a recorded stop reason reads
STOPS = {"budget": "the budget", "stagnation": "stagnation (the smoothing fell below its floor)",
         "init": "no adversarial start found", "eps": "reaching ε"}


@dataclass(frozen=True)
class FailureSummary:
    """One (mode, dataset, victim, method)'s failed videos, measured."""

    mode: str
    dataset: str
    victim: str
    method: str
    videos: int
    failed: int
    #: failed videos that spent at least :data:`SPENT` of the budget (None: the budget
    #: bounds episodes, or the method records its stop reasons instead)
    spent_budget: int | None
    #: failed videos by recorded stop reason (empty: the method records none)
    stops: dict[str, int]
    #: median over failed videos of the closest adversarial video's L∞ / ε (None: not a
    #: boundary-search method, or no adversarial video was found)
    closest_over_eps: float | None
    #: failed videos with a closest distance (the denominator of ``shrinking``)
    with_distance: int
    #: of those, the ones whose distance still shrank over the second half of the queries
    shrinking: int
    #: median episodes per failed video (SVA and its kin; None for one-episode methods)
    episodes: float | None
    #: mean frames perturbed per episode of the failed videos (None: no episode lists frames)
    frames: float | None

    def sentence(self) -> str:
        """The measurements in one sentence (markdown)."""
        who = f"{self.method} ({self.mode}, {self.dataset}/{self.victim})"
        parts = [f"{who}: {self.failed} of {self.videos} videos not fooled"]
        if self.stops:
            parts.append("ended by " + ", ".join(f"{STOPS.get(k, k)} ({n})" for k, n in self.stops.items()))
        elif self.spent_budget is not None:
            parts.append("every one spent its query budget" if self.spent_budget == self.failed
                         else f"{self.spent_budget} of them spent the query budget")
        if self.closest_over_eps is not None:
            parts.append(f"the closest adversarial videos lay at {self.closest_over_eps:.1f} × ε (median L∞ over ε)")
            parts.append(f"{self.shrinking} of {self.with_distance} were still closing in over the last half of "
                         "their queries (L∞ down by more than 1 %)")
        if self.episodes is not None and self.episodes > 1:
            parts.append(f"{self.episodes:g} episodes each (median), none successful"
                         + (f", {self.frames:.1f} frames perturbed per episode on average"
                            if self.frames is not None else ""))
        return "; ".join(parts) + "."


def _best_episode(record: dict) -> dict | None:
    """The episode with the smallest recorded ``linf`` (None if none records one)."""
    eps = [e for e in record.get("episodes", []) if e.get("linf") is not None]
    return min(eps, key=lambda e: e["linf"]) if eps else None


def closest_linf(record: dict) -> float | None:
    """The L∞ distance of the closest adversarial video a boundary search answered,
    in [0, 1] pixel units (None: the method records none)."""
    best = _best_episode(record)
    return None if best is None else float(best["linf"])


def still_shrinking(record: dict, threshold: float = SHRINKING) -> bool | None:
    """Whether the closest adversarial distance fell by more than ``threshold``
    (relative) over the second half of the queries the best episode spent; None
    without a trajectory."""
    best = _best_episode(record)
    trace = [t for t in (best or {}).get("trace", []) if t.get("linf") is not None and t.get("queries") is not None]
    if len(trace) < 2:
        return None
    half = trace[-1]["queries"] / 2
    at_half = [t["linf"] for t in trace if t["queries"] <= half]
    if not at_half:
        return None
    return trace[-1]["linf"] < (1 - threshold) * at_half[-1]


def failure_summary(records: list[dict]) -> FailureSummary | None:
    """The failed videos of one (mode, dataset, victim, method)'s ``records``,
    measured (module docstring); None when every video was fooled or there is none."""
    failed = [r for r in records if not r["success"]]
    if not failed:
        return None
    first = records[0]
    video_scope = all(r.get("budget_scope", "video") == "video" for r in failed)
    spent = sum(1 for r in failed if r["queries"] >= SPENT * r["budget"]) if video_scope else None
    reasons = [[e["stop"] for e in r.get("episodes", []) if e.get("stop")] for r in failed]
    stops = Counter(rs[0] for rs in reasons if len(rs) == 1)
    ratios, shrinking = [], 0
    for r in failed:
        d = closest_linf(r)
        if d is None:
            continue
        ratios.append(d / r["eps"])
        shrinking += bool(still_shrinking(r))
    counts = [len(r.get("episodes", [])) for r in failed]
    frames = [len(e["frames"]) if isinstance(e.get("frames"), list) else e.get("frames")
              for r in failed for e in r.get("episodes", [])]
    frames = [f for f in frames if isinstance(f, (int, float))]
    return FailureSummary(
        mode=first["mode"], dataset=first["dataset"], victim=first["victim"], method=first["method"],
        videos=len(records), failed=len(failed), spent_budget=None if stops else spent,
        stops=dict(stops.most_common()),
        closest_over_eps=statistics.median(ratios) if ratios else None, with_distance=len(ratios),
        shrinking=shrinking, episodes=float(statistics.median(counts)) if counts and max(counts) > 1 else None,
        frames=statistics.fmean(frames) if frames else None)
