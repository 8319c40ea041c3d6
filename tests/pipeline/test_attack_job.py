"""A shard's videos attacked side by side (``attacks.videos_in_flight``): grouping,
record keys, resumption by whole groups, records equal to an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sva.pipeline import provenance
from sva.pipeline.attack_job import run_shard, video_groups
from sva.pipeline.config import load_config, validate_config

pytestmark = pytest.mark.slow  # builds the tiny project (shared with the workflow tests)


def test_video_groups():
    assert video_groups(["a", "b", "c", "d", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert video_groups(["a", "b"], 1) == [["a"], ["b"]]
    with pytest.raises(ValueError):
        video_groups(["a"], 0)


def _shard_inputs(folder: Path, in_flight: int, method: str = "dense", videos: int = 5, variants=None,
                  tables=None):
    import torch

    from sva.data.snippets import load_snippets
    from sva.victims.checkpoints import load_victim

    data = load_config(folder / "params.yaml").model_dump(mode="json")
    data["attacks"].update(methods=["sva", "dense"], shards=1, videos_in_flight=in_flight)
    data["attacks"]["untargeted"]["budget"] = 400
    data["attacks"]["variants"] = {**data["attacks"].get("variants", {}), **(variants or {})}
    if tables is not None:
        data["tables"] = tables
    cfg = validate_config(data, "in-flight test")
    model, _ = load_victim(folder / "results/victims/tiny/c3d.pt", "cpu", expect="c3d")
    store = load_snippets(folder / "data/snippets/tiny")
    # test videos, each labelled as the victim labels it (the tiny attack set may hold a
    # single video; a group needs several)
    test_idx = store.split_indices("test")[:videos]
    with torch.no_grad():
        pred = model(torch.stack([store.as_float(int(i)) for i in test_idx])).argmax(1).tolist()
    index = store.index.set_index("idx").loc[test_idx].reset_index()
    aset = pd.DataFrame({"idx": index["idx"].astype(int), "video_id": index["video_id"], "label": pred,
                         "target_label": [(p + 1) % 2 for p in pred]})
    feats = np.load(folder / "data/features/tiny/features.npy", mmap_mode="r")
    return (cfg, "tiny", "c3d", method, "untargeted", 0, aset, store, feats, model, torch.device("cpu")), "s" * 64


def _strip(rec: dict) -> dict:
    """A record without what differs between two runs of the same attack (times, memory)."""
    drop = {"started_at", "finished_at", "job_seconds", "wall_seconds", "peak_rss_mib", "episodes", "epochs"}
    return {k: v for k, v in rec.items() if k not in drop}


def test_in_flight_shard_groups_keys_and_resumes_whole_groups(tiny_project, tmp_path):
    folder, _ = tiny_project
    args, sha = _shard_inputs(folder, in_flight=2)
    out = tmp_path / "grouped"
    first = run_shard(*args, out, sha, progress=False)
    aset = args[6]
    assert [r["video_id"] for r in first] == sorted(aset["video_id"]) and len(first) == 5
    assert all(r["videos_in_flight"] == 2 for r in first)
    # each record's key names the videos it shared batches with
    cfg = args[0]
    groups = video_groups(sorted(aset["video_id"]), 2)
    for r in first:
        group = next(g for g in groups if r["video_id"] in g)
        assert r["record_key"] == provenance.record_key(
            cfg, dataset="tiny", victim="c3d", method="dense", mode="untargeted", video_id=r["video_id"],
            victim_sha256=sha, data_sha256=r["data_sha256"], batched_with=group)
    # a run killed inside the first group: only its first video's record survives
    killed = tmp_path / "killed"
    (killed / "videos").mkdir(parents=True)
    v0 = groups[0][0]
    for suffix in (".json", ".npz", ".png"):
        shutil.copy2(out / "videos" / f"{v0}{suffix}", killed / "videos" / f"{v0}{suffix}")
    for g in groups[1:]:  # later groups finished whole
        for v in g:
            for suffix in (".json", ".npz", ".png"):
                shutil.copy2(out / "videos" / f"{v}{suffix}", killed / "videos" / f"{v}{suffix}")
    stamp = {v: os.stat(killed / "videos" / f"{v}.json").st_mtime_ns for g in groups[1:] for v in g}
    stamp0 = os.stat(killed / "videos" / f"{v0}.json").st_mtime_ns
    resumed = run_shard(*args, killed, sha, progress=False)
    # the partial group was attacked again whole (its first video rewritten), the rest reused
    assert os.stat(killed / "videos" / f"{v0}.json").st_mtime_ns != stamp0
    assert stamp == {v: os.stat(killed / "videos" / f"{v}.json").st_mtime_ns for v in stamp}
    assert [_strip(r) for r in resumed] == [_strip(r) for r in first]
    # same config, fresh folder: the same records (deterministic rounds)
    again = run_shard(*args, tmp_path / "again", sha, progress=False)
    assert [_strip(r) for r in again] == [_strip(r) for r in first]
    for r in first:
        a = np.load(out / "videos" / f"{r['video_id']}.npz")["x_adv"]
        b = np.load(tmp_path / "again" / "videos" / f"{r['video_id']}.npz")["x_adv"]
        assert np.array_equal(a, b)


def test_one_video_in_flight_keeps_the_plain_key(tiny_project, tmp_path):
    folder, _ = tiny_project
    args, sha = _shard_inputs(folder, in_flight=1, videos=2)
    recs = run_shard(*args, tmp_path / "one", sha, progress=False)
    cfg = args[0]
    for r in recs:
        assert r["record_key"] == provenance.record_key(
            cfg, dataset="tiny", victim="c3d", method="dense", mode="untargeted", video_id=r["video_id"],
            victim_sha256=sha, data_sha256=r["data_sha256"])
    assert json.loads((tmp_path / "one" / "videos" / f"{recs[0]['video_id']}.json").read_text())["videos_in_flight"] == 1


def test_a_variant_without_overrides_repeats_its_base_method(tiny_project, tmp_path):
    """A variant draws its base method's random numbers: with no override it gives the
    base method's records, under its own name, key and ``variant_of``."""
    folder, _ = tiny_project
    args, sha = _shard_inputs(folder, in_flight=1, videos=2, variants={"sva_same": {"method": "sva"}})
    base = run_shard(*args[:3], "sva", *args[4:], tmp_path / "sva", sha, progress=False)
    same = run_shard(*args[:3], "sva_same", *args[4:], tmp_path / "sva_same", sha, progress=False)
    skip = {"method", "variant_of", "record_key"}
    assert [r["method"] for r in same] == ["sva_same"] * 2 and all(r["variant_of"] == "sva" for r in same)
    assert "variant_of" not in base[0]
    assert [{k: v for k, v in _strip(r).items() if k not in skip} for r in same] == \
        [{k: v for k, v in _strip(r).items() if k not in skip} for r in base]
    assert all(a["record_key"] != b["record_key"] for a, b in zip(same, base))


def test_a_variant_with_its_own_eps_that_only_a_limited_table_shows(tiny_project, tmp_path):
    """A variant's own eps bounds its attack and its check; a method that no main table
    shows, only a table limited to N videos (tables.<name>.videos), attacks the first N
    videos (by id) of the attack set only."""
    folder, _ = tiny_project
    variants = {"dense_tight": {"method": "dense", "eps": 0.02}}
    args, sha = _shard_inputs(folder, in_flight=1, videos=4, variants=variants,
                              tables={"t": {"rows": {"D": "dense_tight"}, "videos": 2}})
    recs = run_shard(*args[:3], "dense_tight", *args[4:], tmp_path / "tight", sha, progress=False)
    assert [r["video_id"] for r in recs] == sorted(args[6]["video_id"])[:2]
    assert all(r["eps"] == 0.02 and r["variant_of"] == "dense" for r in recs)
    for r in recs:
        x_adv = np.load(tmp_path / "tight" / "videos" / f"{r['video_id']}.npz")["x_adv"]
        assert r["linf"] <= 0.02 + 1e-6 and x_adv.shape[0] == 16


def test_sval_trains_on_a_seeded_half_and_attacks_the_rest_with_the_grids_choice(tiny_project, tmp_path):
    """SVAL's job: a seeded half of the attack set trains the agent (no query; the record
    names those videos), the other half is attacked, the records pass the table check,
    and with ``sparsity: auto`` S comes from the grid table in the results folder
    (which is part of the record key)."""
    from sva.evaluation.aggregate import check_records, load_records

    folder, _ = tiny_project
    variants = {"sval_lo": {"method": "sval", "settings": {"untargeted": {"sparsity": 0.25}}},
                "sval_hi": {"method": "sval", "settings": {"untargeted": {"sparsity": 0.75}}}}
    tables = {"grid": {"rows": {"S = 25 %": "sval_lo", "S = 75 %": "sval_hi"}, "map_only_at_full_fr": True}}
    args, sha = _shard_inputs(folder, in_flight=2, method="sval", videos=5, variants=variants, tables=tables)
    cfg = args[0]
    data = cfg.model_dump(mode="json")
    data["attacks"]["sval"].update(epochs=2, untargeted={"sparsity": "auto", "grid": "grid"})
    cfg = validate_config(data, "sval test")
    aset = args[6]
    out = tmp_path / "results/attacks/untargeted/tiny/c3d/sval"
    one = (*args[1:6], aset.iloc[:1], *args[7:])  # too few videos to split: an error naming the key
    with pytest.raises(Exception, match=r"at least 2 videos .*datasets\.tiny\.attack_set_size"):
        run_shard(cfg, *one, out, sha, progress=False)
    # SVAL is not one of this config's main-run methods: its grid is the paper target's
    # (sva/pipeline/layout.py)
    with pytest.raises(Exception, match=r"results/paper/grid\.csv: missing"):
        run_shard(cfg, *args[1:], out, sha, progress=False)
    out.mkdir(parents=True, exist_ok=True)
    (tmp_path / "results/paper").mkdir()
    pd.DataFrame({"row": ["S = 25 %", "S = 75 %"], "dataset": "tiny", "victim": "c3d",
                  "method": ["sval_lo", "sval_hi"], "MAP": [3.0, 2.0], "FR (%)": [100.0, 100.0]}
                 ).to_csv(tmp_path / "results/paper/grid.csv", index=False)
    recs = run_shard(cfg, *args[1:], out, sha, progress=False)
    ids = sorted(aset["video_id"])
    train = recs[0]["offline_train_videos"]
    assert len(train) == 2 and len(recs) == 3 and sorted(train + [r["video_id"] for r in recs]) == ids
    assert all(r["offline_train_videos"] == train and r["sval"]["train_queries"] == 0 for r in recs)
    assert all(r["hints"]["sparsity"] == 0.75 and r["sval"]["key_frames"] == 4 for r in recs)  # round(0.25·16)
    assert all(len(r["selected_frames"]) == 4 or not r["success"] for r in recs)
    shard = tmp_path / "shard0.json"
    shard.write_text(json.dumps(recs))
    check_records(load_records([shard]), {"tiny": aset.assign(video_id=aset["video_id"].astype(str))})
    # another grid result changes the choice, so the records' keys
    pd.DataFrame({"row": ["S = 25 %", "S = 75 %"], "dataset": "tiny", "victim": "c3d",
                  "method": ["sval_lo", "sval_hi"], "MAP": [1.0, 2.0], "FR (%)": [100.0, 100.0]}
                 ).to_csv(tmp_path / "results/paper/grid.csv", index=False)
    again = run_shard(cfg, *args[1:], out, sha, progress=False)
    assert all(r["hints"]["sparsity"] == 0.25 for r in again)
    assert {r["record_key"] for r in again}.isdisjoint({r["record_key"] for r in recs})
