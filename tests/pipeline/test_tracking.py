import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pytest

from sva.pipeline import tracking

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_tracking_state():
    """Each test starts with tracking enabled and no cached experiment ids."""
    tracking.reset_tracking_state()
    yield
    tracking.reset_tracking_state()


def _warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_runs_are_recorded_with_tags_params_metrics_artifacts(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ids = tracking.init_tracking("t", tmp_path)
    assert set(ids) == {"t-victims", "t-attacks", "t-tables"}
    assert tracking.init_tracking("t", tmp_path) == ids  # idempotent
    art = tmp_path / "note.txt"
    art.write_text("hello")
    with tracking.start_run("t", "victims", "ds-c3d", {"dataset": "ds"}, root=tmp_path) as run:
        run.log_params({"train": {"lr": 0.1}, "model": "c3d"})
        run.log_metrics({"loss": 2.0}, step=0)
        run.log_metrics({"loss": 1.0}, step=1)
        run.log_artifact(art)
    assert (tmp_path / "mlflow.db").exists()
    mlflow.set_tracking_uri(tracking.tracking_uri(tmp_path))
    runs = mlflow.search_runs(experiment_names=["t-victims"])
    assert len(runs) == 1
    row = runs.iloc[0]
    assert row["status"] == "FINISHED"
    assert row["tags.dataset"] == "ds" and row["params.train.lr"] == "0.1"
    assert row["tags.git_commit"]
    history = mlflow.MlflowClient().get_metric_history(row["run_id"], "loss")
    assert [m.value for m in history] == [2.0, 1.0]
    arts = [a.path for a in mlflow.MlflowClient().list_artifacts(row["run_id"])]
    assert arts == ["note.txt"]


def test_failed_run_is_marked_failed(tmp_path):
    with pytest.raises(ValueError):
        with tracking.start_run("t", "tables", "boom", root=tmp_path):
            raise ValueError("boom")
    mlflow.set_tracking_uri(tracking.tracking_uri(tmp_path))
    runs = mlflow.search_runs(experiment_names=["t-tables"])
    assert runs.iloc[0]["status"] == "FAILED"


def test_experiment_kind_is_checked():
    with pytest.raises(ValueError, match="unknown experiment kind"):
        tracking.experiment_name("t", "bogus")


def test_experiments_open_on_the_runs_table_and_carry_saved_views(tmp_path):
    client = mlflow.MlflowClient(tracking.tracking_uri(tmp_path))
    old = client.create_experiment("t-victims")  # made by an older version: no kind tag
    ids = tracking.init_tracking("t", tmp_path)
    assert ids["t-victims"] == old
    for name, exp_id in ids.items():
        tags = client.get_experiment(exp_id).tags
        assert tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development", name
    views = client.get_experiment(ids["t-attacks"]).tags
    view = json.loads(views[tracking.SAVED_VIEW_TAG_PREFIX + "sva-current"])
    state = json.loads(view["state"])
    assert "metrics.`map`" in state["selectedColumns"] and "sva.current" in state["searchFilter"]


# ------------------------------------------------------------------------ failures


def test_unreachable_server_fails_fast_with_one_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    for key in tracking.HTTP_ENV_DEFAULTS:  # absent now, and again after the test
        monkeypatch.setenv(key, "0")
        monkeypatch.delenv(key)
    caplog.set_level(logging.INFO)
    t0 = time.monotonic()
    assert tracking.init_tracking("t", tmp_path) == {}
    with tracking.start_run("t", "attacks", "x", {"a": 1}, root=tmp_path) as run:
        run.log_params({"p": 1})
        run.log_metrics({"m": 1.0})
        run.log_artifact(__file__)
        run.set_tags({"b": 2})
    assert run.run_id is None and not run.active
    assert tracking.log_attack_record("t", _record("k1"), None, None, tmp_path) is None
    assert time.monotonic() - t0 < 30
    warnings = _warnings(caplog)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].name == "sva.pipeline.tracking"
    assert "http://127.0.0.1:9" in warnings[0].getMessage() and "\n" not in warnings[0].getMessage()
    assert tracking.tracking_disabled(tmp_path)
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == tracking.HTTP_ENV_DEFAULTS[
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES"]


def test_read_only_database_is_one_warning_naming_the_file(tmp_path, monkeypatch, caplog):
    db = tmp_path / "ro.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    assert tracking.init_tracking("t", tmp_path)  # a complete store, then opened read-only
    tracking.reset_tracking_state()
    # chmod 0444 does not stop root; SQLite's read-only open mode stops everyone.
    # MLflow makes the "parent folder" of a URI filename relative to the working
    # directory (a folder named "file:"), so work in tmp_path, not the checkout.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///file:{db}?mode=ro&uri=true")
    caplog.set_level(logging.INFO)
    with tracking.start_run("t", "victims", "x", root=tmp_path) as run:
        run.log_metrics({"m": 1.0})
    assert run.run_id is None
    warnings = _warnings(caplog)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert str(db) in message and "read-only database" in message and "\n" not in message


def test_unwritable_database_location_is_one_warning(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database's folder should be")
    db = blocker / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    caplog.set_level(logging.INFO)
    assert tracking.init_tracking("t", tmp_path) == {}
    with tracking.start_run("t", "victims", "x", root=tmp_path) as run:
        run.log_metrics({"m": 1.0})
    assert tracking.sync_records("t", [], tmp_path) == {"logged": 0, "present": 0, "failed": 0}
    warnings = _warnings(caplog)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert str(db) in warnings[0].getMessage()


def test_user_exception_propagates_even_when_tracking_is_down(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(KeyError, match="mine"):
        with tracking.start_run("t", "tables", "boom", root=tmp_path):
            raise KeyError("mine")


def test_user_exception_propagates_and_marks_the_run_failed(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with tracking.start_run("t", "attacks", "boom", root=tmp_path) as run:
            run.log_metrics({"m": 1.0})
            1 / 0
    client = mlflow.MlflowClient(tracking.tracking_uri(tmp_path))
    assert client.get_run(run.run_id).info.status == "FAILED"


def test_backdated_start_time(tmp_path):
    began = time.time() - 3600
    with tracking.start_run("t", "victims", "slow", root=tmp_path, start_time=began) as run:
        pass
    info = mlflow.MlflowClient(tracking.tracking_uri(tmp_path)).get_run(run.run_id).info
    assert abs(info.start_time / 1000 - began) < 1
    assert (info.end_time - info.start_time) / 1000 == pytest.approx(3600, abs=60)


_WORKER = textwrap.dedent("""
    import sys
    from sva.pipeline import tracking
    with tracking.start_run("c", "attacks", f"worker-{sys.argv[1]}", {"worker": sys.argv[1]}, root=sys.argv[2]) as run:
        run.log_metrics({"m": float(sys.argv[1])})
        run.log_params({"i": sys.argv[1]})
    print("RUN", run.run_id)
""")


def test_concurrent_first_use_of_a_fresh_database(tmp_path):
    """4 processes (on 2 cores: they overlap), no prior init_tracking, on a database
    that does not exist yet."""
    db = tmp_path / "fresh.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}", "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(i), str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "RUN None" not in out and "tracking disabled" not in err, err
    client = mlflow.MlflowClient(f"sqlite:///{db}")
    names = [e.name for e in client.search_experiments()]
    assert sorted(n for n in names if n.startswith("c-")) == ["c-attacks", "c-tables", "c-victims"]
    runs = client.search_runs([client.get_experiment_by_name("c-attacks").experiment_id])
    assert len(runs) == 4
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.metrics["m"] for r in runs) == [float(i) for i in range(4)]


# ------------------------------------------------------------------ attack records


def _record(key: str, video: str = "v1", wall: float = 42.5, finished: float | None = None, **extra) -> dict:
    finished = time.time() - 100 if finished is None else finished
    record = {
        "dataset": "tiny", "victim": "c3d", "method": "sva", "mode": "untargeted", "video_id": video,
        "shard": 0, "seed": 7, "record_key": key, "success": True, "success_uint8": True, "map": 0.0123,
        "sparsity": 0.75, "queries": 812, "linf": 0.05, "wall_seconds": wall, "queries_best_episode": 300,
        "reward_trace": [0.1, 0.4, 0.9], "started_at": finished - wall, "finished_at": finished,
    }
    record.update(extra)
    return record


def _write(folder: Path, record: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record['video_id']}.json"
    path.write_text(json.dumps(record))
    path.with_suffix(".png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return path


def test_log_attack_record_is_idempotent_backdated_and_marks_current(tmp_path):
    folder = tmp_path / "videos"
    rec = _record("aaaa", params={"attacks": {"sva": {"episodes": 20, "lr": 0.5}, "budgets": [1, 2]}})
    path = _write(folder, rec)
    run_id = tracking.log_attack_record("t", rec, path, path.with_suffix(".png"), tmp_path)
    assert run_id
    assert tracking.log_attack_record("t", rec, path, path.with_suffix(".png"), tmp_path) == run_id
    client = mlflow.MlflowClient(tracking.tracking_uri(tmp_path))
    exp = client.get_experiment_by_name("t-attacks")
    assert len(client.search_runs([exp.experiment_id])) == 1
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert abs((run.info.end_time - run.info.start_time) / 1000 - rec["wall_seconds"]) <= 1
    assert abs(run.info.start_time / 1000 - rec["started_at"]) <= 1
    tags = run.data.tags
    assert {k: tags[k] for k in ("dataset", "victim", "method", "mode", "video", "shard", "record_key")} == {
        "dataset": "tiny", "victim": "c3d", "method": "sva", "mode": "untargeted", "video": "v1", "shard": "0",
        "record_key": "aaaa"}
    assert tags["sva.current"] == "true" and tags["git_commit"]
    assert run.data.metrics["queries"] == 812 and run.data.metrics["map"] == pytest.approx(0.0123)
    assert run.data.metrics["queries_best_episode"] == 300 and run.data.metrics["success"] == 1.0
    assert [m.value for m in client.get_metric_history(run_id, "reward_mean")] == [0.1, 0.4, 0.9]
    assert run.data.params["seed"] == "7" and run.data.params["record_key"] == "aaaa"
    assert run.data.params["attacks.sva.episodes"] == "20" and "attacks.budgets" not in run.data.params
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["v1.json", "v1.png"]
    assert run.info.artifact_uri.startswith((tmp_path / "mlruns").as_uri())  # beside the database

    # a rebuild: same video, new record key -> a second run, the first one no longer current
    rec2 = _record("bbbb", wall=10.0, queries_best_episode=None, reward_trace=None)
    path = _write(folder, rec2)
    run2 = tracking.log_attack_record("t", rec2, path, None, tmp_path)
    assert run2 and run2 != run_id
    assert client.get_run(run_id).data.tags["sva.current"] == "false"
    assert client.get_run(run2).data.tags["sva.current"] == "true"
    assert "queries_best_episode" not in client.get_run(run2).data.metrics
    # another video is left alone
    other = _record("cccc", video="v2")
    tracking.log_attack_record("t", other, None, None, tmp_path)
    tracking.log_attack_record("t", _record("dddd", video="v3"), None, None, tmp_path)
    for key in ("cccc", "dddd"):
        (run,) = client.search_runs([exp.experiment_id], f"tags.record_key = '{key}'")
        assert run.data.tags["sva.current"] == "true"


def test_old_records_without_timestamps_use_the_file_time(tmp_path):
    rec = _record("eeee", wall=30.0)
    del rec["started_at"], rec["finished_at"]
    path = _write(tmp_path / "videos", rec)
    mtime = time.time() - 7200
    os.utime(path, (mtime, mtime))
    run_id = tracking.log_attack_record("t", rec, path, None, tmp_path)
    info = mlflow.MlflowClient(tracking.tracking_uri(tmp_path)).get_run(run_id).info
    assert abs(info.end_time / 1000 - mtime) <= 1
    assert abs((info.end_time - info.start_time) / 1000 - 30.0) <= 1


def test_a_bad_record_is_a_warning_and_tracking_stays_on(tmp_path, caplog):
    rec = _record("ffff")
    del rec["record_key"]
    assert tracking.log_attack_record("t", rec, tmp_path / "bad.json", None, tmp_path) is None
    assert any("bad.json" in r.getMessage() for r in _warnings(caplog))
    assert not tracking.tracking_disabled(tmp_path)
    assert tracking.log_attack_record("t", _record("ffff"), None, None, tmp_path)


def test_sync_records_after_an_outage(tmp_path, monkeypatch, caplog):
    folder = tmp_path / "results/attacks/untargeted/tiny/c3d/sva/videos"
    paths = [_write(folder, _record(f"k{i}", video=f"v{i}")) for i in range(4)]
    good_uri = tracking.tracking_uri(tmp_path)
    # the first two records are logged while MLflow works ...
    for p in paths[:2]:
        assert tracking.log_attack_record("t", json.loads(p.read_text()), p, p.with_suffix(".png"), tmp_path)
    # ... then the server goes away: the other two are not logged, the work goes on
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    caplog.set_level(logging.INFO)
    for p in paths[2:]:
        assert tracking.log_attack_record("t", json.loads(p.read_text()), p, p.with_suffix(".png"), tmp_path) is None
    assert tracking.sync_records("t", paths, tmp_path) == {"logged": 0, "present": 0, "failed": 4}
    assert len(_warnings(caplog)) == 1
    # MLflow is back: `sva track` logs the missing ones, once
    monkeypatch.setenv("MLFLOW_TRACKING_URI", good_uri)
    (folder / "broken.json").write_text("{not json")
    assert tracking.sync_records("t", [*paths, folder / "broken.json"], tmp_path) == {
        "logged": 2, "present": 2, "failed": 1}
    assert tracking.sync_records("t", paths, tmp_path) == {"logged": 0, "present": 4, "failed": 0}
    client = mlflow.MlflowClient(good_uri)
    runs = client.search_runs([client.get_experiment_by_name("t-attacks").experiment_id])
    assert sorted(r.data.tags["record_key"] for r in runs) == ["k0", "k1", "k2", "k3"]
    synced = next(r for r in runs if r.data.tags["record_key"] == "k3")
    assert sorted(a.path for a in client.list_artifacts(synced.info.run_id)) == ["v3.json", "v3.png"]


def test_a_rebuilt_training_or_table_marks_which_run_is_current(tmp_path):
    for _ in range(2):
        with tracking.start_run("t", "tables", "table3", root=tmp_path) as run:
            run.log_metrics({"x": 1.0})
    with tracking.start_run("t", "tables", "table1", root=tmp_path):
        pass
    mlflow.set_tracking_uri(tracking.tracking_uri(tmp_path))
    runs = mlflow.search_runs(experiment_names=["t-tables"], order_by=["attributes.start_time ASC"])
    table3 = runs[runs["tags.mlflow.runName"] == "table3"]
    assert list(table3["tags.sva.current"]) == ["false", "true"]
    assert list(runs[runs["tags.mlflow.runName"] == "table1"]["tags.sva.current"]) == ["true"]


def test_git_commit_marks_changes_except_the_ignored_paths(tmp_path):
    import subprocess

    from sva.pipeline.tracking import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "doc.md").write_text("a")
    (tmp_path / "code.py").write_text("b")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "init")
    clean = git_commit(tmp_path)
    assert len(clean) == 40
    (tmp_path / "doc.md").unlink()  # what Snakemake does to an output before its job runs
    assert git_commit(tmp_path) == clean + "-dirty"
    assert git_commit(tmp_path, ignore=("doc.md",)) == clean
    (tmp_path / "code.py").write_text("c")
    assert git_commit(tmp_path, ignore=("doc.md",)) == clean + "-dirty"
