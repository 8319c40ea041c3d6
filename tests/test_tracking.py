import mlflow
import pytest

from sva import tracking


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
