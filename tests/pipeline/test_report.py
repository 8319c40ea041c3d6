"""The generated parts of docs/results.md (sva/pipeline/report.py)."""

import json

from sva.pipeline.report import attack_jobs, markdown_table


def _record(root, victim, method, video, queries, wall):
    d = root / "attacks" / "untargeted" / "synthetic" / victim / method / "videos"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{video}.json").write_text(json.dumps({
        "mode": "untargeted", "dataset": "synthetic", "victim": victim, "method": method,
        "wall_seconds": wall, "queries": queries, "peak_rss_mib": 100.0}))


def _benchmark(root, victim, method, shard, seconds):
    d = root / "benchmarks" / "attack_shard" / "untargeted" / "synthetic" / victim / method
    d.mkdir(parents=True, exist_ok=True)
    (d / f"shard{shard}.tsv").write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:00\t120.0\n")


def test_attack_jobs_gives_the_job_time_per_query(tmp_path):
    _record(tmp_path, "c3d", "opt", "v1", 30000, 90.0)
    _record(tmp_path, "c3d", "opt", "v2", 10000, 40.0)
    _record(tmp_path, "c3d", "dense", "v1", 2000, 5.0)
    _benchmark(tmp_path, "c3d", "opt", 0, 100.0)
    _benchmark(tmp_path, "c3d", "opt", 1, 60.0)
    _benchmark(tmp_path, "c3d", "dense", 0, 10.0)
    lines = attack_jobs(tmp_path).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {r.split("|")[4].strip(): [c.strip() for c in r.strip("|").split("|")] for r in lines[2:4]}
    col = {name: i for i, name in enumerate(header)}
    assert rows["opt"][col["queries (sum)"]] == "40,000"
    assert rows["opt"][col["job seconds (sum)"]] == "160"
    assert rows["opt"][col["ms of job time per query"]] == "4"  # 160 s / 40,000 queries
    assert rows["dense"][col["ms of job time per query"]] == "5"
    assert header[-1] == "peak RSS of a job (MiB)"


def test_attack_jobs_without_benchmark_files_leaves_the_time_out(tmp_path):
    _record(tmp_path, "c3d", "opt", "v1", 30000, 90.0)
    table = attack_jobs(tmp_path)
    assert "queries (sum)" in table and "per query" not in table.splitlines()[0]


def test_markdown_table_groups_thousands_of_ints_and_floats():
    import pandas as pd

    text = markdown_table(pd.DataFrame({"n": [30000], "x": [1234.56], "ok": [True]}))
    assert text.splitlines()[-1] == "| 30,000 | 1,234.6 | True |"


def test_failure_reasons_read_the_current_shards_of_configured_methods(tmp_path, repo):
    from sva.pipeline.config import load_config
    from sva.pipeline.report import failure_reasons

    cfg = load_config(repo / "params.yaml")
    def rec(method, success, stop="budget"):
        return {"mode": "untargeted", "dataset": "synthetic", "victim": "c3d", "method": method,
                "success": success, "queries": 30000, "budget": 30000, "budget_scope": "video", "eps": 0.05,
                "episodes": [{"frames": list(range(16)), "stop": stop, "linf": 0.1,
                              "trace": [{"queries": 100, "linf": 0.3}, {"queries": 30000, "linf": 0.1}]}]}
    base = tmp_path / "attacks" / "untargeted" / "synthetic" / "c3d"
    for method, records in {"opt": [rec("opt", False), rec("opt", True)], "dense": [rec("dense", True)],
                            "not_configured": [rec("not_configured", False)]}.items():
        (base / method).mkdir(parents=True)
        (base / method / "shard0.json").write_text(json.dumps(records))
    # a shard file of an earlier layout (more shards than attacks.shards) is not read
    (base / "opt" / f"shard{cfg.attacks.shards}.json").write_text(json.dumps([rec("opt", False)] * 5))
    lines = failure_reasons(tmp_path, cfg)
    assert lines[0] == "## Why videos were not fooled (measured)"
    items = [x for x in lines if x.startswith("- ")]
    assert items == ["- opt (untargeted, synthetic/c3d): 1 of 2 videos not fooled; ended by the budget (1); the "
                     "closest adversarial videos lay at 2.0 × ε (median L∞ over ε); 1 of 1 were still closing in "
                     "over the last half of their queries (L∞ down by more than 1 %)."]
    assert failure_reasons(tmp_path / "nothing", cfg) == []


def test_table_times_survive_a_dvc_commit(tmp_path):
    """`dvc commit` rewrites a committed table and its mtime; the span to Table 3 is then
    read from its job's log, which DVC never touches."""
    import os

    from sva.pipeline.report import timings

    results = tmp_path / "results"
    bench = results / "benchmarks/attack_table"
    bench.mkdir(parents=True)
    (bench / "table3.tsv").write_text("s\tmax_rss\n10.0\t100\n")
    t0 = (bench / "table3.tsv").stat().st_mtime - 10.0
    (results / "table3.csv").write_text("x\n")
    log = tmp_path / "logs/attack_table/table3.log"
    log.parent.mkdir(parents=True)
    log.write_text("done\n")
    os.utime(log, (t0 + 10.0, t0 + 10.0))
    os.utime(results / "table3.csv", (t0 + 500.0, t0 + 500.0))  # what a later `dvc commit` does
    assert "`results/table3.csv` written **10 s** after the first job started." in timings(results)
    log.unlink()  # without the log, the table's own time
    assert "`results/table3.csv` written **500 s** after the first job started." in timings(results)


def test_variant_frames_compares_each_variant_of_sva_in_the_tables_with_svas_records(tmp_path, repo):
    from sva.pipeline import layout
    from sva.pipeline.config import load_config
    from sva.pipeline.report import variant_frames

    cfg = load_config(repo / "params.yaml")

    def rec(method, video, masks):
        return {"mode": "untargeted", "dataset": "synthetic", "victim": "c3d", "method": method, "video_id": video,
                "episodes": [{"frames": m} for m in masks], "epochs": [{}, {}]}

    masks = [[0, 1], [2, 3]]
    for method, records in {"sva": [rec("sva", "v1", masks), rec("sva", "v2", masks)],
                            "sva_gamma2_1": [rec("sva_gamma2_1", "v1", masks), rec("sva_gamma2_1", "v2", masks)],
                            "sva_eps_003": [rec("sva_eps_003", "v1", [[0, 1], [4]])],
                            "opt": [rec("opt", "v1", masks)]}.items():
        d = layout.method_dir(cfg, tmp_path, "untargeted", "synthetic", "c3d", method)
        d.mkdir(parents=True)
        (d / "shard0.json").write_text(json.dumps(records))
    lines = variant_frames(tmp_path, cfg)
    assert lines[0] == "## Which frames SVA's variants sampled (measured)"
    items = [x for x in lines if x.startswith("- ")]
    assert items == [
        "- untargeted, synthetic/c3d: `sva_eps_003` sampled `sva`'s frames in 1 of 2 episodes, and in every episode "
        "of 0 of 1 videos; the masks it sampled were shaped by 1 agent update per video (median).",
        "- untargeted, synthetic/c3d: `sva_gamma2_1` sampled `sva`'s frames in 4 of 4 episodes, and in every "
        "episode of 2 of 2 videos; the masks it sampled were shaped by 1 agent update per video (median)."]
    assert variant_frames(tmp_path / "nothing", cfg) == []
