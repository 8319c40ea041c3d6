"""Config slices, code fingerprints and record keys: what makes a result current."""

from __future__ import annotations

import shutil

import pytest

from sva.pipeline import provenance
from sva.pipeline.config import load_config


@pytest.fixture
def cfg(repo):
    return load_config(repo / "params.yaml")


def _names(stage):
    return {p.relative_to(provenance.PACKAGE_DIR).as_posix() for p in provenance.stage_files(stage)}


def test_stage_closures_follow_imports_and_leave_out_bookkeeping():
    attack = _names("attack_shard")
    assert {"attacks/fgsm.py", "attacks/sva.py", "attacks/runner.py", "oracle.py", "lockstep.py",
            "estimators.py", "metrics.py", "agent.py", "rewards.py", "evaluate.py", "seeding.py",
            "checkpoints.py", "visualize.py"} <= attack
    assert not attack & {"tracking.py", "logs.py", "cli.py", "gpu.py", "config.py"}
    train = _names("train_victim")
    assert {"train.py", "checkpoints.py", "models/c3d.py", "models/lrcn.py"} <= train
    assert "attacks/fgsm.py" not in train and "oracle.py" not in train
    assert "data/synthetic.py" in _names("download") and "train.py" not in _names("download")
    assert "report.py" in _names("results_doc")


def test_editing_a_file_changes_exactly_the_stages_that_run_it(tmp_path, monkeypatch):
    copy = tmp_path / "sva"
    shutil.copytree(provenance.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(provenance, "PACKAGE_DIR", copy)
    provenance.code_fingerprint.cache_clear()
    before = {s: provenance.code_fingerprint(s) for s in ("attack_shard", "train_victim", "download")}
    (copy / "attacks/fgsm.py").write_text((copy / "attacks/fgsm.py").read_text() + "\n# edit\n")
    provenance.code_fingerprint.cache_clear()
    after = {s: provenance.code_fingerprint(s) for s in before}
    provenance.code_fingerprint.cache_clear()
    assert after["attack_shard"] != before["attack_shard"]
    assert after["train_victim"] == before["train_victim"] and after["download"] == before["download"]


def test_stage_keys_follow_their_config_slice(cfg):
    base = {s: provenance.stage_key(cfg, s, dataset="synthetic", model="c3d") for s in
            ("download", "snippets", "features", "train_victim", "attack_set", "attack_shard")}

    def keys(**change):
        data = cfg.model_dump(mode="json")
        for path, value in change.items():
            node = data
            *head, last = path.split("__")
            for k in head:
                node = node[k]
            node[last] = value
        other = type(cfg).model_validate(data)
        return {s: provenance.stage_key(other, s, dataset="synthetic", model="c3d") for s in base}

    eps = keys(attacks__eps=0.03)
    assert [s for s in base if eps[s] != base[s]] == ["attack_shard"]
    epochs = keys(victims__c3d__train__epochs=3)
    assert [s for s in base if epochs[s] != base[s]] == ["train_victim"]
    lrcn = keys(victims__lrcn__train__epochs=3)  # the c3d job's key does not move
    assert lrcn == base
    shards = keys(attacks__shards=3)
    assert [s for s in base if shards[s] != base[s]] == ["attack_shard"]
    seed = keys(seed=1)
    assert {s for s in base if seed[s] != base[s]} == {"download", "features", "train_victim", "attack_set",
                                                      "attack_shard"}


def test_record_key_covers_settings_checkpoint_data_but_not_job_selection(cfg):
    ids = dict(dataset="synthetic", victim="c3d", method="sva", mode="untargeted", video_id="v1")
    base = provenance.record_key(cfg, **ids, victim_sha256="a" * 64, data_sha256="d")

    def other(**change):
        data = cfg.model_dump(mode="json")
        data["attacks"].update(change)
        return type(cfg).model_validate(data)

    for change in ({"shards": 5}, {"methods": ["sva"]}, {"modes": ["untargeted", "targeted"]}):
        assert provenance.record_key(other(**change), **ids, victim_sha256="a" * 64, data_sha256="d") == base
    assert provenance.record_key(other(eps=0.03), **ids, victim_sha256="a" * 64, data_sha256="d") != base
    assert provenance.record_key(cfg, **ids, victim_sha256="b" * 64, data_sha256="d") != base
    assert provenance.record_key(cfg, **ids, victim_sha256="a" * 64, data_sha256="e") != base
    assert provenance.record_key(cfg, **{**ids, "video_id": "v2"}, victim_sha256="a" * 64, data_sha256="d") != base


def test_content_hashes(tmp_path):
    import numpy as np

    p = tmp_path / "f.bin"
    p.write_bytes(b"abc")
    first = provenance.file_sha256(p)
    assert first == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    p.write_bytes(b"abd")
    assert provenance.file_sha256(p) != first
    a = np.zeros((2, 3), np.uint8)
    assert provenance.array_sha256(a) == provenance.array_sha256(a.copy())
    assert provenance.array_sha256(a) != provenance.array_sha256(a.astype(np.float32))
    assert provenance.array_sha256(a) != provenance.array_sha256(a.reshape(3, 2))
