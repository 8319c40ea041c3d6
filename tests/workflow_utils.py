"""Shared helpers for the tests that run the real pipeline on a tiny config."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from conftest import REPO, venv_env

#: the tiny configuration, a file (snakemake-workflows style): `.test/config.yaml`
TINY = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())


def write_tiny_params(folder: Path) -> Path:
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(TINY, sort_keys=False))
    return path


def run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a command with the venv on PATH; fail the test with its output on error."""
    proc = subprocess.run(cmd, cwd=cwd, env=venv_env(), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


def snakemake(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return run(["snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2", *args], folder)


def copy_project(dest: Path) -> Path:
    """Copy the repository's tracked and untracked-but-not-ignored files to ``dest``:
    what a fresh clone holds, whatever the user built in the working tree (``dvc.lock``,
    which `make demo` writes, describes that run's outputs and is left out)."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()
    for rel in files:
        if rel == "dvc.lock":
            continue
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def planned_jobs(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a ``snakemake -n`` printed; a job's priority, when
    Snakemake printed one (not 0), is in the dict too, under ``priority``."""
    jobs: list[tuple[str, dict[str, str]]] = []
    rule = None
    for line in output.splitlines():
        line = line.strip()
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            rule = line.split()[1].rstrip(":")
            jobs.append((rule, {}))
        elif line.startswith("wildcards:") and jobs:
            for part in line.removeprefix("wildcards:").split(","):
                k, _, v = part.strip().partition("=")
                jobs[-1][1][k] = v
        elif line.startswith("priority:") and jobs:
            jobs[-1][1]["priority"] = line.removeprefix("priority:").strip()
    return jobs
