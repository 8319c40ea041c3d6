import pandas as pd
import pytest

from sva.evaluation.analysis import coverage_summary, episode_coverage, load_windows
from sva.cli import main


def _windows(tmp_path):
    path = tmp_path / "windows.csv"
    pd.DataFrame({"video": ["A/v_A_g01_c01.avi", "B/v_B_g01_c01.avi"], "split": ["test", "test"],
                  "window_start": [2, 10], "window_length": [3, 4]}).to_csv(path, index=False)
    return path


RECORDS = [
    {"victim": "c3d", "method": "sva", "video_id": "v_A_g01_c01", "episodes": [
        {"epoch": 0, "episode": 0, "frames": [0, 1], "success": False, "queries": 3000},  # misses 2..4
        {"epoch": 0, "episode": 1, "frames": [1, 2, 4], "success": True, "queries": 900},  # hits 2 and 4
    ]},
    {"victim": "c3d", "method": "sva", "video_id": "v_B_g01_c01", "episodes": [
        {"epoch": 0, "episode": 0, "frames": [10, 12], "success": False, "queries": 3000},  # hits 2
    ]},
]


def test_hits_count_masked_frames_inside_the_window(tmp_path):
    windows = load_windows(_windows(tmp_path))
    assert windows == {"v_A_g01_c01": (2, 3), "v_B_g01_c01": (10, 4)}
    eps = episode_coverage(RECORDS, windows)
    assert list(eps["hits"]) == [0, 2, 2] and list(eps["window"]) == [3, 3, 4]
    summary = coverage_summary(eps).set_index("hits")
    assert summary.loc[0, "success (%)"] == 0.0
    assert summary.loc[2, "episodes"] == 2 and summary.loc[2, "success (%)"] == 50.0


def test_clear_errors_for_a_wrong_windows_file(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"video": ["x"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="bad.csv.*window_length"):
        load_windows(bad)
    with pytest.raises(KeyError, match="v_C"):
        episode_coverage([{**RECORDS[0], "video_id": "v_C"}], load_windows(_windows(tmp_path)))


def test_cli_prints_the_summary(tmp_path, capsys):
    import json

    rec = tmp_path / "shard0.json"
    rec.write_text(json.dumps(RECORDS))
    assert main(["window-coverage", "--windows", str(_windows(tmp_path)), str(rec)]) == 0
    out = capsys.readouterr().out
    assert "success (%)" in out and "c3d" in out
