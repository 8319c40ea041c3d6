"""`dvc repro` reproduces the pipeline; a second `dvc repro` does nothing."""

from __future__ import annotations

import shutil
import subprocess

from conftest import REPO
from workflow_utils import run, write_tiny_params


def _copy_project(dest):
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()
    for rel in files:
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def test_dvc_repro_twice(tmp_path):
    _copy_project(tmp_path)
    write_tiny_params(tmp_path)
    run(["git", "init", "-q"], tmp_path)
    first = run(["dvc", "repro"], tmp_path, timeout=900)
    assert "Running stage 'data'" in first.stdout
    assert (tmp_path / "results/table1.csv").is_file()
    assert (tmp_path / "results/attack_sets/tiny.csv").is_file()
    assert (tmp_path / "results/table3.csv").is_file() and (tmp_path / "results/table4.csv").is_file()
    assert (tmp_path / "results/figures/table4.png").is_file()
    assert (tmp_path / "dvc.lock").is_file()
    second = run(["dvc", "repro"], tmp_path)
    assert "Running stage" not in second.stdout
    status = run(["dvc", "status"], tmp_path)
    assert "up to date" in status.stdout
