import json

from sva.cli import main


def test_check_config_ok_and_error(repo, tmp_path, capsys):
    assert main(["check-config", str(repo / "params.yaml")]) == 0
    assert "synthetic" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("attacks:\n  eps: 2\n")
    assert main(["check-config", str(repo / "params.yaml"), str(bad)]) == 2
    assert "attacks.eps" in capsys.readouterr().err


def test_summary_prints_rows(tmp_path, capsys):
    rec = {"dataset": "d", "victim": "c3d", "method": "sva", "mode": "untargeted", "success": True,
           "success_uint8": True, "map": 1.5, "sparsity": 0.5, "queries": 100, "queries_best_episode": 50}
    (tmp_path / "r.json").write_text(json.dumps(rec))
    assert main(["summary", str(tmp_path / "r.json")]) == 0
    assert "1.5" in capsys.readouterr().out


def _attack_record(video: str) -> dict:
    return {"dataset": "d", "victim": "c3d", "method": "sva", "mode": "untargeted", "video_id": video,
            "shard": 0, "seed": 0, "record_key": f"key-{video}", "success": True, "success_uint8": True,
            "map": 1.5, "sparsity": 0.5, "queries": 100, "linf": 0.05, "wall_seconds": 3.0,
            "queries_best_episode": 50, "reward_trace": [0.1, 0.2], "started_at": 1.7e9, "finished_at": 1.7e9 + 3}


def test_track_logs_missing_records_once(repo, tmp_path, capsys):
    import mlflow

    files = []
    for video in ("a", "b"):
        path = tmp_path / f"{video}.json"
        path.write_text(json.dumps(_attack_record(video)))
        files.append(str(path))
    cfg = ["--config", str(repo / "params.yaml")]
    assert main(["track", *cfg, *files]) == 0
    assert "2 records logged, 0 already in MLflow" in capsys.readouterr().out
    assert main(["track", *cfg, *files]) == 0
    assert "0 records logged, 2 already in MLflow" in capsys.readouterr().out
    runs = mlflow.search_runs(experiment_names=["sva-attacks"])
    assert sorted(runs["tags.video"]) == ["a", "b"] and "params.attacks.eps" in runs.columns


def test_user_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["summary", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.json: cannot read attack records" in err and "Traceback" not in err


def test_methods_lists_every_registered_method_with_its_settings(capsys):
    from sva.attacks import attack_classes

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name, cls in attack_classes().items():
        assert f"{name}: {cls.summary()}" in out
        assert f"oracle: {cls.oracle_mode}" in out
    assert "attacks.sva.epochs = 20  # policy updates per video" in out
    assert "attacks.sva.untargeted.episode_queries = null" in out
    assert "attacks.dense: no settings" in out
    from sva.blackbox.estimators import ESTIMATORS

    assert "attacks.untargeted.estimator / attacks.targeted.estimator" in out  # the perturber's estimators
    for name in ("nes", "zo_signsgd", "sign_opt"):
        assert f"  {name}: {ESTIMATORS[name].summary}  [" in out
