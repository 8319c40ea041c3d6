# Validate the whole configuration once, before any job runs (sva/pipeline/config.py).
import os

from sva.pipeline import layout
from sva.pipeline.provenance import stage_key
from sva.pipeline.studies import apply_study, logs_dir, results_dir

# `--config study=<name>` merges config/studies/<name>.yaml over the configuration and
# sends the attack results to results/studies/<name>/ (sva/pipeline/studies.py)
CFG, STUDY = apply_study(
    config, "configuration (params.yaml + --configfile)", workflow.basedir
)
OUT = results_dir(STUDY)
LOGS = logs_dir(STUDY)
DATASETS = sorted(CFG.datasets)
MODELS = list(CFG.victims.models)
METHODS = list(CFG.attacks.methods)
# every method a job may run: Tables 3/4's, the variants and the rows of other tables
ALL_METHODS = list(dict.fromkeys([*METHODS, *CFG.attacks.method_names()]))
# the methods only comparison tables run: their records go under results/paper/
# (sva/pipeline/layout.py), the `paper` target's own folder
PAPER_METHODS = [m for m in ALL_METHODS if not layout.is_main_method(CFG, m)]
PAPER_OUT = f"{OUT}/{layout.PAPER}"
# attack_shard runs the main run's methods, paper_shard the others (no name is both)
MAIN_METHOD_RE = "|".join(m for m in ALL_METHODS if m not in PAPER_METHODS) or "(?!x)x"
PAPER_METHOD_RE = "|".join(PAPER_METHODS) or "(?!x)x"
# likewise the comparison tables: the main run's (those its methods read, e.g. Table 2 at
# paper scale, where SVAL is a Table 3 method) at the top, the others under paper/
MAIN_TABLE_RE = (
    "|".join(t for t in CFG.tables if t in layout.main_tables(CFG)) or "(?!x)x"
)
PAPER_TABLE_RE = (
    "|".join(t for t in CFG.tables if t not in layout.main_tables(CFG)) or "(?!x)x"
)
SHARDS = list(range(CFG.attacks.shards))
TABLE_MODES = {"table3": "untargeted", "table4": "targeted"}


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="|".join(MODELS),
    victim="|".join(MODELS),
    method="|".join(ALL_METHODS),
    mode="untargeted|targeted",
    shard=r"\d+",
    table="table3|table4",
    # a comparison table's name (tables.<name>); matches nothing when there is none
    ablation="|".join(CFG.tables) or "(?!x)x",


def key(stage, **fixed):
    """params.key of a rule: a hash of the config slice the stage reads and of its code
    (sva/pipeline/provenance.py), so a change reruns exactly the jobs it affects."""

    def of(wc):
        names = {
            "dataset": "dataset",
            "model": "model",
            "victim": "model",
            "table": "table",
            "ablation": "table",
            "method": "method",
            "mode": "mode",
        }
        given = {names[k]: v for k, v in dict(wc).items() if k in names}
        return stage_key(CFG, stage, **given, **fixed)

    return of


def shard_files(mode, datasets, victims, methods):
    """Every shard file of these methods, each under its own records folder: the main
    run's or results/paper/ (sva/pipeline/layout.py)."""
    return [
        f"{layout.method_dir(CFG, OUT, mode, d, v, m)}/shard{s}.json"
        for d in datasets
        for v in victims
        for m in methods
        for s in SHARDS
    ]


def attack_shards(mode):
    """Every shard file one attack table is built from."""
    return shard_files(mode, DATASETS, MODELS, METHODS)


def dependency_shards(wc):
    """Shard files of the methods this attack job's method reads records of (a DAG
    edge: e.g. random frame selection after SVA; sva/attacks/base.py, depends_on),
    and the comparison tables its settings choose from (SVAL's sparsity: Table 2)."""
    from sva.attacks import get_attack

    deps = get_attack(CFG.attacks.base_method(wc.method)).depends_on
    return shard_files(wc.mode, [wc.dataset], [wc.victim], deps) + [
        str(layout.table_path(CFG, OUT, name))
        for name in CFG.table_reads(wc.method, wc.mode)
    ]


def attack_priority(wc):
    """Longest-expected attack jobs first (sva/pipeline/config.py, job_priority)."""
    return CFG.job_priority(wc.method)


def result_tables():
    """The attack tables the configured modes produce."""
    return [t for t, mode in TABLE_MODES.items() if mode in CFG.attacks.modes]


def study_tables():
    """The attack tables of this run, under results/ or results/studies/<name>/."""
    return expand(f"{OUT}/{{table}}.csv", table=result_tables())


def ablation_shards(table):
    """Every shard file of the rows of ``tables.<table>`` (e.g. Table 5)."""
    spec = CFG.tables[table]
    return shard_files(
        spec.mode,
        DATASETS,
        spec.victims or MODELS,
        list(dict.fromkeys(spec.rows.values())),
    )


def paper_tables():
    """The comparison tables (beyond Tables 3 and 4) this configuration defines."""
    return [str(layout.table_path(CFG, OUT, name)) for name in CFG.tables]
