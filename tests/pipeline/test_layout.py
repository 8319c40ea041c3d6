"""Where results live (sva/pipeline/layout.py): the main run's methods and tables at the
top of the results folder, what only the `paper` target needs under results/paper/."""

from __future__ import annotations

from pathlib import Path

from sva.pipeline import layout
from sva.pipeline.config import load_config


def test_the_main_run_keeps_its_methods_and_the_paper_target_gets_the_rest(repo):
    cfg = load_config(repo / "params.yaml")
    mains = layout.main_methods(cfg)
    assert mains == set(cfg.attacks.methods) == {"sva", "dense", "opt", "heuristic"}
    r = Path("results")
    assert layout.method_dir(cfg, r, "untargeted", "synthetic", "c3d", "sva") == \
        r / "attacks/untargeted/synthetic/c3d/sva"
    for arm in ("sva_r_attack", "random", "sval", "sval_s10", "sva_opt"):
        assert layout.method_dir(cfg, r, "untargeted", "synthetic", "c3d", arm) == \
            r / f"paper/attacks/untargeted/synthetic/c3d/{arm}"
    assert layout.table_path(cfg, r, "table3") == r / "table3.csv"
    for name in cfg.tables:
        assert layout.table_path(cfg, r, name) == r / "paper" / f"{name}.csv"
    assert layout.reproduction_path(r) == r / "paper/reproduction.md"


def test_a_table_a_main_method_reads_and_its_rows_belong_to_the_main_run(repo):
    """At paper scale SVAL is a Table 3 method whose S comes from Table 2's grid: the
    grid, its rows' attacks and SVAL's own are the main run's, so `snakemake` (and DVC's
    `untargeted` stage) never writes into results/paper/."""
    cfg = load_config(repo / "params.yaml", repo / "config/paper.yaml")
    assert "sval" in cfg.attacks.methods
    mains = layout.main_methods(cfg)
    assert {f"sval_s{s}" for s in range(10, 80, 10)} <= mains
    assert "sva_r_attack" not in mains and "random" not in mains
    assert {"table2", "table2_targeted"} <= layout.main_tables(cfg)
    assert layout.table_path(cfg, "results", "table2") == Path("results/table2.csv")
    assert layout.table_path(cfg, "results", "table5") == Path("results/paper/table5.csv")


def test_record_and_shard_files_come_from_both_folders(tmp_path):
    for base in (tmp_path, tmp_path / "paper"):
        d = base / "attacks/untargeted/synthetic/c3d" / ("sva" if base == tmp_path else "random")
        (d / "videos").mkdir(parents=True)
        (d / "videos/v1.json").write_text("{}")
        (d / "shard0.json").write_text("[]")
    assert [p.relative_to(tmp_path).as_posix() for p in layout.record_files(tmp_path)] == \
        ["attacks/untargeted/synthetic/c3d/sva/videos/v1.json", "paper/attacks/untargeted/synthetic/c3d/random/videos/v1.json"]
    assert len(layout.shard_files(tmp_path, "synthetic")) == 2 and layout.shard_files(tmp_path, "ucf101") == []
    assert [d.name for d in layout.method_dirs(tmp_path)] == ["sva", "random"]
