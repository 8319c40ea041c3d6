"""dvc.yaml's dependencies cover every package file its stages' Snakemake rules run."""

from __future__ import annotations

import yaml

from sva.pipeline import provenance

#: DVC stage → the Snakemake stages (sva/pipeline/provenance.py names) its command runs
RUNS = {
    "data": ["download", "snippets", "features"],
    "victims": ["train_victim", "table1"],
    "attack_sets": ["attack_set"],
    "untargeted": ["attack_shard", "attack_table"],
    "targeted": ["attack_shard", "attack_table"],
    "paper": ["attack_shard", "ablation_table", "reproduction"],
}


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def test_every_stage_depends_on_the_code_it_runs_and_on_seed(repo):
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert set(stages) == set(RUNS)
    for name, smk_stages in RUNS.items():
        deps = stages[name]["deps"]
        for smk in smk_stages:
            if smk in provenance.STAGE_FUNCTIONS:
                module = f"sva/pipeline/stages/{provenance.STAGE_FUNCTIONS[smk]}.py"
                assert _covered(module, deps), f"dvc.yaml stage {name!r} does not depend on {module}"
            for path in provenance.stage_files(smk):
                rel = path.relative_to(provenance.PACKAGE_DIR.parent).as_posix()
                assert _covered(rel, deps), f"dvc.yaml stage {name!r} does not depend on {rel} ({smk} runs it)"
        assert "seed" in stages[name]["params"], name
        assert "workflow/rules/common.smk" in deps and "Snakefile" in deps


def test_metrics_are_declared(repo):
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    declared = {next(iter(m)) for s in stages.values() for m in s.get("metrics", [])}
    assert declared == {"results/metrics/table1.json", "results/metrics/table3.json", "results/metrics/table4.json"}


def test_the_paper_stage_owns_results_paper_and_reads_the_main_run(repo):
    """`snakemake paper` writes only under results/paper/ (sva/pipeline/layout.py): that
    folder is the `paper` stage's one output, and the main run's records and tables are
    its dependencies, so no stage writes into another stage's output."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    paper = stages["paper"]
    assert [next(iter(o)) for o in paper["outs"]] == ["results/paper"]
    assert {"seed", "datasets", "attacks", "tables"} <= set(paper["params"])
    assert {"results/attacks/untargeted", "results/table3.csv", "results/table1.csv"} <= set(paper["deps"])
    # `make paper` builds no Table 4: a dependency on it would fail the Makefile's `dvc commit`
    assert not any("targeted" in d and "untargeted" not in d or "table4" in d for d in paper["deps"])
    outs = [next(iter(o)) for s in stages.values() for o in s.get("outs", [])]
    for a in outs:
        for b in outs:
            assert a == b or not b.startswith(a.rstrip("/") + "/"), (a, b)
