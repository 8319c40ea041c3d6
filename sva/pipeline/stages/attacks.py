"""Stages of ``workflow/rules/attacks.smk``: attack a shard of videos, Tables 3 and 4.

Thin wrappers: plain arguments in, files out; the Snakemake scripts in
``workflow/scripts/`` unpack the ``snakemake`` object and call them."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from sva.pipeline import tracking
from sva.utils import atomic
from sva.pipeline.config import Config, limit_videos
from sva.utils.devices import keep_cpu_memory, pick_device
from sva.pipeline.provenance import attack_settings
from sva.utils.errors import UserError
from sva.utils.hashing import file_sha256

log = logging.getLogger(__name__)


def attack_shard(
    cfg: Config, dataset: str, victim: str, method: str, mode: str, shard: int, attack_set_csv: Path,
    snippets_dir: Path, features_path: Path, ckpt_path: Path, out_json: Path, root: Path = Path("."),
    threads: int = 1, results: Path | None = None,
) -> list[dict]:
    """Attack one shard of the attack set; one MLflow run per attacked video.

    ``results``: the results folder the records of the methods this one depends on and
    the tables it reads are found in (:mod:`sva.pipeline.layout`; default: the one of a
    main-run ``out_json``).

    Claims a free GPU first when CUDA is present (see :mod:`sva.pipeline.gpu`). Per-video
    records are kept under ``<shard folder>/videos/`` as they finish, so a killed job
    resumes where it stopped; the shard file (the Snakemake output) is written last.
    """
    from sva.pipeline.gpu import claim_gpu

    claim = claim_gpu(Path(root) / ".gpu-locks")
    import torch

    from sva.pipeline.attack_job import run_shard
    from sva.victims.checkpoints import load_victim
    from sva.data.snippets import load_snippets

    torch.set_num_threads(max(1, int(threads)))
    keep_cpu_memory()
    try:
        device = pick_device(cfg.device)
        store = load_snippets(Path(snippets_dir))
        feats = np.load(features_path, mmap_mode="r")
        model, _info = load_victim(ckpt_path, device, expect=victim)
        aset = pd.read_csv(attack_set_csv)
        prefix = cfg.tracking.experiment_prefix

        settings = {"attacks": attack_settings(cfg, method, mode)}

        def log_run(record: dict, png: Path, rec_path: Path) -> None:
            # never raises: a tracking failure is one warning, the attacks go on
            tracking.log_attack_record(prefix, {**record, "params": settings}, rec_path, png, root)

        victim_sha = file_sha256(ckpt_path)
        log.info("%s/%s %s %s shard %d/%d: victim %s (sha256 %s), device %s", dataset, victim, method, mode,
                 shard, cfg.attacks.shards, ckpt_path, victim_sha[:16], device)
        out_dir = Path(out_json).parent  # shared by every shard: re-sharding reuses finished videos
        records = run_shard(cfg, dataset, victim, method, mode, shard, aset, store, feats, model, device,
                            out_dir, victim_sha, on_record=log_run, results=results)
        atomic.write_json(out_json, records)
        return records
    finally:
        claim.release()


def attack_table(cfg: Config, mode: str, shard_paths: list[Path], out_csv: Path, out_png: Path,
                 root: Path = Path("."), attack_set_csvs: list[Path] | None = None,
                 ckpt_paths: list[Path] | None = None, out_metrics: Path | None = None,
                 out_examples: Path | None = None, out_curves: Path | None = None,
                 out_curves_png: Path | None = None) -> pd.DataFrame:
    """Table 3 (untargeted) or Table 4 (targeted) from the shard records, plus a figure.

    Refuses duplicate or foreign records (:func:`sva.evaluation.aggregate.check_records`) against
    the attack sets (``results/attack_sets/<dataset>.csv``) and the victim checkpoints
    (``results/victims/<dataset>/<victim>.pt``) given. ``out_metrics``: the table's
    numbers as flat JSON (``dvc metrics diff`` compares two runs); ``out_examples``: a
    PNG of one example strip per (dataset, victim, method); ``out_curves`` /
    ``out_curves_png``: FR, MAP and S against the query budget from the records'
    trajectories (:func:`sva.evaluation.trajectory.curves_frame`), as CSV and figure."""
    from sva.evaluation.aggregate import check_records, load_records, summarize, table_for_mode, table_metrics
    from sva.evaluation.figures import attack_table_figure

    records = load_records(shard_paths)
    sets = {Path(p).stem: pd.read_csv(p, dtype={"video_id": str}) for p in attack_set_csvs or []}
    shas = {(Path(p).parent.name, Path(p).stem): file_sha256(p) for p in ckpt_paths or []}
    if attack_set_csvs is not None:
        check_records(records, sets, shas)
    kinds = {name: ds.kind for name, ds in cfg.datasets.items()}
    table = table_for_mode(summarize(records, kinds), mode)
    atomic.write_csv(out_csv, table)
    if out_metrics is not None:
        atomic.write_json(out_metrics, table_metrics(table))
    attack_table_figure(table, out_png, f"{mode} attacks")
    if out_curves is not None or out_curves_png is not None:
        from sva.evaluation.figures import budget_curves_figure
        from sva.evaluation.trajectory import curves_frame

        curves = curves_frame(records, mode)
        if out_curves is not None:
            atomic.write_csv(out_curves, curves)
        if out_curves_png is not None:
            budget_curves_figure(curves, out_curves_png, f"{mode} attacks: the best result found within b queries")
    if out_examples is not None:
        from sva.evaluation.strips import example_strips

        example_strips(records, out_examples)
    _track_table(cfg, "table3" if mode == "untargeted" else "table4", mode, table, out_csv, out_png, root)
    return table


def _track_table(cfg: Config, name: str, mode: str, table: pd.DataFrame, out_csv: Path, out_png: Path,
                 root: Path) -> None:
    """One MLflow run per table: its MAP, S, Q and FR per row, the CSV and the figure."""
    with tracking.start_run(cfg.tracking.experiment_prefix, "tables", name, {"table": name, "mode": mode},
                            root) as run:
        for r in table.to_dict("records"):
            key = f"{r['dataset']}.{r['victim']}.{r['method']}"
            run.log_metrics({f"{key}.{m}": r[c] for m, c in
                             (("MAP", "MAP"), ("S", "S (%)"), ("Q", "Q"), ("FR", "FR (%)")) if pd.notna(r[c])})
        run.log_artifact(out_csv)
        run.log_artifact(out_png)


def ablation_table(cfg: Config, table: str, shard_paths: list[str | Path], out_csv: Path, out_png: Path,
                   attack_set_csvs: list[str | Path] | None = None, ckpt_paths: list[str | Path] | None = None,
                   root: Path = Path("."), out_rewards_png: Path | None = None) -> pd.DataFrame:
    """A comparison table whose rows are named methods or variants (``cfg.tables[table]``,
    e.g. Table 5, the reward ablation), from their shard records, plus its bar figure.

    Same columns and checks as Tables 3 and 4 (:func:`attack_table`), with a first
    column ``row`` (the row's label) and the rows in the configured order, per
    (dataset, victim). Refuses records of a method that is not one of the rows.
    ``out_rewards_png``: the agent's reward per epoch of the rows that have one
    (Figs. 10 and 11, :func:`sva.evaluation.figures.reward_curves_figure`)."""
    from sva.evaluation.aggregate import RecordError, check_records, load_records, summarize, table_for_mode
    from sva.evaluation.figures import attack_table_figure

    spec = cfg.tables.get(table)
    if spec is None:
        raise UserError(f"tables.{table}: not configured (have {', '.join(cfg.tables) or 'none'})")
    labels = {method: label for label, method in spec.rows.items()}
    records = load_records(shard_paths)
    foreign = sorted(set(records["method"]) - set(labels)) if not records.empty else []
    if foreign:
        raise RecordError(f"tables.{table}: records of {', '.join(foreign)}, which is not a row of the table")
    sets = {Path(p).stem: pd.read_csv(p, dtype={"video_id": str}) for p in attack_set_csvs or []}
    if spec.videos is not None:  # the first N videos of each set (tables.<name>.videos)
        sets = {d: a[a["video_id"].isin(limit_videos(a["video_id"], spec.videos))] for d, a in sets.items()}
        if not records.empty:
            ids = records["video_id"].astype(str)
            allowed = {d: set(a["video_id"]) for d, a in sets.items()} or {
                d: set(limit_videos(set(g), spec.videos)) for d, g in ids.groupby(records["dataset"])}
            records = records[[v in allowed.get(d, set()) for d, v in zip(records["dataset"], ids)]]
    shas = {(Path(p).parent.name, Path(p).stem): file_sha256(p) for p in ckpt_paths or []}
    if attack_set_csvs is not None:
        check_records(records, sets, shas)
    kinds = {name: ds.kind for name, ds in cfg.datasets.items()}
    out = table_for_mode(summarize(records, kinds), spec.mode)
    order = {method: i for i, method in enumerate(spec.rows.values())}
    out = out.assign(_order=out["method"].map(order)).sort_values(["dataset", "victim", "_order"], kind="stable")
    out = out.drop(columns="_order").reset_index(drop=True)
    out.insert(0, "row", out["method"].map(labels))
    if spec.map_only_at_full_fr:  # Table 2's "-": a MAP over fewer videos is not comparable
        out["MAP"] = out["MAP"].where(out["FR (%)"] >= 100.0)
    atomic.write_csv(out_csv, out)
    attack_table_figure(out.assign(method=out["row"]).drop(columns="row"), out_png,
                        f"{table}: {spec.title or 'one row per arm'} ({spec.mode})")
    if out_rewards_png is not None:
        from sva.evaluation.figures import reward_curves_figure

        reward_curves_figure(records, out_rewards_png, f"{table}: the agent's reward per epoch ({spec.mode})",
                             labels=labels)
    _track_table(cfg, table, spec.mode, out, out_csv, out_png, root)
    return out
