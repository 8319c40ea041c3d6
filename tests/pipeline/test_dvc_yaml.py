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
}


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def test_every_stage_depends_on_the_code_it_runs_and_on_seed(repo):
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert set(stages) == set(RUNS)
    for name, smk_stages in RUNS.items():
        deps = stages[name]["deps"]
        for smk in smk_stages:
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
