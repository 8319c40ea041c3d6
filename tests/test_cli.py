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
