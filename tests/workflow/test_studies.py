"""A named study runs in the main run's folder, writes under results/studies/<name>/
and leaves the main run's results as they were."""

from __future__ import annotations

import json

import mlflow
import pytest

from workflow_utils import snakemake

pytestmark = pytest.mark.slow


def _tree(folder, *globs):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for g in globs for p in sorted(folder.glob(g))}


def test_the_documented_study_command_writes_beside_the_main_run(tiny_project):
    folder, _ = tiny_project
    main = _tree(folder, "results/*.csv", "results/attacks/*/*/*/*/videos/*.json", "results/victims/*/*.pt",
                 "results/attack_sets/*.csv", "data/features/*/*.npy", "docs/results.md")
    assert any("attacks" in str(p) for p in main)

    snakemake(folder, "--config", "study=long_episodes")  # README: the study command

    assert _tree(folder, *{str(p.relative_to(folder)) for p in main}) == main  # nothing of the main run moved
    study = folder / "results/studies/long_episodes"
    assert (study / "table3.csv").is_file() and (study / "figures/table3.png").is_file()
    records = sorted(study.glob("attacks/untargeted/tiny/*/*/videos/*.json"))
    assert {r.parts[-3] for r in records} == {"sva"}  # the study runs SVA only
    for path in records:
        r = json.loads(path.read_text())
        assert len(r["epochs"]) <= 1 and r["queries"] <= r["budget"]  # 1 epoch (the study's setting)
    assert (folder / "logs/studies/long_episodes/attack_table/table3.log").is_file()
    # its MLflow runs live in experiments of their own
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    assert len(mlflow.search_runs(experiment_names=["sva-long_episodes-attacks"])) == len(records)

    dry = snakemake(folder, "-n", "--config", "study=long_episodes")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    dry = snakemake(folder, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr  # the main run is still complete


def test_an_unknown_study_is_a_config_error(tiny_project):
    folder, _ = tiny_project
    with pytest.raises(AssertionError, match=r"config/studies/nope\.yaml: no such study file \(studies: .*long_episodes"):
        snakemake(folder, "-n", "--config", "study=nope")
