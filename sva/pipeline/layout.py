"""Where the pipeline's results live: one place for every path the rules, the attack
jobs and the reports share (``docs/design.md``, "Results layout").

::

    results/                              (results/studies/<name>/ for a study)
      table1.csv, table3.csv, table4.csv  the main run's tables (and a comparison table its
      figures/                            methods read), their figures
      attacks/<mode>/<dataset>/<victim>/<method>/
                                          records of the main run's methods (attacks.methods)
      paper/                              what the `paper` target adds: one DVC stage's output
        attacks/<mode>/<dataset>/<victim>/<method>/
                                          records of the methods only comparison tables run
        <name>.csv, figures/<name>.png, figures/<name>_rewards.png
                                          the comparison tables (tables.<name>)
        reproduction.md                   the reproduction report

The main run is ``attacks.methods`` and everything they need (:func:`main_methods`):
the methods whose records they read (random frames read SVA's) and the comparison
tables their settings choose from with those tables' rows (at paper scale SVAL is a
Table 3 method whose S comes from Table 2: Table 2 and its rows are then the main
run's, at ``results/table2.csv``). A comparison-table row that names a main-run method
(e.g. SVA in Table 5) reads the main run's records; only the other rows' methods are
attacked under ``paper/``. So the main run and the paper target never write into each
other's folders, and DVC can version ``paper/`` as one stage's output.
"""

from __future__ import annotations

from pathlib import Path

#: the folder (under the results folder) of everything the `paper` target adds
PAPER = "paper"
#: the tables of the main run, at the top of the results folder (sva/pipeline/config.py)
MAIN_TABLES = ("table1", "table3", "table4")


MODES = ("untargeted", "targeted")


def main_methods(cfg) -> set[str]:
    """``attacks.methods`` and, transitively, the methods they depend on
    (:attr:`sva.attacks.base.Attack.depends_on`) and the rows of the tables they read
    (:meth:`sva.pipeline.config.Config.table_reads`), in either mode."""
    from sva.attacks.base import get_attack

    found: set[str] = set()
    todo = list(cfg.attacks.methods)
    while todo:
        method = todo.pop()
        if method in found:
            continue
        found.add(method)
        todo += list(get_attack(cfg.attacks.base_method(method)).depends_on)
        for mode in MODES:
            for name in cfg.table_reads(method, mode):
                if name in cfg.tables:
                    todo += list(cfg.tables[name].rows.values())
    return found


def main_tables(cfg) -> set[str]:
    """Tables 1, 3 and 4 and the comparison tables a main-run method reads."""
    mains = main_methods(cfg)
    return set(MAIN_TABLES) | {n for m in mains for mode in MODES for n in cfg.table_reads(m, mode)}


def is_main_method(cfg, method: str) -> bool:
    """True when ``method``'s records belong to the main run (:func:`main_methods`)."""
    return method in main_methods(cfg)


def records_base(cfg, results: str | Path, method: str) -> Path:
    """The folder that holds ``attacks/`` for ``method``: the results folder for a
    main-run method, ``<results>/paper`` for one only comparison tables run."""
    return Path(results) if is_main_method(cfg, method) else Path(results) / PAPER


def method_dir(cfg, results: str | Path, mode: str, dataset: str, victim: str, method: str) -> Path:
    """``<base>/attacks/<mode>/<dataset>/<victim>/<method>``: its shard files and, under
    ``videos/``, one record per attacked video (shared by every shard)."""
    return records_base(cfg, results, method) / "attacks" / mode / dataset / victim / method


def table_folder(cfg, results: str | Path, name: str) -> Path:
    """Where table ``name`` and (under ``figures/``) its figures live: the results
    folder for the main run's tables (:func:`main_tables`; Tables 1, 3 and 4 only when
    ``cfg`` is None), else ``<results>/paper``."""
    main = set(MAIN_TABLES) if cfg is None else main_tables(cfg)
    return Path(results) if name in main else Path(results) / PAPER


def table_path(cfg, results: str | Path, name: str) -> Path:
    """``<folder>/<name>.csv`` (:func:`table_folder`)."""
    return table_folder(cfg, results, name) / f"{name}.csv"


def reproduction_path(results: str | Path) -> Path:
    return Path(results) / PAPER / "reproduction.md"


def method_dirs(results: str | Path) -> list[Path]:
    """Every ``<mode>/<dataset>/<victim>/<method>`` folder of records, main run first."""
    out: list[Path] = []
    for base in (Path(results), Path(results) / PAPER):
        out += sorted(p for p in (base / "attacks").glob("*/*/*/*") if p.is_dir())
    return out


def record_files(results: str | Path) -> list[Path]:
    """Every per-video record (``videos/<video>.json``) of both folders."""
    return [p for d in method_dirs(results) for p in sorted((d / "videos").glob("*.json"))]


def shard_files(results: str | Path, dataset: str = "*") -> list[Path]:
    """Every shard file (``shard<k>.json``) of both folders, of one dataset or all."""
    out: list[Path] = []
    for base in (Path(results), Path(results) / PAPER):
        out += sorted((base / "attacks").glob(f"*/{dataset}/*/*/shard*.json"))
    return out


__all__ = ["MAIN_TABLES", "PAPER", "is_main_method", "main_methods", "main_tables", "method_dir", "method_dirs",
           "record_files", "records_base", "reproduction_path", "shard_files", "table_folder", "table_path"]
