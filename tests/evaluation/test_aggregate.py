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


# -- the columns beside the paper's ---------------------------------------------------------------


def _q_records(mean_reading=(True, True, True, True)):
    """3 successes (Q 100, 200, 900) and 1 failure (Q 3000, its whole spend), with the
    mean reading's verdicts ``mean_reading`` (None: a record made before the field)."""
    recs = [_rec("a", "opt", True, 1.0, 0.0, 100, 100), _rec("b", "opt", True, 2.0, 0.0, 200, 200),
            _rec("c", "opt", True, 3.0, 0.0, 900, 900), _rec("d", "opt", False, 0.0, 1.0, 3000, None)]
    for r, m in zip(recs, mean_reading, strict=True):
        if m is not None:
            r["success_mean_reading"] = m
    return pd.DataFrame(recs)


def test_q_median_and_q_over_all_videos():
    row = table_for_mode(summarize(_q_records()), "untargeted").iloc[0]
    assert row["Q"] == 400  # mean over the successes, as before
    assert row["Q median"] == 200  # median over the successes
    assert row["Q all videos"] == 1050  # (100 + 200 + 900 + 3000) / 4: the failure counts its spend
    assert row["FR (%)"] == 75.0 and row["videos"] == 4
    even = pd.DataFrame([_rec("a", "opt", True, 1.0, 0.0, 100, 100), _rec("b", "opt", True, 1.0, 0.0, 301, 1)])
    assert table_for_mode(summarize(even), "untargeted").iloc[0]["Q median"] == 200.5


def test_no_success_leaves_the_success_columns_empty_but_not_q_over_all_videos():
    frame = pd.DataFrame([_rec("a", "opt", False, 0.0, 1.0, 3000, None),
                          _rec("b", "opt", False, 0.0, 1.0, 1000, None)])
    row = table_for_mode(summarize(frame), "untargeted").iloc[0]
    assert pd.isna(row["Q"]) and pd.isna(row["Q median"]) and pd.isna(row["MAP"])
    assert row["Q all videos"] == 2000 and row["FR (%)"] == 0.0
    assert row["FR lo (%)"] == 0.0 and row["FR hi (%)"] == 65.8  # Wilson 0/2: z²/(2 + z²) = 0.6576


def test_fr_wilson_interval_columns():
    from sva.evaluation.metrics import wilson_interval

    row = table_for_mode(summarize(_q_records()), "untargeted").iloc[0]
    lo, hi = wilson_interval(3, 4)
    assert row["FR lo (%)"] == round(100 * lo, 1) == 30.1 and row["FR hi (%)"] == round(100 * hi, 1) == 95.4
    assert row["FR lo (%)"] <= row["FR (%)"] <= row["FR hi (%)"]


def test_fr_under_the_mean_reading():
    row = table_for_mode(summarize(_q_records((True, True, True, True))), "untargeted").iloc[0]
    assert row["FR (MAP ≤ ε) (%)"] == 100.0  # the failure's fallback had MAP ≤ 255·ε
    row = table_for_mode(summarize(_q_records((True, True, True, False))), "untargeted").iloc[0]
    assert row["FR (MAP ≤ ε) (%)"] == 75.0


def test_records_without_the_new_fields_aggregate_with_the_column_empty():
    for verdicts in ((None, None, None, None), (True, True, True, None)):  # old, and old mixed with new
        table = table_for_mode(summarize(_q_records(verdicts)), "untargeted")
        assert list(table.columns) == COLUMNS
        row = table.iloc[0]
        assert pd.isna(row["FR (MAP ≤ ε) (%)"]) and row["FR (%)"] == 75.0 and row["Q all videos"] == 1050


def test_table_metrics_has_every_column():
    from sva.evaluation.aggregate import table_metrics

    metrics = table_metrics(table_for_mode(summarize(_q_records()), "untargeted"))
    key = "ucf.c3d.opt"
    assert metrics[f"{key}.Q_median"] == 200 and metrics[f"{key}.Q_all_videos"] == 1050
    assert metrics[f"{key}.FR_lo"] == 30.1 and metrics[f"{key}.FR_hi"] == 95.4
    assert metrics[f"{key}.FR_mean_reading"] == 100.0 and metrics[f"{key}.FR"] == 75.0
    assert {f"{key}.{m}" for m in ("MAP", "S", "Q", "Q_best_episode", "FR_uint8", "videos")} <= set(metrics)
    json.dumps(metrics)  # flat JSON for dvc metrics
    old = table_metrics(table_for_mode(summarize(_q_records((None,) * 4)), "untargeted"))
    assert f"{key}.FR_mean_reading" not in old  # NaN cells are left out


def test_the_table_figure_draws_every_method(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sva.evaluation.figures import attack_table_figure

    recs = [_rec(v, m, s, 1.0, 0.5, 100, 50, victim=victim)
            for victim in ("c3d", "lrcn") for m, s in (("sva", True), ("dense", True), ("opt", False),
                                                       ("heuristic", True)) for v in "ab"]
    for r in recs:
        r["success_mean_reading"] = True
    table = table_for_mode(summarize(pd.DataFrame(recs)), "untargeted")
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to look at it
    path = attack_table_figure(table, tmp_path / "t.png", "untargeted attacks")
    assert path.stat().st_size > 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = figures
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"sva", "dense", "opt", "heuristic"} <= set(legend) and "FR 95 % Wilson interval" in legend
    axes = {ax.get_ylabel().split(":")[0]: ax for ax in fig.axes}
    assert set(axes) == {"MAP", "S", "Q", "FR"}
    # MAP: one bar per method and victim that has a value (opt never succeeded: written, not drawn)
    assert len(axes["MAP"].patches) == 6 and "no success" in [t.get_text() for t in axes["MAP"].texts]
    assert len(axes["FR"].patches) == 8 and len(axes["FR"].containers) == 8 + 8  # bars + Wilson error bars
    assert [t.get_text() for t in axes["FR"].get_xticklabels()] == ["ucf\nc3d", "ucf\nlrcn"]
    assert attack_table_figure(table.iloc[:0], tmp_path / "empty.png", "x").is_file()
