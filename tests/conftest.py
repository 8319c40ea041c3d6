import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolate_mlflow(monkeypatch, tmp_path):
    """No test writes to the developer's mlflow.db: each gets its own store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow-test.db'}")
    yield


@pytest.fixture
def repo() -> Path:
    return REPO


def venv_env() -> dict[str, str]:
    """Environment for subprocesses: the venv's bin first on PATH, no tracking override."""
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    bin_dir = str(Path(os.sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests use tiny models: one thread is faster, and immune to OpenMP spin-waiting
    when the machine's cores are oversubscribed (2 threads were up to 15-100x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory):
    """The real DAG run once on the tiny config in a temporary folder, `snakemake` then
    `snakemake paper` (the whole experiment DAG), shared by the workflow and DVC tests
    (each test that changes it works on a copy)."""
    from workflow_utils import snakemake, write_tiny_params

    folder = tmp_path_factory.mktemp("project")
    write_tiny_params(folder)
    proc = snakemake(folder)
    # then the `paper` target on top (its tables, their arms and the reproduction
    # report under results/paper/); what it planned is kept for the workflow test
    planned = snakemake(folder, "-n", "paper").stdout
    (folder / ".paper_dry_run.txt").write_text(planned)
    snakemake(folder, "paper")
    return folder, proc
