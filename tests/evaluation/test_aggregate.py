import json

import pandas as pd

from sva.evaluation.aggregate import COLUMNS, load_records, summarize, table_for_mode


def _rec(video, method, success, map_, s, q, qb, u8=True, mode="untargeted", dataset="ucf", victim="c3d"):
    return {"dataset": dataset, "victim": victim, "method": method, "mode": mode, "video_id": video,
            "success": success, "success_uint8": u8 and success, "map": map_, "sparsity": s,
            "queries": q, "queries_best_episode": qb}


def test_fr_over_all_metrics_over_successes(tmp_path):
    recs = [
        _rec("a", "sva", True, 2.0, 0.5, 1000, 200),
        _rec("b", "sva", True, 4.0, 0.75, 3000, 400, u8=False),
        _rec("c", "sva", False, 0.0, 1.0, 30000, None),
        _rec("a", "dense", True, 6.0, 0.0, 500, 499),
    ]
    (tmp_path / "s0.json").write_text(json.dumps(recs[:2]))
    (tmp_path / "s1.json").write_text(json.dumps(recs[2:]))
    frame = load_records([tmp_path / "s0.json", tmp_path / "s1.json"])
    table = table_for_mode(summarize(frame, {"ucf": "ucf101"}), "untargeted")
    assert list(table.columns) == COLUMNS
    sva = table[table["method"] == "sva"].iloc[0]
    assert sva["MAP"] == 3.0 and sva["S (%)"] == 62.5 and sva["Q"] == 2000
    assert abs(sva["FR (%)"] - 66.7) < 1e-9 and sva["videos"] == 3
    assert sva["Q best episode"] == 300 and abs(sva["FR uint8 (%)"] - 33.3) < 1e-9
    assert sva["paper MAP"] == 2.4450  # UCF-101 / C3D row of Table 3
    dense = table[table["method"] == "dense"].iloc[0]
    assert pd.isna(dense["paper MAP"]) and dense["S (%)"] == 0.0


def test_empty_and_other_mode():
    assert table_for_mode(summarize(pd.DataFrame()), "untargeted").empty
    frame = pd.DataFrame([_rec("a", "sva", True, 1.0, 0.5, 10, 5, mode="targeted")])
    summary = summarize(frame)
    assert table_for_mode(summary, "untargeted").empty
    assert len(table_for_mode(summary, "targeted")) == 1


def _aset(*videos, label=0):
    return pd.DataFrame({"idx": range(len(videos)), "video_id": list(videos), "label": [label] * len(videos),
                         "target_label": [1] * len(videos)})


def _write(path, recs):
    path.write_text(json.dumps(recs))
    return path


def test_duplicate_records_are_refused_naming_the_files(tmp_path):
    import pytest

    from sva.evaluation.aggregate import RecordError, check_records

    a = {**_rec("a", "sva", True, 2.0, 0.5, 1000, 200), "label": 0}
    b = {**_rec("b", "sva", True, 2.0, 0.5, 1000, 200), "label": 0}
    frame = load_records([_write(tmp_path / "shard0.json", [a, b]), _write(tmp_path / "shard2.json", [b])])
    with pytest.raises(RecordError, match=r"video b .* in .*shard0\.json, .*shard2\.json"):
        check_records(frame, {"ucf": _aset("a", "b")})


def test_foreign_missing_and_relabelled_records_are_refused(tmp_path):
    import pytest

    from sva.evaluation.aggregate import RecordError, check_records

    a = {**_rec("a", "sva", True, 2.0, 0.5, 1000, 200), "label": 0, "victim_sha256": "x"}
    z = {**_rec("z", "sva", True, 2.0, 0.5, 1000, 200), "label": 0, "victim_sha256": "x"}
    path = _write(tmp_path / "shard0.json", [a, z])
    with pytest.raises(RecordError, match=r"shard0\.json: videos z are not in the current attack set"):
        check_records(load_records([path]), {"ucf": _aset("a", "z")[:1]})
    with pytest.raises(RecordError, match=r"no record for attack-set videos q"):
        check_records(load_records([path]), {"ucf": _aset("a", "z", "q")})
    with pytest.raises(RecordError, match=r"another label"):
        check_records(load_records([path]), {"ucf": _aset("a", "z", label=3)})
    with pytest.raises(RecordError, match=r"another c3d checkpoint"):
        check_records(load_records([path]), {"ucf": _aset("a", "z")}, {("ucf", "c3d"): "y"})
    check_records(load_records([path]), {"ucf": _aset("a", "z")}, {("ucf", "c3d"): "x"})  # all consistent
