"""The paper's claims, checked against our tables (``results/reproduction.md``).

Each check is a pure function of one or two tables (the frames of ``results/*.csv``:
columns as :mod:`sva.evaluation.aggregate` writes them; comparison tables add ``row``)
and returns one :class:`Verdict` per (dataset, victim): the claim, where the paper
makes it, a status and the numbers it rests on. Statuses:

* ``supported``: the comparison goes the paper's way, and for a fooling rate the 95 %
  Wilson intervals do not overlap;
* ``not significant``: the point estimates go the paper's way but the intervals overlap
  (too few videos to tell);
* ``not supported``: the comparison goes the other way (for FR: beyond the intervals'
  overlap, or the point estimate is on the other side);
* ``not measurable``: a row is missing or has no successful video, so MAP does not exist.

MAP, S and Q are means over each row's successful videos (``docs/design.md``), so a
MAP comparison between rows with very different FR compares different videos; the
evidence line always gives FR beside MAP. Nothing here is tuned: the thresholds are
the ones written in each function's docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = [
    "Verdict",
    "beats_random_selection",
    "chosen_setting",
    "estimator_insensitive",
    "higher_fooling_rate",
    "lower_map",
    "reward_ablation",
    "sva_frames_help_the_heuristic",
    "sparse_perturbation",
]

SUPPORTED, NOT_SIGNIFICANT, NOT_SUPPORTED, NOT_MEASURABLE = (
    "supported", "not significant", "not supported", "not measurable")


@dataclass(frozen=True)
class Verdict:
    """One claim checked on one (dataset, victim): ``status`` is one of the module's
    four statuses; ``evidence`` the numbers, one short phrase per comparison."""

    claim: str
    source: str
    where: str
    status: str
    evidence: list[str] = field(default_factory=list)


def _fr(r: pd.Series) -> str:
    return f"FR {r['FR (%)']:.0f} % [{r['FR lo (%)']:.0f}, {r['FR hi (%)']:.0f}]"


def _map(r: pd.Series) -> str:
    return "MAP –" if pd.isna(r["MAP"]) else f"MAP {r['MAP']:.3g}"


def _label(r: pd.Series) -> str:
    return str(r["row"]) if "row" in r and pd.notna(r.get("row")) else str(r["method"])


def _fr_order(a: pd.Series, b: pd.Series) -> str:
    """``a`` against ``b`` on FR: ``higher`` (a's interval entirely above b's),
    ``lower`` (entirely below), ``overlap-higher`` / ``overlap-lower`` / ``equal``."""
    if a["FR lo (%)"] > b["FR hi (%)"]:
        return "higher"
    if a["FR hi (%)"] < b["FR lo (%)"]:
        return "lower"
    if a["FR (%)"] > b["FR (%)"]:
        return "overlap-higher"
    if a["FR (%)"] < b["FR (%)"]:
        return "overlap-lower"
    return "equal"


#: the columns two arms must share to be indistinguishable (:func:`_identical`)
_OUTCOME = ("FR (%)", "MAP", "S (%)", "Q")


def _identical(a: pd.Series, b: pd.Series) -> bool:
    """True when two rows report the same outcome (FR, MAP, S and Q; missing equals
    missing): e.g. variants that change only the agent's reward weights, when the few
    updates of a short run leave the masks it samples unchanged (they draw the base
    method's random numbers). Such arms cannot tell their settings apart."""
    for col in _OUTCOME:
        if col not in a.index or col not in b.index:
            continue
        x, y = a[col], b[col]
        if not ((pd.isna(x) and pd.isna(y)) or (not pd.isna(x) and not pd.isna(y) and abs(x - y) <= 1e-9)):
            return False
    return True


def _groups(table: pd.DataFrame):
    for (dataset, victim), g in table.groupby(["dataset", "victim"], sort=True):
        yield f"{dataset}/{victim}", g.set_index("method", drop=False)


def _combine(statuses: list[str]) -> str:
    """The weakest of several comparisons' statuses."""
    for s in (NOT_MEASURABLE, NOT_SUPPORTED, NOT_SIGNIFICANT):
        if s in statuses:
            return s
    return SUPPORTED


def _against_baselines(table: pd.DataFrame, method: str, baselines: tuple[str, ...], claim: str, source: str,
                       describe, judge) -> list[Verdict]:
    """One verdict per (dataset, victim) that has ``method``: ``judge(me, other)`` gives
    a status per baseline present, ``describe(row)`` each row's numbers; the weakest
    status wins."""
    out = []
    for where, g in _groups(table):
        if method not in g.index:
            continue
        me = g.loc[method]
        present = [g.loc[b] for b in baselines if b in g.index]
        if present:
            evidence = [f"{r['method']} {describe(r)}" for r in (me, *present)]
            out.append(Verdict(claim, source, where, _combine([judge(me, other) for other in present]), evidence))
    return out


def lower_map(table: pd.DataFrame, method: str = "sva", baselines: tuple[str, ...] = ("opt", "heuristic"),
              claim: str = "SVA reaches a lower MAP than every baseline",
              source: str = "§4.4, Table 3") -> list[Verdict]:
    """``method``'s MAP below each baseline's (both need successful videos); MAP has
    no interval, so a lower mean is ``supported``, a higher one ``not supported``."""

    def judge(me, other):
        if pd.isna(me["MAP"]) or pd.isna(other["MAP"]):
            return NOT_MEASURABLE
        return SUPPORTED if me["MAP"] < other["MAP"] else NOT_SUPPORTED

    return _against_baselines(table, method, baselines, claim, source, lambda r: f"{_map(r)}, {_fr(r)}", judge)


def higher_fooling_rate(table: pd.DataFrame, method: str = "sva",
                        baselines: tuple[str, ...] = ("opt", "heuristic"),
                        claim: str = "SVA fools more videos than every baseline",
                        source: str = "§4.4, Tables 3 and 4") -> list[Verdict]:
    """``method``'s FR above each baseline's: ``supported`` when the Wilson intervals
    are disjoint, ``not significant`` when only the point estimate is higher, ``not
    supported`` when it is equal or lower."""

    def judge(me, other):
        return {"higher": SUPPORTED, "overlap-higher": NOT_SIGNIFICANT}.get(_fr_order(me, other), NOT_SUPPORTED)

    return _against_baselines(table, method, baselines, claim, source, _fr, judge)


def sparse_perturbation(table: pd.DataFrame, method: str = "sva", threshold: float = 50.0,
                        claim: str = "SVA leaves more than half of the frames untouched (S > 50 %)",
                        source: str = "§4.4") -> list[Verdict]:
    """``method``'s S (over its successful videos) above ``threshold`` %."""
    out = []
    for where, g in _groups(table):
        if method not in g.index:
            continue
        me = g.loc[method]
        if pd.isna(me["S (%)"]):
            out.append(Verdict(claim, source, where, NOT_MEASURABLE, [f"{method}: no successful video"]))
            continue
        status = SUPPORTED if me["S (%)"] > threshold else NOT_SUPPORTED
        out.append(Verdict(claim, source, where, status, [f"{method} S {me['S (%)']:.1f} %, {_fr(me)}"]))
    return out


def _pairwise(table: pd.DataFrame, first: str, second: str, claim: str, source: str) -> list[Verdict]:
    """``first`` better than ``second``: FR higher (intervals as in
    :func:`higher_fooling_rate`), or FR equal and MAP lower."""
    out = []
    for where, g in _groups(table):
        if first not in g.index or second not in g.index:
            continue
        a, b = g.loc[first], g.loc[second]
        order = _fr_order(a, b)
        evidence = [f"{_label(r)} {_fr(r)}, {_map(r)}" + (f", Q {r['Q']:.0f}" if pd.notna(r["Q"]) else "")
                    for r in (a, b)]
        if order == "equal":
            if pd.isna(a["MAP"]) or pd.isna(b["MAP"]):
                status = NOT_MEASURABLE
            else:
                status = SUPPORTED if a["MAP"] < b["MAP"] else NOT_SUPPORTED
        else:
            status = {"higher": SUPPORTED, "overlap-higher": NOT_SIGNIFICANT}.get(order, NOT_SUPPORTED)
        out.append(Verdict(claim, source, where, status, evidence))
    return out


def beats_random_selection(table: pd.DataFrame, agent: str = "sva", random: str = "random") -> list[Verdict]:
    """Fig. 7: the agent's frames beat the same number of random frames, best of five
    tries (FR higher; on equal FR, MAP lower)."""
    return _pairwise(table, agent, random, "The agent's key frames beat random frames (best of 5 tries)",
                     "§4.5.3, Fig. 7")


def sva_frames_help_the_heuristic(table: pd.DataFrame, sva_opt: str = "sva_opt",
                                  h_opt: str = "heuristic") -> list[Verdict]:
    """Fig. 8: SVA's key frames feeding the Heuristic-attack's optimiser (SVA_opt) beat
    the Heuristic-attack's own selection (H_opt): FR higher, or equal FR and MAP lower."""
    return _pairwise(table, sva_opt, h_opt, "SVA's key frames beat the Heuristic-attack's own (SVA_opt vs H_opt)",
                     "§4.5.3, Fig. 8")


def reward_ablation(table: pd.DataFrame, rows: list[str]) -> list[Verdict]:
    """Table 5 with ``rows`` = the methods of [No RL, R_attack only, ..., full SVA]:
    "R_attack significantly improves the attacking performance" (R_attack only against
    No RL, as :func:`_pairwise`), full SVA against No RL (the table's premise), and
    "R_rep and R_div have relatively small contributions" (the FR change from R_attack
    only to full SVA is at most the change from No RL to R_attack only, in absolute
    value; ``not measurable`` when the three FRs are equal, e.g. all 0 or all 100 %)."""
    if len(rows) < 3:
        return []
    no_rl, r_attack, full = rows[0], rows[1], rows[-1]
    out = _pairwise(table, r_attack, no_rl, "R_attack improves on no RL (FGSM+NES on every frame)",
                    "§4.5.1, Table 5")
    out += _pairwise(table, full, no_rl, "Full SVA improves on no RL", "§4.5.1, Table 5")
    for where, g in _groups(table):
        if not all(m in g.index for m in (no_rl, r_attack, full)):
            continue
        d_attack = g.loc[r_attack, "FR (%)"] - g.loc[no_rl, "FR (%)"]
        d_intrinsic = g.loc[full, "FR (%)"] - g.loc[r_attack, "FR (%)"]
        evidence = [(f"FR change from R_attack: {d_attack:+.0f} points; from R_rep + R_div on top: "
                     f"{d_intrinsic:+.0f} points")]
        if d_attack == 0 and d_intrinsic == 0:  # every arm at the same FR (e.g. all 0 or 100 %)
            status = NOT_MEASURABLE
        elif _identical(g.loc[r_attack], g.loc[full]):  # the reward terms changed no result
            status = NOT_MEASURABLE
            evidence.append(f"{_label(g.loc[r_attack])} and {_label(g.loc[full])} gave identical results")
        else:
            status = SUPPORTED if abs(d_intrinsic) <= abs(d_attack) else NOT_SUPPORTED
        out.append(Verdict("R_rep and R_div contribute less than R_attack", "§4.5.1, Table 5", where, status,
                           evidence))
    return out


def estimator_insensitive(table: pd.DataFrame, methods: list[str], map_tolerance: float = 0.2) -> list[Verdict]:
    """Fig. 9: "SVA is not sensitive to the gradient estimation method": every pair of
    ``methods`` has overlapping FR intervals and MAPs within ``map_tolerance`` (20 %) of
    the smaller one. ``not measurable`` when a MAP is missing and the FRs agree."""
    out = []
    for where, g in _groups(table):
        present = [m for m in methods if m in g.index]
        if len(present) < 2:
            continue
        rows = [g.loc[m] for m in present]
        evidence = [f"{_label(r)} {_fr(r)}, {_map(r)}" for r in rows]
        fr_apart = any(_fr_order(a, b) in ("higher", "lower") for i, a in enumerate(rows) for b in rows[i + 1:])
        maps = [r["MAP"] for r in rows]
        if fr_apart:
            status = NOT_SUPPORTED
        elif any(pd.isna(m) for m in maps):
            status = NOT_MEASURABLE
        else:
            status = SUPPORTED if max(maps) <= (1 + map_tolerance) * min(maps) else NOT_SUPPORTED
        out.append(Verdict("SVA is not sensitive to the gradient estimator", "§4.5.4, Fig. 9", where, status,
                           evidence))
    return out


def chosen_setting(table: pd.DataFrame, chosen: str, claim: str, source: str = "§3.4, Fig. 3") -> list[Verdict]:
    """Fig. 3: the paper's value of a swept setting (row method ``chosen``) does at least
    as well as every other value of the sweep: per other row, as :func:`_pairwise`
    (FR higher, or equal FR and MAP no higher); ``not supported`` when another value
    does better; ``not measurable`` when another value gave identical results
    (:func:`_identical`: the sweep changed nothing, so it cannot rank the values)."""
    out = []
    for where, g in _groups(table):
        if chosen not in g.index or len(g) < 2:
            continue
        me = g.loc[chosen]
        statuses = []
        same = []
        for method, other in g.iterrows():
            if method == chosen:
                continue
            if _identical(me, other):
                statuses.append(NOT_MEASURABLE)
                same.append(_label(other))
                continue
            order = _fr_order(me, other)
            if order == "equal":
                if pd.isna(me["MAP"]) or pd.isna(other["MAP"]):
                    statuses.append(NOT_MEASURABLE)
                else:
                    statuses.append(SUPPORTED if me["MAP"] <= other["MAP"] else NOT_SUPPORTED)
            else:
                statuses.append({"higher": SUPPORTED, "overlap-higher": NOT_SIGNIFICANT}.get(order, NOT_SUPPORTED))
        evidence = [f"{_label(r)} {_fr(r)}, {_map(r)}" for _, r in g.iterrows()]
        if same:
            evidence.append(f"{', '.join(same)} gave results identical to {_label(me)}")
        out.append(Verdict(claim, source, where, _combine(statuses), evidence))
    return out


def sparsity_costs_fooling_rate(table: pd.DataFrame, rows: list[str]) -> list[Verdict]:
    """Table 2 (§4.4: "the fooling rate decreases with the rising of sparsity"): the
    row of the smallest S (``rows[0]``, the grid in rising S) fools at least as often as
    the row of the largest (``rows[-1]``): ``supported`` when its FR interval lies above,
    ``not significant`` when only the point estimate does, ``not supported`` otherwise
    (equal FRs included: no fall was seen)."""
    out = []
    for where, g in _groups(table):
        present = [m for m in rows if m in g.index]
        if len(present) < 2:
            continue
        low, high = g.loc[present[0]], g.loc[present[-1]]
        order = _fr_order(low, high)
        status = {"higher": SUPPORTED, "overlap-higher": NOT_SIGNIFICANT}.get(order, NOT_SUPPORTED)
        evidence = [f"{_label(r)} {_fr(r)}, {_map(r)}" for _, r in g.loc[present].iterrows()]
        out.append(Verdict("The fooling rate falls as the sparsity S rises", "§4.4, Table 2", where, status,
                           evidence))
    return out
