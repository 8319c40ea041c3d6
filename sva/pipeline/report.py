"""``docs/results.md``, generated from ``results/`` so its numbers cannot drift from
what the code produces.

The prose lives in a template (``docs/results.template.md``) and holds only what does
not change with a run; the numbers are filled in from the tables, the per-video
records and Snakemake's per-job benchmark files. Placeholders: ``{{table1}}``,
``{{table3}}``, ``{{table4}}``, ``{{curves3}}``, ``{{curves4}}``, ``{{timings}}``,
``{{attack_jobs}}``, ``{{window_coverage}}``, ``{{settings}}``, ``{{provenance}}``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sva.pipeline import layout, tracking
from sva.utils import atomic


def markdown_table(frame: pd.DataFrame) -> str:
    """A pandas frame as a GitHub markdown table (NaN/None shown as '–')."""
    if frame.empty:
        return "_(empty)_"
    cols = list(frame.columns)

    def cell(v) -> str:
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return "–"
        if isinstance(v, float):
            return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.1f}"
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _shown(name: str, cfg=None) -> str:
    """Where table ``name`` lives, as a reader of the documents sees it (``results/…``)."""
    return layout.table_path(cfg, "results", name).as_posix()


def _table(results: Path, name: str, cfg=None) -> str:
    path = layout.table_path(cfg, results, name)
    if not path.is_file():
        return f"_`{_shown(name, cfg)}` was not built in this run._"
    return markdown_table(pd.read_csv(path))


def curves_summary(results: Path, name: str, shares: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)) -> str:
    """FR at a few shares of the budget per (dataset, victim, method), from
    ``results/<name>_curves.csv`` (:func:`sva.evaluation.trajectory.curves_frame`)."""
    path = results / f"{name}_curves.csv"
    if not path.is_file():
        return f"_`results/{name}_curves.csv` was not built in this run._"
    curves = pd.read_csv(path)
    if curves.empty:
        return "_no records._"
    rows = []
    for (dataset, victim, method), g in curves.groupby(["dataset", "victim", "method"], sort=True):
        full = int(g["budget"].max())
        row = {"dataset": dataset, "victim": victim, "method": method, "videos": int(g["videos"].iloc[0])}
        for share in shares:
            b = round(full * share)
            at = g[g["budget"] <= b].iloc[-1]
            row[f"FR (%) within {b:,} queries"] = round(float(at["FR (%)"]), 1)
        rows.append(row)
    return markdown_table(pd.DataFrame(rows))


def _benchmarks(results: Path) -> pd.DataFrame:
    """One row per job: rule, job (wildcards path), seconds, end (unix time), max RSS."""
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        try:
            b = pd.read_csv(tsv, sep="\t")
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
            continue
        if b.empty:
            continue
        rel = tsv.relative_to(results / "benchmarks").with_suffix("")
        rows.append({"rule": rel.parts[0], "job": "/".join(rel.parts[1:]), "s": float(b["s"].iloc[0]),
                     "end": tsv.stat().st_mtime, "max_rss": float(b.get("max_rss", pd.Series([float("nan")])).iloc[0])})
    return pd.DataFrame(rows)


def timings(results: Path) -> str:
    """Wall time per rule and from the first job's start to each table (markdown)."""
    jobs = _benchmarks(results)
    if jobs.empty:
        return "_No Snakemake benchmark files under `results/benchmarks/`._"
    start = float((jobs["end"] - jobs["s"]).min())
    per_rule = jobs.groupby("rule", sort=False).agg(jobs=("s", "size"), total_s=("s", "sum"), longest_s=("s", "max"),
                                                    peak_rss_mib=("max_rss", "max")).reset_index()
    per_rule = per_rule.rename(columns={"total_s": "job seconds (sum)", "longest_s": "longest job (s)",
                                        "peak_rss_mib": "peak RSS (MiB)"})
    lines = [markdown_table(per_rule.round(1)), ""]
    for name in ("table1", "table3", "table4"):
        path = results / f"{name}.csv"
        if not path.is_file():
            continue
        # `dvc commit` rewrites a committed output, and with it its mtime: the job's log
        # (never a DVC output) keeps the time the job ended
        log = results.parent / "logs" / ("table1.log" if name == "table1" else f"attack_table/{name}.log")
        written = min(path.stat().st_mtime, log.stat().st_mtime) if log.is_file() else path.stat().st_mtime
        if written >= start:
            lines.append(f"* `results/{name}.csv` written **{written - start:,.0f} s** after the "
                         "first job started.")
    lines.append("\nThese spans are honest only for a run that built everything in one go (a rerun keeps the "
                 "benchmark files of the jobs it did not rerun).")
    return "\n".join(lines)


def attack_jobs(results: Path) -> str:
    """Per (mode, victim, method): videos, per-video wall seconds, the victim queries
    answered, the shards' job seconds (Snakemake's benchmark files) and their ratio, the
    job time per query, and peak memory (markdown)."""
    rows = []
    for path in layout.record_files(results):
        r = json.loads(path.read_text())
        rows.append({"mode": r["mode"], "dataset": r["dataset"], "victim": r["victim"], "method": r["method"],
                     "wall": r["wall_seconds"], "queries": r["queries"], "rss": r.get("peak_rss_mib")})
    if not rows:
        return "_No attack records._"
    keys = ["mode", "dataset", "victim", "method"]
    frame = pd.DataFrame(rows).groupby(keys).agg(
        videos=("wall", "size"), **{"seconds per video (min)": ("wall", "min"),
                                    "seconds per video (max)": ("wall", "max"),
                                    "queries (sum)": ("queries", "sum"),
                                    "peak RSS of a job (MiB)": ("rss", "max")}).reset_index()
    jobs = _benchmarks(results)
    shards = jobs[jobs["rule"] == "attack_shard"] if not jobs.empty else jobs
    if not shards.empty:  # job path: mode/dataset/victim/method/shardN
        parts = shards["job"].str.split("/", expand=True)
        if parts.shape[1] == 5:
            seconds = shards.assign(**dict(zip(keys, [parts[i] for i in range(4)]))).groupby(keys)["s"].sum()
            frame = frame.merge(seconds.rename("job seconds (sum)").reset_index(), on=keys, how="left")
            frame["ms of job time per query"] = 1000 * frame["job seconds (sum)"] / frame["queries (sum)"]
            frame = frame[[c for c in frame.columns if c != "peak RSS of a job (MiB)"] + ["peak RSS of a job (MiB)"]]
    return markdown_table(frame.round(1)) + (
        "\n\n(Every record on disk is counted, including records of videos no longer in the attack set. Job "
        "seconds are those of the shards' last runs; the time per query is what the victim's forwards and the "
        "attack's own work cost together, with one core per job.)")


def _shard_records(paths) -> list[dict]:
    """The records of shard files (each a JSON list), in order."""
    return [r for p in paths for r in json.loads(Path(p).read_text())]


def _current_records(folder: Path, cfg) -> list[dict]:
    """The records of ``folder``'s current shards (``attacks.shards``; a shard file of an
    earlier layout is not read)."""
    return _shard_records(p for p in (folder / f"shard{i}.json" for i in range(cfg.attacks.shards)) if p.is_file())


def window_coverage(results: Path, data: Path = Path("data")) -> str:
    """The window-coverage table of every synthetic dataset's current attack records."""
    from sva.evaluation.analysis import coverage_summary, episode_coverage, load_windows

    parts = []
    for windows in sorted((data / "raw").glob("*/windows.csv")):
        dataset = windows.parent.name
        shards = layout.shard_files(results, dataset)
        records = _shard_records(shards)
        if not records:
            continue
        table = coverage_summary(episode_coverage(records, load_windows(windows)))
        parts.append(f"`{dataset}` (`.venv/bin/sva window-coverage --windows {windows} "
                     f"results/attacks/*/{dataset}/*/*/shard*.json "
                     f"results/{layout.PAPER}/attacks/*/{dataset}/*/*/shard*.json`):\n\n" + markdown_table(table.round(2)))
    return "\n\n".join(parts) or "_No synthetic dataset with attack records in this run._"


def settings(config: dict | None) -> str:
    """The run's seed and attack settings, as Snakemake merged the config files."""
    if not config:
        return "_configuration not given._"
    return "```yaml\n" + yaml.safe_dump({"seed": config.get("seed"), "attacks": config.get("attacks")},
                                        sort_keys=False) + "```"


def _relative(path: str | Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies inside it, else as given."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def write_results_doc(out: str | Path, template: str | Path, tables: list[str | Path] | None = None,
                      results: str | Path = "results", root: str | Path = ".", config: dict | None = None) -> Path:
    """Fill ``template`` from ``results`` (and the run's merged ``config``); write ``out``
    atomically."""
    results, root = Path(results), Path(root)
    text = Path(template).read_text(encoding="utf-8")
    fill = {
        "table1": lambda: _table(results, "table1"),
        "table3": lambda: _table(results, "table3"),
        "table4": lambda: _table(results, "table4"),
        "curves3": lambda: curves_summary(results, "table3"),
        "curves4": lambda: curves_summary(results, "table4"),
        "timings": lambda: timings(results),
        "attack_jobs": lambda: attack_jobs(results),
        "window_coverage": lambda: window_coverage(results, root / "data"),
        "settings": lambda: settings(config),
        "provenance": lambda: (f"Generated by `snakemake docs/results.md` from `results/` at commit "
                               f"{tracking.git_commit(root, ignore=(_relative(out, root),))}. "
                               "Do not edit: edit `docs/results.template.md` and rerun."),
    }

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in fill:
            raise KeyError(f"{template}: unknown placeholder {{{{{name}}}}}; known: {', '.join(fill)}")
        return fill[name]()

    return atomic.write_text(out, re.sub(r"\{\{(\w+)\}\}", sub, text))


# ---------------------------------------------------------------- reproduction report
#: the paper's experiments, what builds each here, and the file that holds it: a table's
#: name and the file's path in that table's folder (sva/pipeline/layout.py, table_folder)
PAPER_EXPERIMENTS = (
    ("Table 1", "victim accuracy", "table1", "table1.csv"),
    ("Table 2", "SVAL under sparsities S = 10 … 70 %", "table2", "table2.csv"),
    ("Table 3", "untargeted attacks", "table3", "table3.csv"),
    ("Table 4", "targeted attacks", "table4", "table4.csv"),
    ("Table 5", "reward ablation", "table5", "table5.csv"),
    ("Fig. 3", "γ2, γ1 and ε sweeps", "fig3_eps", "fig3_eps.csv"),
    ("Figs. 4 / 5", "example adversarial videos", "table3", "figures/table3_examples.png"),
    ("Fig. 6", "MAP, S and FR against the query budget", "table3", "figures/table3_curves.png"),
    ("Fig. 7", "SVA against random frames", "fig7", "fig7.csv"),
    ("Fig. 8", "SVA_opt against H_opt", "fig8", "fig8.csv"),
    ("Fig. 9", "SVA's gradient estimator", "fig9", "fig9.csv"),
    ("Figs. 10 / 11", "reward per epoch", "fig10", "figures/fig10_rewards.png"),
)


def _read(results: Path, name: str, cfg) -> pd.DataFrame | None:
    path = layout.table_path(cfg, results, name)
    return pd.read_csv(path) if path.is_file() else None


def _verdicts(results: Path, cfg) -> list:
    """Every claim this run's tables can speak to (:mod:`sva.evaluation.claims`)."""
    from sva.evaluation import claims

    out = []
    for name, mode in (("table3", "untargeted"), ("table4", "targeted")):
        t = _read(results, name, cfg)
        if t is None:
            continue
        source = f"§4.4, Table {name[-1]}"
        out += claims.lower_map(t, source=source)
        out += claims.higher_fooling_rate(t, source=source)
        if mode == "untargeted":
            out += claims.sparse_perturbation(t, source=source)
    a = cfg.attacks
    for name in ("table2", "table2_targeted"):
        if (t := _read(results, name, cfg)) is not None and name in cfg.tables:
            out += claims.sparsity_costs_fooling_rate(t, list(cfg.tables[name].rows.values()))
    if (t := _read(results, "table5", cfg)) is not None and "table5" in cfg.tables:
        out += claims.reward_ablation(t, list(cfg.tables["table5"].rows.values()))
    # pairwise figures: (table, the paper's method, the one it beats, the check)
    for name, mine, theirs, check in (("fig7", "sva", "random", claims.beats_random_selection),
                                      ("fig8", "sva_opt", "heuristic", claims.sva_frames_help_the_heuristic)):
        if (t := _read(results, name, cfg)) is None or name not in cfg.tables:
            continue
        methods = list(cfg.tables[name].rows.values())
        first = next((m for m in methods if a.base_method(m) == mine), None)
        second = next((m for m in methods if a.base_method(m) == theirs), None)
        if first and second:
            out += check(t, first, second)
    if (t := _read(results, "fig9", cfg)) is not None and "fig9" in cfg.tables:
        out += claims.estimator_insensitive(t, list(cfg.tables["fig9"].rows.values()))
    for name, what in (("fig3_gamma2", "γ2 = 3"), ("fig3_gamma1", "γ1 = 2")):
        # the sweep's row that runs the main method is the paper's choice
        t = _read(results, name, cfg)
        if t is not None and name in cfg.tables and "sva" in cfg.tables[name].rows.values():
            out += claims.chosen_setting(t, "sva", f"The paper's {what} does at least as well as the other values")
    return out


#: §4.4: "we set S = 0.5 in the following experiment" (un-targeted), "S = 0.2 is a good
#: choice" (targeted)
PAPER_SVAL_SPARSITY = {"untargeted": 0.5, "targeted": 0.2}


def sval_choice(results: Path, cfg) -> list[str]:
    """Lines on SVAL's sparsity: what Table 2's rule picks from this run's grid
    (:func:`sva.attacks.sval.choose_sparsity`) beside the paper's pick."""
    from sva.attacks.sval import SVAL

    lines = []
    for mode in ("untargeted", "targeted"):
        grids = [g for g in cfg.table_reads("sval", mode) if g in cfg.tables]
        for grid in grids:
            if (t := _read(results, grid, cfg)) is None:
                continue
            rows = {m: cfg.attacks.method_cfg(m) for m in cfg.tables[grid].rows.values()}
            for dataset, victim in sorted(set(zip(t["dataset"], t["victim"]))):
                # the same choice SVAL's jobs make (sva/pipeline/attack_job.py, tables_hints)
                hint = SVAL.hints_from_tables(cfg.attacks.sval, mode, {grid: t}, rows, dataset, victim)
                lines.append(f"- {mode}, {dataset}/{victim} (`{_shown(grid, cfg)}`): the rule picks "
                             f"**S = {hint['sparsity']:g}** ({hint['sparsity_choice']['rule']}); the paper picked "
                             f"S = {PAPER_SVAL_SPARSITY[mode]:g} on C3D/UCF-101.")
    return (["## SVAL's sparsity (Table 2's rule)", "", *lines, ""]) if lines else []


def failure_reasons(results: Path, cfg) -> list[str]:
    """The "Why videos were not fooled" section: one measured sentence per (mode,
    dataset, victim, method) of this run's configuration with failed videos
    (:func:`sva.evaluation.diagnosis.failure_summary`), from the records of the current
    shards (``attacks.shards``; a shard file of an earlier layout is not read)."""
    from sva.evaluation.diagnosis import failure_summary

    wanted = set(cfg.attacks.methods) | {m for t in cfg.tables.values() for m in t.rows.values()}
    lines = []
    for d in (p for p in layout.method_dirs(results) if p.name in wanted):
        records = _current_records(d, cfg)
        if records and (summary := failure_summary(records)) is not None:
            lines.append(f"- {summary.sentence()}")
    if not lines:
        return []
    return ["## Why videos were not fooled (measured)", "",
            ("A claim that is not supported, or not measurable, comes from videos a method did not fool. For each "
             "method with such videos, from its records: whether they spent the whole budget; for the "
             "boundary-search attacks, how far their closest adversarial video lay (its L∞ over ε; 1 would be a "
             "success) and whether that distance was still shrinking over the last half of the queries "
             "(by more than 1 %); for SVA and its kin, the episodes they ran (`sva/evaluation/diagnosis.py`)."),
            "", *lines, ""]


def variant_frames(results: Path, cfg) -> list[str]:
    """The "Which frames SVA's variants sampled" section: for each variant of SVA in
    this run's comparison tables, how many of its episodes sampled SVA's own frames and
    how many agent updates shaped them (:func:`sva.evaluation.agreement.frame_agreement`),
    from the records of the current shards."""
    from sva.evaluation.agreement import frame_agreement

    a = cfg.attacks
    variants = {m for t in cfg.tables.values() for m in t.rows.values()
                if m != "sva" and m in a.variants and a.base_method(m) == "sva"}
    lines = []
    for d in sorted((p for p in layout.method_dirs(results) if p.name in variants), key=lambda p: p.name):
        mode, dataset, victim = d.parts[-4:-1]
        base = layout.method_dir(cfg, results, mode, dataset, victim, "sva")
        if (found := frame_agreement(_current_records(base, cfg), _current_records(d, cfg))) is not None:
            lines.append(f"- {found.sentence()}")
    if not lines:
        return []
    return ["## Which frames SVA's variants sampled (measured)", "",
            ("A variant of SVA draws SVA's random numbers, so its first epoch samples SVA's masks, and only the "
             "agent's updates can make its later masks differ. With E epochs, E − 1 updates come before the last "
             "sampling. The first is a sign step: Adam moves each weight by its learning rate in the direction of "
             "its gradient, so reward weights that keep the gradient's signs give the same agent (`docs/attacks.md`, "
             "\"How many agent updates\"). Where a variant sampled SVA's frames in every episode, its results "
             "cannot differ from SVA's, and the claims that compare them are not measurable on this run. The study "
             "`reward_ablation` (`config/studies/reward_ablation.yaml`) runs Table 5's arms with 6 epochs, so that "
             "5 updates shape their masks."),
            "", *lines, ""]


def reproduction_report(results: str | Path = "results", root: str | Path = ".", config: dict | None = None,
                        out: str | Path = "results/paper/reproduction.md") -> str:
    """``results/paper/reproduction.md``: every claim of the paper our tables can check, with
    its verdict and numbers, then our tables beside the paper's, the comparison tables,
    the diagnostics (success against queries, window coverage) and which experiments
    this run did not build. Everything is read from ``results``."""
    from sva.pipeline.config import validate_config

    results, root = Path(results), Path(root)
    cfg = validate_config(config or {}, "config")
    verdicts = _verdicts(results, cfg)
    commit = tracking.git_commit(root, ignore=(_relative(out, root),))
    lines = ["# Reproduction report: the paper's claims on this run", "",
             (f"Generated by `snakemake paper` from `results/` at commit {commit}. Do not edit: every number "
              "comes from the tables below (`sva/pipeline/report.py`, `sva/evaluation/claims.py`)."), "",
             "## The claims", ""]
    if verdicts:
        frame = pd.DataFrame([{"claim": v.claim, "paper": v.source, "dataset/victim": v.where,
                               "verdict": f"**{v.status}**", "numbers": "; ".join(v.evidence)} for v in verdicts])
        lines += [markdown_table(frame), ""]
        counts = pd.Series([v.status for v in verdicts]).value_counts()
        lines += ["Verdicts: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".", ""]
    else:
        lines += ["_No table this run built speaks to a claim._", ""]
    lines += [("How to read a verdict: **supported** — the comparison goes the paper's way, and for a fooling "
               "rate the 95 % Wilson intervals do not overlap; **not significant** — the point estimates go the "
               "paper's way but the intervals overlap (too few videos to tell); **not supported** — the "
               "comparison goes the other way; **not measurable** — a row has no successful video, so its MAP "
               "does not exist, or the arms being compared gave identical results (same FR, MAP, S and Q: e.g. "
               "reward weights that changed none of the masks a short run's agent sampled), so they cannot be "
               "told apart. MAP, S and Q are means over each row's successful videos: read them with FR. "
               "The thresholds are in `sva/evaluation/claims.py`; nothing is tuned to a result."), ""]
    lines += failure_reasons(results, cfg)
    lines += variant_frames(results, cfg)
    lines += ["## Where the claims come from: our tables beside the paper's", ""]
    for name, title in (("table3", "Table 3 — untargeted"), ("table4", "Table 4 — targeted")):
        lines += [f"### {title} (`{_shown(name, cfg)}`)", "", _table(results, name, cfg), ""]
    for name, spec in cfg.tables.items():
        figure = (layout.table_folder(cfg, "results", name) / "figures" / f"{name}.png").as_posix()
        lines += [f"### {name}: {spec.title or name} (`{_shown(name, cfg)}`, `{figure}`)", "",
                  _table(results, name, cfg), ""]
    lines += sval_choice(results, cfg)
    lines += ["## Diagnostics", "", "### Success against queries (Table 3's trajectories)", "",
              curves_summary(results, "table3"), "", "### Which frames the attacks touched", "",
              window_coverage(results, root / "data"), "",
              "## The paper's experiments in this run", ""]
    rows = []
    for exp, what, name, file in PAPER_EXPERIMENTS:
        shown = (layout.table_folder(cfg, "results", name) / file).as_posix()
        built = (layout.table_folder(cfg, results, name) / file).is_file()
        rows.append({"experiment": exp, "what": what, "here": f"`{shown}`" if built else "not built in this run"})
    lines += [markdown_table(pd.DataFrame(rows)), ""]
    return "\n".join(lines)


def write_reproduction(out: str | Path, results: str | Path = "results", root: str | Path = ".",
                       config: dict | None = None) -> Path:
    """Write :func:`reproduction_report` to ``out`` atomically."""
    return atomic.write_text(out, reproduction_report(results, root, config, out))
