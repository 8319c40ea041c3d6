"""Per-video records → the paper's tables (FR, Q, MAP, S per row).

FR = successes / attacked videos; MAP, S and Q are averaged over the successes
(``docs/design.md``). Success is the evaluator's float check; ``FR_uint8`` repeats it after
rounding the adversarial videos to uint8. Beside the paper's columns each row has the
median Q of the successes, Q over every attacked video (failures count their whole
spend), the 95 % Wilson interval of FR and FR under the mean-perturbation reading of
success (MAP ≤ ε); ``docs/attacks.md`` ("Table columns") defines each.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sva.evaluation.metrics import wilson_interval
from sva.evaluation.paper import paper_attack_row
from sva.utils.errors import UserError

PAPER_COLUMNS = (("MAP", "MAP"), ("S", "S (%)"), ("Q", "Q"), ("FR", "FR (%)"))
#: FR under the mean-perturbation reading of success (MAP ≤ ε, ``docs/attacks.md``)
FR_MEAN = "FR (MAP ≤ ε) (%)"
COLUMNS = ["dataset", "victim", "method", "MAP", "S (%)", "Q", "FR (%)", "Q best episode", "FR uint8 (%)",
           "Q median", "Q all videos", "FR lo (%)", "FR hi (%)", FR_MEAN,
           "videos", "paper MAP", "paper S (%)", "paper Q", "paper FR (%)"]
#: table column → key suffix in :func:`table_metrics` (flat JSON for ``dvc metrics``)
METRIC_NAMES = (("MAP", "MAP"), ("S", "S (%)"), ("Q", "Q"), ("FR", "FR (%)"), ("Q_best_episode", "Q best episode"),
                ("FR_uint8", "FR uint8 (%)"), ("Q_median", "Q median"), ("Q_all_videos", "Q all videos"),
                ("FR_lo", "FR lo (%)"), ("FR_hi", "FR hi (%)"), ("FR_mean_reading", FR_MEAN),
                ("videos", "videos"))


class RecordError(UserError):
    """Records that must not be aggregated: duplicated, foreign or missing videos."""


KEY = ["dataset", "victim", "method", "mode", "video_id"]


def load_records(paths: list[str | Path]) -> pd.DataFrame:
    """Records from shard files (each a JSON list) or single-record JSON files.

    Each row keeps the file it came from in ``source``."""
    rows: list[dict] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise RecordError(f"{path}: cannot read attack records: {err}") from None
        for rec in data if isinstance(data, list) else [data]:
            rows.append({**rec, "source": str(path)})
    return pd.DataFrame(rows)


def check_records(records: pd.DataFrame, attack_sets: dict[str, pd.DataFrame],
                  victim_sha256: dict[tuple[str, str], str] | None = None) -> None:
    """Refuse what must not be aggregated; raise :class:`RecordError` naming the files.

    * one record per (dataset, victim, method, mode, video): no duplicates;
    * every record's video is in the current attack set of its dataset, with the same
      label (and target, targeted), and every attack-set video has a record, except the
      videos a method that learns offline trained on (``offline_train_videos``);
    * ``victim_sha256`` ((dataset, victim) → sha256 of the current checkpoint): every
      record was made against that checkpoint.
    """
    if records.empty:
        return
    dup = records[records.duplicated(KEY, keep=False)]
    if len(dup):
        first = dup.iloc[0]
        files = sorted(set(dup[(dup[KEY] == first[KEY]).all(axis=1)]["source"]))
        raise RecordError(f"{len(dup)} records are duplicates, e.g. video {first['video_id']} "
                          f"({first['dataset']}/{first['victim']} {first['method']} {first['mode']}) "
                          f"in {', '.join(files)}; rerun the attack shards")
    for (dataset, victim, method, mode), g in records.groupby(KEY[:4], sort=True):
        where = ", ".join(sorted(set(g["source"])))
        aset = attack_sets.get(dataset)
        if aset is None:
            raise RecordError(f"{where}: records of dataset {dataset!r}, which has no attack set here")
        expected = aset.set_index("video_id")
        foreign = sorted(set(map(str, g["video_id"])) - set(map(str, expected.index)))
        if foreign:
            raise RecordError(f"{where}: videos {', '.join(foreign[:5])} are not in the current attack set of "
                              f"{dataset!r}; rerun the attack shards")
        # a method that learns offline (SVAL) attacks only the videos it did not train on
        trained = set()
        if "offline_train_videos" in g:
            for ids in g["offline_train_videos"]:
                trained |= set(map(str, ids)) if isinstance(ids, list) else set()
        missing = sorted(set(map(str, expected.index)) - set(map(str, g["video_id"])) - trained)
        if missing:
            raise RecordError(f"{where}: no record for attack-set videos {', '.join(missing[:5])} "
                              f"({dataset}/{victim} {method} {mode})")
        exp = expected.loc[g["video_id"].astype(str)]
        col = "target_label" if mode == "targeted" else "label"
        got = g["target"] if mode == "targeted" else g["label"]
        bad = g["video_id"][got.to_numpy() != exp[col].to_numpy()].tolist()
        if bad:
            raise RecordError(f"{where}: videos {', '.join(map(str, bad[:5]))} carry another {col} than the "
                              f"current attack set; rerun the attack shards")
        want = (victim_sha256 or {}).get((dataset, victim))
        if want is not None:
            stale = g[g.get("victim_sha256", pd.Series(index=g.index, dtype=object)) != want]
            if len(stale):
                raise RecordError(f"{', '.join(sorted(set(stale['source'])))}: {len(stale)} records were made "
                                  f"against another {victim} checkpoint than the current one; rerun the attack shards")


def summarize(records: pd.DataFrame, kinds: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per (dataset, victim, method, mode); paper values where they exist.

    ``kinds``: dataset name → kind (``ucf101``/``hmdb51``/``synthetic``) for the
    paper lookup. Records made before a column existed (no ``success_mean_reading``)
    leave that column NaN for their row rather than counting as failures.
    """
    kinds = kinds or {}
    out = []
    if records.empty:
        return pd.DataFrame(columns=["mode", *COLUMNS])
    for (dataset, victim, method, mode), g in records.groupby(["dataset", "victim", "method", "mode"], sort=True):
        ok = g[g["success"]]
        mean = (lambda s: float(s.mean()) if len(s) else np.nan)
        paper = paper_attack_row(kinds.get(dataset, dataset), victim, method, mode)
        lo, hi = wilson_interval(len(ok), len(g))
        out.append({
            "dataset": dataset, "victim": victim, "method": method, "mode": mode,
            "MAP": round(mean(ok["map"]), 4),
            "S (%)": round(100 * mean(ok["sparsity"]), 2),
            "Q": round(mean(ok["queries"]), 1),
            "FR (%)": round(100 * len(ok) / len(g), 1),
            "Q best episode": round(mean(ok["queries_best_episode"].astype(float)), 1),
            "FR uint8 (%)": round(100 * float(g["success_uint8"].mean()), 1),
            "Q median": round(float(ok["queries"].median()), 1) if len(ok) else np.nan,
            "Q all videos": round(mean(g["queries"].astype(float)), 1),
            "FR lo (%)": round(100 * lo, 1),
            "FR hi (%)": round(100 * hi, 1),
            FR_MEAN: round(100 * _rate(g, "success_mean_reading"), 1),
            "videos": len(g),
            **{f"paper {col}": (paper or {}).get(key) for key, col in PAPER_COLUMNS},
        })
    return pd.DataFrame(out)


def _rate(g: pd.DataFrame, column: str) -> float:
    """The fraction of ``g``'s records whose boolean ``column`` is true; NaN when any
    record lacks it (made before the column existed: rerun its attack)."""
    if column not in g or g[column].isna().any():
        return np.nan
    return float(g[column].astype(bool).mean())


def table_for_mode(summary: pd.DataFrame, mode: str) -> pd.DataFrame:
    """Table 3 (``untargeted``) or Table 4 (``targeted``) in the paper's column order."""
    if summary.empty:
        return pd.DataFrame(columns=COLUMNS)
    part = summary[summary["mode"] == mode]
    return part[COLUMNS].reset_index(drop=True)


def table_metrics(table: pd.DataFrame) -> dict[str, float]:
    """A table's numbers as flat ``{"<dataset>.<victim>.<method>.<column>": value}``
    (JSON for ``dvc metrics``); NaN cells (no success) are left out."""
    out: dict[str, float] = {}
    for r in table.to_dict("records"):
        key = f"{r['dataset']}.{r['victim']}.{r['method']}"
        for name, col in METRIC_NAMES:
            value = r.get(col)
            if value is not None and pd.notna(value):
                out[f"{key}.{name}"] = float(value)
    return out
