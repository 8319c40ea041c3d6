"""Per-video records → the paper's tables (FR, Q, MAP, S per row).

FR = successes / attacked videos; MAP, S and Q are averaged over the successes
(DESIGN.md). Success is the evaluator's float check; ``FR_uint8`` repeats it after
rounding the adversarial videos to uint8.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

#: SVA rows of the paper's Table 3 (untargeted) and Table 4 (targeted):
#: (kind, victim, mode) → (MAP, S %, Q, FR %)
PAPER_SVA = {
    ("ucf101", "c3d", "untargeted"): (2.4450, 63.14, 9402.28, 86.0),
    ("ucf101", "lrcn", "untargeted"): (2.396, 62.14, 6132.38, 63.0),
    ("hmdb51", "c3d", "untargeted"): (2.3940, 51.37, 24948.67, 98.0),
    ("hmdb51", "lrcn", "untargeted"): (3.1570, 62.50, 18868.09, 64.0),
    ("ucf101", "c3d", "targeted"): (3.6450, 57.24, 36497.5, 32.0),
    ("ucf101", "lrcn", "targeted"): (3.270, 56.64, 57850.4, 41.0),
    ("hmdb51", "c3d", "targeted"): (3.8960, 62.15, 42900.3, 38.0),
    ("hmdb51", "lrcn", "targeted"): (3.5170, 66.77, 47681.9, 36.0),
}

COLUMNS = ["dataset", "victim", "method", "MAP", "S (%)", "Q", "FR (%)", "Q best episode", "FR uint8 (%)",
           "videos", "paper MAP", "paper S (%)", "paper Q", "paper FR (%)"]


def load_records(paths: list[str | Path]) -> pd.DataFrame:
    """Records from shard files (each a JSON list) or single-record JSON files."""
    rows: list[dict] = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        rows.extend(data if isinstance(data, list) else [data])
    return pd.DataFrame(rows)


def summarize(records: pd.DataFrame, kinds: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per (dataset, victim, method, mode); paper values where they exist.

    ``kinds``: dataset name → kind (``ucf101``/``hmdb51``/``synthetic``) for the
    paper lookup.
    """
    kinds = kinds or {}
    out = []
    if records.empty:
        return pd.DataFrame(columns=["mode", *COLUMNS])
    for (dataset, victim, method, mode), g in records.groupby(["dataset", "victim", "method", "mode"], sort=True):
        ok = g[g["success"]]
        mean = (lambda s: float(s.mean()) if len(s) else np.nan)
        paper = PAPER_SVA.get((kinds.get(dataset, dataset), victim, mode)) if method == "sva" else None
        out.append({
            "dataset": dataset, "victim": victim, "method": method, "mode": mode,
            "MAP": round(mean(ok["map"]), 4),
            "S (%)": round(100 * mean(ok["sparsity"]), 2),
            "Q": round(mean(ok["queries"]), 1),
            "FR (%)": round(100 * len(ok) / len(g), 1),
            "Q best episode": round(mean(ok["queries_best_episode"].astype(float)), 1),
            "FR uint8 (%)": round(100 * float(g["success_uint8"].mean()), 1),
            "videos": len(g),
            "paper MAP": paper[0] if paper else None, "paper S (%)": paper[1] if paper else None,
            "paper Q": paper[2] if paper else None, "paper FR (%)": paper[3] if paper else None,
        })
    return pd.DataFrame(out)


def table_for_mode(summary: pd.DataFrame, mode: str) -> pd.DataFrame:
    """Table 3 (``untargeted``) or Table 4 (``targeted``) in the paper's column order."""
    if summary.empty:
        return pd.DataFrame(columns=COLUMNS)
    part = summary[summary["mode"] == mode]
    return part[COLUMNS].reset_index(drop=True)
