"""Figures built from the result tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sva.utils.atomic import atomic_path


def attack_table_figure(table: pd.DataFrame, path: str | Path, title: str) -> Path:
    """Bar charts of MAP, S, Q and FR per (dataset, victim), one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("MAP", "MAP (0-255, lower is better)"), ("S (%)", "S % (higher is better)"),
               ("Q", "Q (lower is better)"), ("FR (%)", "FR % (higher is better)")]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    if table.empty:
        for ax in axes:
            ax.text(0.5, 0.5, "no records", ha="center")
    else:
        groups = [f"{d}\n{v}" for d, v in table[["dataset", "victim"]].drop_duplicates().itertuples(index=False)]
        methods = list(dict.fromkeys(table["method"]))
        width = 0.8 / max(len(methods), 1)
        for ax, (col, label) in zip(axes, metrics):
            for i, method in enumerate(methods):
                part = table[table["method"] == method]
                keys = [f"{d}\n{v}" for d, v in part[["dataset", "victim"]].itertuples(index=False)]
                xs = [groups.index(k) + i * width for k in keys]
                ax.bar(xs, part[col].fillna(0), width, label=method)
            ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], groups, fontsize=8)
            ax.set_title(label, fontsize=9)
        axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(path)
