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
