"""MLflow bookkeeping that never blocks the work: one store, experiments created once,
runs tagged uniformly.

The tracking URI is ``$MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<root>/mlflow.db``.
Artifacts go to ``mlruns/`` beside the SQLite database (``<root>/mlruns`` for the
default store), or where an HTTP tracking server puts them. Three experiments per
prefix: ``<prefix>-victims``, ``<prefix>-attacks``, ``<prefix>-tables``.

**Failures.** Tracking is bookkeeping; it must never stop an attack or a training. Every
public function here catches whatever MLflow (or SQLAlchemy, or requests) raises, logs
*one* warning on the ``sva.pipeline.tracking`` logger naming the tracking URI (and, for SQLite,
the database file) with a one-line reason, and disables tracking for that URI for the
rest of the process: later calls are silent no-ops, nothing is retried. Only SQLite's
transient ``database is locked`` under concurrent jobs is retried (:func:`_retry`).
Against an HTTP server the client's retries and timeout are lowered in-process
(:data:`HTTP_ENV_DEFAULTS`, unless the user set them) so an unreachable server costs
seconds, not minutes. What was not logged during an outage is logged afterwards by
:func:`sync_records` (``sva track``), which is idempotent.

**Concurrency.** Creating a fresh SQLite store (its schema) and the experiments is
serialized across processes with ``fcntl.flock`` on ``<database>.lock`` beside the
database, so any number of jobs may call :func:`init_tracking`, :func:`start_run` or
:func:`log_attack_record` at once on a database that does not exist yet.

**The MLflow UI.** Every experiment carries ``mlflow.experimentKind =
custom_model_development``, which makes MLflow 3's UI open it on the classic runs table
(not the GenAI "Overview"/"Traces" pages), and saved views (experiment tags
``mlflow.sharedViewState.<id>``, the format the UI's "Views" menu writes) that show the
metric columns, which the runs table hides by default. See ``docs/tracking.md``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Callable, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

EXPERIMENTS = ("victims", "attacks", "tables")

#: Experiment tag read by MLflow 3's UI to pick an experiment's pages and its landing tab
#: (``mlflow/server/js``: ``ExperimentKind``); ``custom_model_development`` is "Machine
#: learning": the runs table. Without it the UI guesses, and an empty experiment opens
#: on the GenAI pages.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

#: Prefix of the experiment tags that hold the runs page's saved views ("Views" menu,
#: ``?viewStateShareKey=<id>`` links).
SAVED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."

#: Run tag: ``true`` on the run that holds a video's current record, ``false`` on runs
#: of the same (dataset, victim, method, mode, video) under an older record key.
CURRENT_TAG = "sva.current"

#: MLflow HTTP client settings applied in-process for ``http(s)://`` tracking URIs unless
#: already in the environment: one retry after ~1 s, 5 s per request (MLflow's defaults,
#: 7 retries with exponential backoff and 120 s, block for minutes when the server is down).
HTTP_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}

#: Longest wait, in seconds, for the store's lock file before tracking is given up.
LOCK_TIMEOUT_S = 120.0

# tags every attack run carries, from the record's fields
_ATTACK_IDENTITY = ("dataset", "victim", "method", "mode", "video")
_ATTACK_METRICS = ("success", "success_uint8", "map", "sparsity", "queries", "linf", "wall_seconds")

_state_lock = threading.Lock()
_disabled: dict[str, str] = {}  # tracking URI -> reason tracking was given up
_ready: dict[tuple[str, str], dict[str, str]] = {}  # (URI, prefix) -> experiment name -> id
_held = threading.local()  # re-entrancy depth of the store lock in this thread


# ----------------------------------------------------------------------------- locations


def tracking_uri(root: str | Path = ".") -> str:
    """The MLflow tracking URI for a project rooted at ``root``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


def artifact_root(root: str | Path = ".") -> str:
    """Where new experiments keep their artifacts, as a file URI: ``mlruns/`` beside the
    SQLite database (``<root>/mlruns`` for the default store), else ``<root>/mlruns``."""
    db = sqlite_path(tracking_uri(root))
    return ((db.parent if db is not None else Path(root).resolve()) / "mlruns").as_uri()


def experiment_name(prefix: str, kind: str) -> str:
    if kind not in EXPERIMENTS:
        raise ValueError(f"unknown experiment kind {kind!r}; expected one of {EXPERIMENTS}")
    return f"{prefix}-{kind}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite://`` tracking URI (absolute), else ``None``.

    Understands ``sqlite:///relative.db``, ``sqlite:////abs/path.db`` and SQLite URI
    filenames (``sqlite:///file:/abs/path.db?mode=ro&uri=true``).
    """
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    if path.startswith("file:"):
        path = path[len("file:"):]
    if not path or path == ":memory:":
        return None
    return Path(os.path.abspath(path))


def _where(uri: str) -> str:
    db = sqlite_path(uri)
    return f"tracking URI {uri}" + (f", SQLite database file {db}" if db is not None else "")


# ------------------------------------------------------------------------- failure policy


def tracking_disabled(root: str | Path = ".") -> str | None:
    """Why tracking to ``root``'s tracking URI was given up in this process, or ``None``."""
    return _disabled.get(tracking_uri(root))


def reset_tracking_state() -> None:
    """Forget earlier failures and cached experiment ids: the next call tries MLflow again.

    For tests and long-lived processes; a pipeline job never needs it."""
    with _state_lock:
        _disabled.clear()
        _ready.clear()


def _reason(err: BaseException) -> str:
    """One line: what went wrong, for a person, then the exception itself."""
    text = " ".join(str(err).split())
    low = text.lower()
    checks = (
        (("timed out waiting for the lock",), "lock file held too long by another process"),
        (("readonly database", "read-only", "read only"), "read-only database"),
        (("unable to open database file",), "cannot open the database file (missing or unwritable folder?)"),
        (("database is locked",), "database still locked after retries"),
        (("out-of-date database schema", "outdated schema", "mlflow db upgrade"),
         "database schema is out of date (run `mlflow db upgrade <uri>`)"),
        (("disk i/o error",), "disk I/O error"),
        (("database or disk is full", "no space left"), "disk full"),
        (("permission denied",), "permission denied"),
        (("file exists", "not a directory"), "the database's folder is not a folder"),
        (("connection refused", "failed to establish a new connection", "newconnectionerror"),
         "connection refused"),
        (("timed out", "timeout"), "timed out"),
        (("max retries exceeded", "name or service not known", "connectionerror"), "server unreachable"),
    )
    what = next((label for keys, label in checks if any(k in low for k in keys)), None)
    start = text.find("(sqlite3.")  # SQLAlchemy's message: keep the driver's error, not the SQL
    if start >= 0:
        text = text[start:].split(" [SQL:", 1)[0]
    detail = f"{type(err).__name__}: {text}"
    if len(detail) > 240:
        detail = detail[:237] + "..."
    return f"{what} ({detail})" if what else detail


def _disable(uri: str, err: BaseException, action: str) -> None:
    with _state_lock:
        if uri in _disabled:
            return
        _disabled[uri] = _reason(err)
    log.warning(
        "MLflow tracking disabled for this process while %s: %s: %s. The work goes on untracked; "
        "once MLflow works again, `sva track` logs the attack records it missed.",
        action, _where(uri), _disabled[uri],
    )
    log.debug("MLflow failure", exc_info=err)


class _Quiet(logging.Filter):
    """Inside a guarded call, the libraries' own log records (MLflow's error log with its
    traceback, urllib3's retry warnings, ...) drop to DEBUG: a failure is reported once,
    by :func:`_disable`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_guard, "depth", 0) and record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return log.isEnabledFor(logging.DEBUG)
        return True


_QUIET = _Quiet()
_QUIET_PREFIXES = ("mlflow", "urllib3", "sqlalchemy", "alembic", "requests")
_guard = threading.local()


def _quiet_libraries() -> None:
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name.startswith(_QUIET_PREFIXES) and _QUIET not in logger.filters:
            logger.addFilter(_QUIET)


def _guarded(uri: str, action: str, fn: Callable[[], T], default: T) -> T:
    """``fn()``, or ``default`` when tracking to ``uri`` is (or becomes) disabled."""
    if uri in _disabled:
        return default
    _guard.depth = getattr(_guard, "depth", 0) + 1
    try:
        import mlflow  # noqa: F401  (first: its loggers must exist to be quietened)

        _quiet_libraries()
        return fn()
    except Exception as err:  # MlflowException, sqlalchemy, requests, OSError, ...: never propagate
        _disable(uri, err, action)
        return default
    finally:
        _guard.depth -= 1


def _retry(fn, *args, attempts: int = 8, **kwargs):
    """Retry on SQLite 'database is locked' under concurrent jobs (0.2 s doubling, ~25 s in all)."""
    for i in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # mlflow wraps sqlalchemy errors in MlflowException
            if "locked" not in str(err).lower() or i == attempts - 1:
                raise
            time.sleep(0.2 * 2**i)
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------ client and lock


def _prepare_env(uri: str) -> None:
    if uri.startswith(("http://", "https://")):
        for key, value in HTTP_ENV_DEFAULTS.items():
            os.environ.setdefault(key, value)


def _client(uri: str):
    from mlflow import MlflowClient

    _prepare_env(uri)
    return MlflowClient(tracking_uri=uri)


@contextlib.contextmanager
def _store_lock(uri: str, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold ``fcntl.flock`` on ``<database>.lock`` (SQLite stores only; re-entrant per thread).

    Waits at most ``timeout`` seconds, then raises :class:`TimeoutError`. Where the lock
    file cannot be created (an unwritable folder) or locked (a file system without
    locks) it goes on unlocked: the database itself will then fail or not on its own."""
    db = sqlite_path(uri)
    depth = getattr(_held, "depth", 0)
    if db is None or depth:
        _held.depth = depth + 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    lock_path = db.with_name(db.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        log.debug("no lock file %s (%s): going on unlocked", lock_path, err)
        fd = None
    try:
        if fd is not None:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as err:
                    if err.errno not in (errno.EAGAIN, errno.EACCES):  # no locks here (some NFS)
                        log.debug("cannot lock %s (%s): going on unlocked", lock_path, err)
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"timed out waiting for the lock file {lock_path}") from None
                    time.sleep(0.05)
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0
    finally:
        if fd is not None:
            os.close(fd)  # releases the flock


# --------------------------------------------------------------------------- experiments


def _view(name: str, columns: list[str], search_filter: str = "") -> str:
    """A saved view of the runs table, as the UI stores it (tag value, JSON envelope)."""
    now = int(time.time() * 1000)
    state = {"searchFilter": search_filter, "orderByKey": "attributes.start_time", "orderByAsc": False,
             "selectedColumns": columns}
    return json.dumps({"name": name, "createdAt": now, "updatedAt": now, "state": json.dumps(state)})


def _col(group: str, key: str) -> str:
    return f"{group}.`{key}`"


def saved_views(kind: str) -> dict[str, str]:
    """Experiment tags (key → value) holding the saved runs-table views of ``kind``.

    Open one from the runs page's "Views" menu, or with
    ``#/experiments/<id>/runs?viewStateShareKey=<id>``, where ``<id>`` is the tag key
    after ``mlflow.sharedViewState.`` (``sva-metrics``, ``sva-current``)."""
    duration = _col("attributes", "Duration")
    if kind == "attacks":
        # the run name already says dataset-victim-method-mode-video: few tag columns, so all fit
        cols = [duration, _col("tags", "video"), _col("tags", CURRENT_TAG)] + [
            _col("metrics", m) for m in ("success", "map", "sparsity", "queries", "linf", "wall_seconds",
                                         "queries_best_episode")]
        return {
            SAVED_VIEW_TAG_PREFIX + "sva-metrics": _view("SVA metrics (all runs)", cols),
            SAVED_VIEW_TAG_PREFIX + "sva-current": _view(
                "SVA metrics (current runs)", cols, f"tags.`{CURRENT_TAG}` = 'true'"),
        }
    if kind == "victims":
        cols = [duration, _col("tags", "dataset"), _col("tags", "victim")] + [
            _col("metrics", m) for m in ("final_test_acc", "test_acc", "train_acc", "train_loss", "train_seconds")]
        return {SAVED_VIEW_TAG_PREFIX + "sva-metrics": _view("SVA metrics", cols)}
    return {}  # tables: their metric names depend on the configuration


def _ensure_experiments(uri: str, prefix: str, root: str | Path, refresh: bool = False) -> dict[str, str]:
    """Create (once, under the store lock) the store and the three experiments; tag them.

    Raises whatever MLflow raises; callers guard. Cached per (URI, prefix) in-process."""
    key = (uri, prefix)
    if not refresh and key in _ready:
        return _ready[key]
    remote = uri.startswith(("http://", "https://"))
    with _store_lock(uri):
        client = _client(uri)
        ids: dict[str, str] = {}
        for kind in EXPERIMENTS:
            name = experiment_name(prefix, kind)
            wanted = {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND, **saved_views(kind)}
            exp = _retry(client.get_experiment_by_name, name)
            if exp is None:
                try:
                    exp_id = _retry(
                        client.create_experiment, name,
                        artifact_location=None if remote else f"{artifact_root(root)}/{name}", tags=wanted,
                    )
                except Exception as err:  # created meanwhile by a process that holds no lock (HTTP)
                    if "already exists" not in str(err).lower():
                        raise
                    exp_id = _retry(client.get_experiment_by_name, name).experiment_id
            else:
                exp_id = exp.experiment_id
                for tag, value in wanted.items():
                    if tag not in exp.tags:
                        _retry(client.set_experiment_tag, exp_id, tag, value)
            ids[name] = exp_id
    with _state_lock:
        _ready[key] = ids
    return ids


def init_tracking(prefix: str, root: str | Path = ".") -> dict[str, str]:
    """Create the store and the three experiments, exactly once even under concurrency.

    Idempotent: existing experiments are kept, and given the experiment-kind tag and the
    saved views when they lack them. Returns experiment name → id, or ``{}`` (after one
    warning) when tracking is unavailable; never raises for an MLflow failure."""
    uri = tracking_uri(root)
    return _guarded(uri, "creating the experiments", lambda: _ensure_experiments(uri, prefix, root, True), {})


def git_commit(root: str | Path = ".", ignore: tuple[str, ...] = ()) -> str:
    """The current git commit (with ``-dirty`` when the tree has changes), or ``unknown``.

    ``ignore``: tracked paths (relative to ``root``) whose changes do not count, e.g. the
    document being regenerated (Snakemake deletes a job's outputs before it runs)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *(f":!{p}" for p in ignore)],
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


# ---------------------------------------------------------------------------------- runs


class Run:
    """A handle on an open MLflow run: params, metrics, artifacts, tags.

    Every method is a no-op when tracking is disabled (``run_id`` is then ``None``), and
    none raises for an MLflow failure: the first failure logs one warning and disables
    tracking for the process."""

    def __init__(self, client, run_id: str | None, uri: str | None = None) -> None:
        self.client = client
        self.run_id = run_id
        self.uri = uri or ""

    @property
    def active(self) -> bool:
        """Whether calls still reach MLflow."""
        return self.run_id is not None and self.uri not in _disabled

    def _do(self, action: str, fn: Callable[[], Any]) -> None:
        if self.run_id is not None:
            _guarded(self.uri, action, fn, None)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Nested mappings flatten to dotted names; values are logged as strings (≤ 6000 chars)."""

        def go():
            from mlflow.entities import Param

            flat = [Param(k, str(v)[:6000]) for k, v in _flatten(params).items()]
            for i in range(0, len(flat), 100):
                _retry(self.client.log_batch, self.run_id, params=flat[i : i + 100])

        self._do("logging params", go)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Metric values as floats (``None`` skipped), timestamped now (ms), at ``step`` (default 0)."""

        def go():
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            items = [Metric(k, float(v), now, step or 0) for k, v in metrics.items() if v is not None]
            if items:
                _retry(self.client.log_batch, self.run_id, metrics=items)

        self._do("logging metrics", go)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._do("logging an artifact", lambda: _retry(self.client.log_artifact, self.run_id, str(path),
                                                         artifact_path))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        def go():
            from mlflow.entities import RunTag

            _retry(self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

        self._do("setting tags", go)

    def _end(self, status: str) -> None:
        self._do(f"marking the run {status}", lambda: _retry(self.client.set_terminated, self.run_id, status))


@contextlib.contextmanager
def start_run(
    prefix: str, kind: str, run_name: str, tags: Mapping[str, Any] | None = None, root: str | Path = ".",
    start_time: float | None = None,
) -> Iterator[Run]:
    """Open a run in experiment ``<prefix>-<kind>``; FINISHED on success, FAILED on error.

    ``start_time``: the run's start in Unix seconds (default: now), to backdate a run
    whose work began earlier; it ends when the ``with`` block ends. Every run carries the
    git commit as tag ``git_commit``. Creates the experiments when missing (safe under
    concurrency). When MLflow fails the handle's methods are no-ops (one warning, see the
    module docstring); an exception raised by the ``with`` block always propagates.
    """
    name = experiment_name(prefix, kind)  # an unknown kind is a bug: it raises
    uri = tracking_uri(root)

    def open_run() -> Run:
        ids = _ensure_experiments(uri, prefix, root)
        client = _client(uri)
        all_tags = {"git_commit": git_commit(root), "mlflow.runName": run_name, **(tags or {})}
        run = _retry(
            client.create_run, ids[name], run_name=run_name,
            start_time=None if start_time is None else int(start_time * 1000),
            tags={k: str(v) for k, v in all_tags.items()},
        )
        return Run(client, run.info.run_id, uri)

    handle = _guarded(uri, f"opening a run in {name}", open_run, None) or Run(None, None, uri)
    try:
        yield handle
    except BaseException:
        handle._end("FAILED")
        raise
    handle._end("FINISHED")
    if handle.active:
        _mark_current(handle, name, run_name)


def _mark_current(handle: Run, experiment: str, run_name: str) -> None:
    """Tag a finished run ``sva.current=true`` and every earlier run of the same name in
    its experiment (a rebuild of the same training or table) ``sva.current=false``."""

    def go():
        from mlflow.entities import RunTag

        client = handle.client
        exp = _retry(client.get_experiment_by_name, experiment)
        same = f"attributes.run_name = {_filter_value(run_name)}"
        for other in _retry(client.search_runs, [exp.experiment_id], filter_string=same, max_results=1000):
            if other.info.run_id != handle.run_id and other.data.tags.get(CURRENT_TAG) != "false":
                _retry(client.log_batch, other.info.run_id, tags=[RunTag(CURRENT_TAG, "false")])
        _retry(client.log_batch, handle.run_id, tags=[RunTag(CURRENT_TAG, "true")])

    handle._do("marking the current run", go)


# ------------------------------------------------------------------------ attack records


def _filter_value(value: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"cannot search MLflow for a value holding both quote characters: {value!r}")


def _attack_fields(record: Mapping[str, Any], record_path: Path | None) -> dict[str, Any]:
    """What one attack record becomes in MLflow. Raises KeyError/TypeError/ValueError on a bad record."""
    key = str(record["record_key"])
    identity = {"dataset": str(record["dataset"]), "victim": str(record["victim"]),
                "method": str(record["method"]), "mode": str(record["mode"]), "video": str(record["video_id"])}
    for value in (key, *identity.values()):
        _filter_value(value)
    wall = float(record.get("wall_seconds") or 0.0)
    started, finished = record.get("started_at"), record.get("finished_at")
    if finished is None:
        if started is not None:
            finished = float(started) + wall
        elif record_path is not None and Path(record_path).exists():
            finished = Path(record_path).stat().st_mtime
        else:
            finished = time.time()
    if started is None:
        started = float(finished) - wall
    start_ms, end_ms = int(float(started) * 1000), int(float(finished) * 1000)
    end_ms = max(end_ms, start_ms)
    metrics = {m: float(record[m]) for m in _ATTACK_METRICS if record.get(m) is not None}
    if record.get("queries_best_episode") is not None:
        metrics["queries_best_episode"] = float(record["queries_best_episode"])
    trace = [float(v) for v in (record.get("reward_trace") or [])]
    params: dict[str, Any] = {"seed": record.get("seed"), "record_key": key}
    for name, value in _flatten(record.get("params") or {}).items():
        if value is None or isinstance(value, (str, int, float, bool)):
            params[name] = value
    tags = {**identity, "shard": record.get("shard"), "record_key": key, CURRENT_TAG: "true"}
    name = "-".join(identity[k] for k in _ATTACK_IDENTITY)
    return {"key": key, "identity": identity, "tags": tags, "metrics": metrics, "trace": trace,
            "params": params, "start_ms": start_ms, "end_ms": end_ms, "run_name": name,
            "git_commit": record.get("git_commit")}


def _log_attack_record(
    prefix: str, record: Mapping[str, Any], record_path: Path | None, png_path: Path | None, root: str | Path,
) -> tuple[str | None, bool]:
    """(run id or None, whether a new run was created)."""
    uri = tracking_uri(root)
    if uri in _disabled:
        return None, False
    try:
        f = _attack_fields(record, record_path)
    except (KeyError, TypeError, ValueError) as err:
        log.warning("attack record %s not logged to MLflow: bad record (%s: %s)",
                    record_path, type(err).__name__, err)
        return None, False
    name = experiment_name(prefix, "attacks")

    def work() -> tuple[str, bool]:
        from mlflow.entities import Metric, Param, RunTag

        exp_id = _ensure_experiments(uri, prefix, root)[name]
        client = _client(uri)
        with _store_lock(uri):  # SQLite: no second process logs the same record meanwhile
            found = _retry(client.search_runs, [exp_id], filter_string=f"tags.record_key = {_filter_value(f['key'])}",
                           max_results=50)
            for run in found:
                if run.info.status == "FINISHED":
                    return run.info.run_id, False
            for run in found:  # the leftovers of a logging that was interrupted
                _retry(client.delete_run, run.info.run_id)
            tags = {**f["tags"], "git_commit": f["git_commit"] or git_commit(root), "mlflow.runName": f["run_name"]}
            run = _retry(client.create_run, exp_id, start_time=f["start_ms"], run_name=f["run_name"],
                         tags={k: str(v) for k, v in tags.items()})
            run_id = run.info.run_id
            end = f["end_ms"]
            metrics = [Metric(k, v, end, 0) for k, v in f["metrics"].items()]
            n = max(len(f["trace"]), 1)
            span = end - f["start_ms"]
            metrics += [Metric("reward_mean", v, f["start_ms"] + span * (i + 1) // n, i)
                        for i, v in enumerate(f["trace"])]
            params = [Param(k, str(v)[:6000]) for k, v in f["params"].items()]
            for i in range(0, len(params), 100):
                _retry(client.log_batch, run_id, params=params[i : i + 100])
            for i in range(0, len(metrics), 900):
                _retry(client.log_batch, run_id, metrics=metrics[i : i + 900])
            if png_path is not None and Path(png_path).is_file():
                _retry(client.log_artifact, run_id, str(png_path))
            if record_path is not None and Path(record_path).is_file():
                _retry(client.log_artifact, run_id, str(record_path))
            _retry(client.set_terminated, run_id, "FINISHED", end_time=end)
            same = " and ".join(f"tags.{k} = {_filter_value(v)}" for k, v in f["identity"].items())
            for other in _retry(client.search_runs, [exp_id], filter_string=same, max_results=1000):
                if other.info.run_id != run_id and other.data.tags.get("record_key") != f["key"] \
                        and other.data.tags.get(CURRENT_TAG) != "false":
                    _retry(client.log_batch, other.info.run_id, tags=[RunTag(CURRENT_TAG, "false")])
            return run_id, True

    return _guarded(uri, f"logging attack record {record_path}", work, (None, False))


def log_attack_record(
    prefix: str, record: Mapping[str, Any], record_path: Path | None, png_path: Path | None, root: str | Path = ".",
) -> str | None:
    """Log one attacked video (its JSON record) as one run in ``<prefix>-attacks``, once.

    Idempotent on ``record["record_key"]``: when a FINISHED run tagged with that key
    exists, nothing is logged and its id is returned. Otherwise a run is created that
    spans the real attack: start/end from ``started_at``/``finished_at`` (Unix seconds;
    records without them end at the record file's mtime and start ``wall_seconds``
    earlier). It carries tags dataset/victim/method/mode/video/shard/record_key/
    git_commit and ``sva.current=true``; metrics success and success_uint8 (0/1), map
    (mean |x_adv - x| in grey levels, 0-255), sparsity (fraction of frames left
    unperturbed), queries (count), linf (max |x_adv - x|, 0-1 pixel units), wall_seconds
    (s), queries_best_episode (count), and ``reward_mean`` per step of ``reward_trace``;
    params seed, record_key and every scalar of ``record["params"]`` (flattened, dotted
    names); artifacts ``png_path`` and ``record_path``. Every other run of the same (dataset, victim, method, mode, video)
    under another record key is then tagged ``sva.current=false``.

    Returns the run id; ``None`` when tracking is unavailable (one warning, see the module
    docstring) or the record lacks a field (a warning naming the file). Never raises.
    """
    return _log_attack_record(prefix, record, record_path, png_path, root)[0]


def sync_records(
    prefix: str, record_paths: Iterable[Path], root: str | Path = ".", *, params: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Log every attack record file not yet in MLflow (after an outage, say); idempotent.

    Each path is a per-video JSON record (a dict); its PNG strip, if any, lies beside it
    with the same stem and suffix ``.png``. ``params``: settings logged as params of runs
    whose record has no ``"params"`` of its own (e.g. ``{"attacks": ...}``), or a
    function of the record that returns them. Returns the
    counts ``{"logged": new runs, "present": records already logged, "failed": records
    not logged}`` (unreadable files, bad records, or tracking unavailable).
    """
    counts = {"logged": 0, "present": 0, "failed": 0}
    for path in record_paths:
        path = Path(path)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            log.warning("attack record %s not logged to MLflow: cannot read it (%s)", path, err)
            counts["failed"] += 1
            continue
        if not isinstance(record, dict):
            log.warning("attack record %s not logged to MLflow: not a JSON object (a shard file?)", path)
            counts["failed"] += 1
            continue
        if params and "params" not in record:
            record = {**record, "params": dict(params(record) if callable(params) else params)}
        png = path.with_suffix(".png")
        run_id, new = _log_attack_record(prefix, record, path, png if png.is_file() else None, root)
        counts["failed" if run_id is None else "logged" if new else "present"] += 1
    log.info("MLflow sync to %s: %d logged, %d already present, %d failed",
             tracking_uri(root), counts["logged"], counts["present"], counts["failed"])
    return counts
