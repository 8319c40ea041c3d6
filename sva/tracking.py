"""MLflow bookkeeping: one SQLite store, experiments created once, runs tagged uniformly.

The tracking URI is ``$MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<root>/mlflow.db``
with artifacts under ``<root>/mlruns``. :func:`init_tracking` creates the database and
every experiment up front (the pipeline runs it as its own rule before parallel jobs:
concurrent first-time creation of the SQLite schema crashes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EXPERIMENTS = ("victims", "attacks", "tables")


def tracking_uri(root: str | Path = ".") -> str:
    """The MLflow tracking URI for a project rooted at ``root``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


def artifact_root(root: str | Path = ".") -> str:
    return (Path(root).resolve() / "mlruns").as_uri()


def experiment_name(prefix: str, kind: str) -> str:
    if kind not in EXPERIMENTS:
        raise ValueError(f"unknown experiment kind {kind!r}; expected one of {EXPERIMENTS}")
    return f"{prefix}-{kind}"


def _client(root: str | Path = "."):
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(root))
    return mlflow.MlflowClient()


def init_tracking(prefix: str, root: str | Path = ".") -> dict[str, str]:
    """Create the store and all experiments (idempotent). Returns name → experiment id."""
    client = _client(root)
    ids = {}
    for kind in EXPERIMENTS:
        name = experiment_name(prefix, kind)
        exp = client.get_experiment_by_name(name)
        if exp is None:
            exp_id = client.create_experiment(name, artifact_location=f"{artifact_root(root)}/{name}")
        else:
            exp_id = exp.experiment_id
        ids[name] = exp_id
    return ids


def git_commit(root: str | Path = ".") -> str:
    """The current git commit (with ``-dirty`` when the tree has changes), or ``unknown``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _retry(fn, *args, attempts: int = 8, **kwargs):
    """Retry on SQLite 'database is locked' under concurrent jobs."""
    for i in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # mlflow wraps sqlalchemy errors in MlflowException
            if "locked" not in str(err).lower() or i == attempts - 1:
                raise
            time.sleep(0.2 * 2**i)
    raise AssertionError("unreachable")


class Run:
    """A thin handle on an active MLflow run (params, metrics, artifacts)."""

    def __init__(self, client, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        flat = [Param(k, str(v)[:6000]) for k, v in _flatten(params).items()]
        for i in range(0, len(flat), 100):
            _retry(self.client.log_batch, self.run_id, params=flat[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, step or 0)
            for k, v in metrics.items()
            if v is not None
        ]
        if items:
            _retry(self.client.log_batch, self.run_id, metrics=items)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        _retry(self.client.log_artifact, self.run_id, str(path), artifact_path)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        _retry(self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


@contextlib.contextmanager
def start_run(
    prefix: str, kind: str, run_name: str, tags: Mapping[str, Any] | None = None, root: str | Path = "."
) -> Iterator[Run]:
    """Open a run in experiment ``<prefix>-<kind>``; FINISHED on success, FAILED on error.

    Every run carries the git commit as tag ``git_commit``.
    """
    client = _client(root)
    exp = _retry(client.get_experiment_by_name, experiment_name(prefix, kind))
    if exp is None:  # outside the pipeline: create on demand
        init_tracking(prefix, root)
        exp = client.get_experiment_by_name(experiment_name(prefix, kind))
    all_tags = {"git_commit": git_commit(root), "mlflow.runName": run_name, **(tags or {})}
    run = _retry(
        client.create_run, exp.experiment_id, run_name=run_name,
        tags={k: str(v) for k, v in all_tags.items()},
    )
    handle = Run(client, run.info.run_id)
    try:
        yield handle
    except BaseException:
        _retry(client.set_terminated, handle.run_id, "FAILED")
        raise
    _retry(client.set_terminated, handle.run_id, "FINISHED")
