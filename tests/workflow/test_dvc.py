"""`dvc repro` reproduces the pipeline; a second `dvc repro` does nothing; a code edit
shows in `dvc status` for exactly the stages that run that code; `dvc metrics` reads
the tables' numbers."""

from __future__ import annotations

import json
import shutil

import pytest

from workflow_utils import copy_project, run, write_tiny_params

pytestmark = pytest.mark.slow


def test_dvc_repro_twice_status_and_metrics(tmp_path, tiny_project):
    copy_project(tmp_path)
    write_tiny_params(tmp_path)
    # start from the tiny run Snakemake already made (its outputs and metadata): DVC
    # has no lock yet, so it runs every stage, and Snakemake redoes only what is missing
    built, _ = tiny_project
    for rel in ("data", "results", ".snakemake", "mlflow.db", "mlruns"):
        src = built / rel
        if src.is_dir():
            shutil.copytree(src, tmp_path / rel, symlinks=True)
        elif src.is_file():
            shutil.copy2(src, tmp_path / rel)
    run(["git", "init", "-q"], tmp_path)
    # what `make paper` ends with, on a copy: every stage it built commits (no Table 4)
    made = tmp_path.parent / f"{tmp_path.name}-made"
    shutil.copytree(tmp_path, made, symlinks=True)
    commit = next(line.strip().split(" ", 1)[1] for line in (made / "Makefile").read_text().splitlines()
                  if line.strip().startswith("$(BIN)/dvc commit") and " paper" in line)
    run(["dvc", *commit.split()], made)
    assert set(json.loads(run(["dvc", "status", "--json"], made).stdout)) == {"targeted"}
    first = run(["dvc", "repro"], tmp_path, timeout=900)
    assert "Running stage 'data'" in first.stdout
    assert (tmp_path / "results/table1.csv").is_file()
    assert (tmp_path / "results/attack_sets/tiny.csv").is_file()
    assert (tmp_path / "results/table3.csv").is_file() and (tmp_path / "results/table4.csv").is_file()
    assert (tmp_path / "results/figures/table4.png").is_file()
    # the `paper` stage: Snakemake had built it in the tiny run, DVC records it
    assert "Running stage 'paper'" in first.stdout
    assert (tmp_path / "results/paper/reproduction.md").is_file()
    assert (tmp_path / "dvc.lock").is_file()
    second = run(["dvc", "repro"], tmp_path)
    assert "Running stage" not in second.stdout
    status = run(["dvc", "status"], tmp_path)
    assert "up to date" in status.stdout

    metrics = json.loads(run(["dvc", "metrics", "show", "--json"], tmp_path).stdout)
    flat = json.dumps(metrics)
    assert "tiny.c3d.sva.FR" in flat and "tiny.c3d.test_accuracy" in flat

    # an edit to the report code changes the `paper` stage only
    report = tmp_path / "sva/pipeline/report.py"
    report.write_text(report.read_text() + "\n# an edit\n")
    assert set(json.loads(run(["dvc", "status", "--json"], tmp_path).stdout)) == {"paper"}

    # an edit to the attack code: the attack stages change, the data and victims do not
    fgsm = tmp_path / "sva/attacks/fgsm.py"
    fgsm.write_text(fgsm.read_text() + "\n# an edit\n")
    status = run(["dvc", "status", "--json"], tmp_path)
    changed = set(json.loads(status.stdout))
    assert {"untargeted", "targeted", "paper"} <= changed, changed
    assert not changed & {"data", "victims", "attack_sets"}, changed

    # a seed change reaches every stage
    params = tmp_path / "params.yaml"
    params.write_text(params.read_text().replace("seed: 0", "seed: 1"))
    changed = set(json.loads(run(["dvc", "status", "--json"], tmp_path).stdout))
    assert {"data", "victims", "attack_sets", "untargeted", "targeted", "paper"} <= changed, changed
