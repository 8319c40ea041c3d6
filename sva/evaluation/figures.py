"""Figures built from the result tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sva.utils.atomic import atomic_path

#: the panels of :func:`attack_table_figure`: (table column, y-axis label)
PANELS = (("MAP", "MAP: grey levels (0–255), over successes\n(lower is better)"),
          ("S (%)", "S: unperturbed frames (%), over successes\n(higher is better)"),
          ("Q", "Q: queries per success, mean\n(lower is better)"),
          ("FR (%)", "FR: fooling rate (%), 95 % Wilson interval\n(higher is better)"))


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Write a matplotlib figure to ``path`` as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return Path(path)


def _fmt(value: float) -> str:
    """A bar's label: 3 significant digits, thousands as ``k``."""
    return f"{value / 1000:.3g}k" if abs(value) >= 1000 else f"{value:.3g}"


def attack_table_figure(table: pd.DataFrame, path: str | Path, title: str) -> Path:
    """Bar charts of MAP, S, Q and FR (a 2×2 grid of panels) for an attack table.

    One group of bars per (dataset, victim), one bar per method, each method in the same
    colour in every panel (legend above the panels) and labelled with its value. FR
    bars carry the 95 % Wilson interval (columns ``FR lo (%)`` / ``FR hi (%)``) as error
    bars and a diamond at FR under the mean reading (``FR (MAP ≤ ε) (%)``) where the
    table has it. A cell without a value (MAP, S and Q of a row without success) is
    written "n/a" instead of drawn as a zero-height bar, which would read as a perfect
    score. Returns ``path`` (PNG, written atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from sva.evaluation.aggregate import FR_MEAN

    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    axes = axes.flatten()
    if table.empty:
        for ax in axes:
            ax.text(0.5, 0.5, "no records", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
        fig.suptitle(title)
        fig.tight_layout()
    else:
        pairs = list(dict.fromkeys(table[["dataset", "victim"]].itertuples(index=False, name=None)))
        methods = list(dict.fromkeys(table["method"]))
        colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
        width = 0.8 / len(methods)
        small = 7 if len(methods) * len(pairs) <= 12 else 6
        for ax, (col, label) in zip(axes, PANELS, strict=True):
            ax.set_ylabel(label, fontsize=9)
            top = 0.0
            for i, method in enumerate(methods):
                for _, r in table[table["method"] == method].iterrows():
                    xpos = pairs.index((r["dataset"], r["victim"])) - 0.4 + (i + 0.5) * width
                    value = r.get(col)
                    if value is None or pd.isna(value):
                        ax.text(xpos, 0.02, "no success", transform=ax.get_xaxis_transform(), ha="center",
                                va="bottom", rotation=90, fontsize=small, color=colours[method])
                        continue
                    value = float(value)
                    top = max(top, value)
                    ax.bar(xpos, value, width * 0.9, color=colours[method], edgecolor="black", linewidth=0.4)
                    label_at = value
                    if col == "FR (%)":
                        lo, hi = r.get("FR lo (%)"), r.get("FR hi (%)")
                        if lo is not None and hi is not None and pd.notna(lo) and pd.notna(hi):
                            label_at = max(value, float(hi))  # the value above its error bar (and diamond)
                            ax.errorbar(xpos, value, yerr=[[max(value - lo, 0)], [max(hi - value, 0)]],
                                        fmt="none", ecolor="black", elinewidth=1, capsize=3)
                        mean_fr = r.get(FR_MEAN)
                        if mean_fr is not None and pd.notna(mean_fr):
                            label_at = max(label_at, float(mean_fr))
                            ax.plot(xpos, float(mean_fr), marker="D", markersize=5, color="white",
                                    markeredgecolor="black", zorder=3)
                    ax.annotate(_fmt(value), (xpos, label_at), xytext=(0, 2), textcoords="offset points",
                                ha="center", va="bottom", fontsize=small, rotation=90 if len(methods) > 3 else 0)
            ax.set_xticks(range(len(pairs)), [f"{d}\n{v}" for d, v in pairs], fontsize=9)
            ax.set_xlim(-0.5, len(pairs) - 0.5)
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
            if col == "FR (%)":
                ax.set_ylim(0, 118)  # room above 100 % for the labels
                ax.set_yticks(np.arange(0, 101, 20))
            elif top > 0:
                ax.set_ylim(0, top * 1.3)
        handles = [Patch(facecolor=colours[m], edgecolor="black", label=m) for m in methods]
        handles += [Line2D([], [], color="black", marker="|", linestyle="none", markersize=10,
                           label="FR 95 % Wilson interval"),
                    Line2D([], [], color="white", marker="D", markeredgecolor="black", linestyle="none",
                           label="FR (MAP ≤ ε)")]
        fig.suptitle(title)
        fig.tight_layout(rect=(0, 0, 1, 0.93))
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.965), ncol=len(handles),
                   fontsize=9, frameon=False)
    return save_figure(fig, path, dpi=100)


#: the rows of :func:`budget_curves_figure`: (curve column, y-axis label)
CURVE_PANELS = (("FR (%)", "FR (%): videos fooled\nwithin b queries"),
                ("MAP", "MAP (0–255) of the best\nvideo within b, over successes"),
                ("S (%)", "S (%): unperturbed frames\nof that video, over successes"))


def budget_curves_figure(curves: pd.DataFrame, path: str | Path, title: str) -> Path:
    """FR, MAP and S against the query budget b (rows) for each (dataset, victim)
    (columns), one line per method in the same colour everywhere, from
    :func:`sva.evaluation.trajectory.curves_frame`: the best result each attack had
    seen within its first b queries, from one run at the full budget (the paper's
    Fig. 6, for every method). Each column's title gives the number of videos. Returns
    ``path`` (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = list(dict.fromkeys(curves[["dataset", "victim"]].itertuples(index=False, name=None))) \
        if len(curves) else []
    cols = max(len(pairs), 1)
    fig, axes = plt.subplots(len(CURVE_PANELS), cols, figsize=(4.8 * cols + 1, 8.5), squeeze=False, sharex="col")
    if not pairs:
        for ax in axes.flatten():
            ax.text(0.5, 0.5, "no records", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
    methods = list(dict.fromkeys(curves["method"])) if len(curves) else []
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
    # a dash pattern per method as well: curves that coincide (e.g. two methods
    # at 0 % all along) stay visible
    dashes = ["-", "--", "-.", ":"]
    styles = {m: {"color": colours[m], "linestyle": dashes[i % len(dashes)], "linewidth": 1.8}
              for i, m in enumerate(methods)}
    for j, (dataset, victim) in enumerate(pairs):
        sub = curves[(curves["dataset"] == dataset) & (curves["victim"] == victim)]
        videos = sorted({int(v) for v in sub["videos"]})
        axes[0, j].set_title(f"{dataset} / {victim}  ({', '.join(map(str, videos))} videos)", fontsize=10)
        for i, (col, label) in enumerate(CURVE_PANELS):
            ax = axes[i, j]
            for method in methods:
                g = sub[sub["method"] == method]
                if g.empty:
                    continue
                ax.step(g["budget"], g[col].astype(float), where="post", label=method, **styles[method])
            if j == 0:
                ax.set_ylabel(label, fontsize=9)
            if col == "FR (%)":
                ax.set_ylim(-3, 103)
            ax.grid(alpha=0.3)
        axes[-1, j].set_xlabel("query budget b (queries per video)")
    if methods:
        handles = [plt.Line2D([], [], label=m, **styles[m]) for m in methods]
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.965), ncol=len(handles),
                   fontsize=9, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return save_figure(fig, path, dpi=100)


def moving_mean(values: list[float], window: int) -> list[float]:
    """Trailing mean over the last ``window`` values (fewer at the start), one per value."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def reward_curves_figure(records: pd.DataFrame, path: str | Path, title: str, videos: int = 3,
                         window: int = 10, labels: dict[str, str] | None = None) -> Path:
    """The agent's reward per epoch (Eq. 9, the mean over the epoch's episodes), from
    the records' ``reward_trace``: the paper's Fig. 10 (one panel per video, the first
    ``videos`` of the first method with traces: raw in grey, the ``window``-epoch
    trailing mean in colour) and Fig. 11 (last panel: each method's mean over its
    videos, per epoch). Methods without traces (no agent) are left out; the panel says
    so when none has any. ``labels``: method -> legend label. Returns ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or {}
    has = records[records["reward_trace"].map(lambda t: isinstance(t, list) and len(t) > 0)] \
        if len(records) and "reward_trace" in records else records.iloc[0:0]
    methods = list(dict.fromkeys(has["method"])) if len(has) else []
    first = has[has["method"] == methods[0]].sort_values(["dataset", "victim", "video_id"]).head(videos) \
        if methods else has
    panels = len(first) + 1
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.8), squeeze=False)
    axes = axes[0]
    for ax, (_, r) in zip(axes, first.iterrows()):
        trace = [float(v) for v in r["reward_trace"]]
        epochs = range(1, len(trace) + 1)
        ax.plot(epochs, trace, color="0.6", linewidth=1, label="reward")
        ax.plot(epochs, moving_mean(trace, window), color="tab:blue", linewidth=2, label=f"{window}-epoch mean")
        ax.set_title(f"{labels.get(r['method'], r['method'])}: {r['victim']} {r['video_id']}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("reward R (Eq. 9)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    last = axes[-1]
    for i, method in enumerate(methods):
        traces = [list(map(float, t)) for t in has[has["method"] == method]["reward_trace"]]
        longest = max(len(t) for t in traces)
        mean = [sum(t[e] for t in traces if len(t) > e) / sum(len(t) > e for t in traces) for e in range(longest)]
        last.plot(range(1, longest + 1), mean, color=plt.get_cmap("tab10")(i % 10), linewidth=2,
                  label=f"{labels.get(method, method)} ({len(traces)} videos)")
    if methods:
        last.set_title("mean reward over the videos", fontsize=9)
        last.set_xlabel("epoch")
        last.set_ylabel("reward R (Eq. 9)")
        last.grid(alpha=0.3)
        last.legend(fontsize=8)
    else:
        last.text(0.5, 0.5, "no reward traces (no method with an agent)", ha="center", transform=last.transAxes)
        last.set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
