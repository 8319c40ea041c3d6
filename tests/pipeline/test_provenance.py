"""Config slices, code fingerprints and record keys: what makes a result current."""

from __future__ import annotations

import shutil

import pytest

from sva.pipeline import provenance
from sva.pipeline.config import load_config


@pytest.fixture
def cfg(repo):
    return load_config(repo / "params.yaml")


def _names(stage, method=None):
    return {p.relative_to(provenance.PACKAGE_DIR).as_posix() for p in provenance.stage_files(stage, method)}


def test_stage_closures_follow_imports_and_leave_out_bookkeeping():
    attack = _names("attack_shard")
    assert {"attacks/fgsm.py", "attacks/rl/algorithm.py", "attacks/dense.py", "pipeline/attack_job.py",
            "blackbox/oracle.py", "blackbox/lockstep.py", "blackbox/estimators.py", "evaluation/metrics.py",
            "attacks/rl/agent.py", "attacks/rl/rewards.py", "evaluation/evaluator.py", "utils/seeding.py",
            "victims/checkpoints.py", "evaluation/strips.py"} <= attack
    assert not attack & {"pipeline/tracking.py", "utils/logs.py", "cli.py", "pipeline/gpu.py", "pipeline/config.py"}
    train = _names("train_victim")
    assert {"victims/training.py", "victims/checkpoints.py", "victims/models/c3d.py", "victims/models/lrcn.py"} <= train
    assert "attacks/fgsm.py" not in train and "blackbox/oracle.py" not in train
    assert "data/synthetic.py" in _names("download") and "victims/training.py" not in _names("download")
    assert "pipeline/report.py" in _names("results_doc")
    assert "evaluation/paper_numbers.yaml" in _names("table1")  # a data file counts as source


def test_a_method_is_covered_by_its_own_jobs_only():
    """The registry imports methods by name; each method's attack jobs cover its module
    and what it imports, not the other methods' modules."""
    dense, sva = _names("attack_shard", "dense"), _names("attack_shard", "sva")
    assert "attacks/dense.py" in dense and "attacks/rl/algorithm.py" not in dense
    assert {"attacks/rl/algorithm.py", "attacks/rl/agent.py"} <= sva and "attacks/dense.py" not in sva


def test_editing_a_file_changes_exactly_the_stages_that_run_it(tmp_path, monkeypatch):
    copy = tmp_path / "sva"
    shutil.copytree(provenance.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(provenance, "PACKAGE_DIR", copy)
    provenance.code_fingerprint.cache_clear()
    def prints():
        provenance.code_fingerprint.cache_clear()
        return {**{s: provenance.code_fingerprint(s) for s in ("attack_shard", "train_victim", "download")},
                **{m: provenance.code_fingerprint("attack_shard", m) for m in ("sva", "dense")}}

    before = prints()
    (copy / "attacks/fgsm.py").write_text((copy / "attacks/fgsm.py").read_text() + "\n# edit\n")
    after = prints()
    assert {k for k in before if after[k] != before[k]} == {"attack_shard", "sva", "dense"}
    (copy / "attacks/dense.py").write_text((copy / "attacks/dense.py").read_text() + "\n# edit\n")
    again = prints()
    provenance.code_fingerprint.cache_clear()
    assert {k for k in before if again[k] != after[k]} == {"attack_shard", "dense"}


def test_stage_keys_follow_their_config_slice(cfg):
    job = {"attack_shard": dict(method="sva", mode="untargeted"), "dense": dict(method="dense", mode="untargeted"),
           "targeted": dict(method="sva", mode="targeted")}

    def key_of(c, s):
        return provenance.stage_key(c, "attack_shard" if s in job else s, dataset="synthetic", model="c3d",
                                    **job.get(s, {}))

    base = {s: key_of(cfg, s) for s in
            ("download", "snippets", "features", "train_victim", "attack_set", *job)}

    def keys(**change):
        data = cfg.model_dump(mode="json")
        for path, value in change.items():
            node = data
            *head, last = path.split("__")
            for k in head:
                node = node[k]
            node[last] = value
        other = type(cfg).model_validate(data)
        return {s: key_of(other, s) for s in base}

    eps = keys(attacks__eps=0.03)
    assert [s for s in base if eps[s] != base[s]] == list(job)
    # a method's block moves its own jobs only; a mode's block the jobs of that mode only
    assert [s for s in base if keys(attacks__sva__epochs=3)[s] != base[s]] == ["attack_shard", "targeted"]
    assert [s for s in base if keys(attacks__targeted__budget=9000)[s] != base[s]] == ["targeted"]
    assert [s for s in base if keys(attacks__untargeted__sigma=0.01)[s] != base[s]] == ["attack_shard", "dense"]
    epochs = keys(victims__c3d__train__epochs=3)
    assert [s for s in base if epochs[s] != base[s]] == ["train_victim"]
    lrcn = keys(victims__lrcn__train__epochs=3)  # the c3d job's key does not move
    assert lrcn == base
    shards = keys(attacks__shards=3)
    assert [s for s in base if shards[s] != base[s]] == list(job)
    seed = keys(seed=1)
    assert {s for s in base if seed[s] != base[s]} == {"download", "features", "train_victim", "attack_set",
                                                      *job}


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
    # another method's or mode's block does not touch this record's key
    assert provenance.record_key(other(targeted={"budget": 9000}), **ids, victim_sha256="a" * 64,
                                 data_sha256="d") == base
    assert provenance.record_key(other(sva={"epochs": 3}), **ids, victim_sha256="a" * 64, data_sha256="d") != base
    dense = {**ids, "method": "dense"}
    assert provenance.record_key(other(sva={"epochs": 3}), **dense, victim_sha256="a" * 64, data_sha256="d") == \
        provenance.record_key(cfg, **dense, victim_sha256="a" * 64, data_sha256="d")
    assert provenance.record_key(cfg, **ids, victim_sha256="b" * 64, data_sha256="d") != base
    assert provenance.record_key(cfg, **ids, victim_sha256="a" * 64, data_sha256="e") != base
    assert provenance.record_key(cfg, **{**ids, "video_id": "v2"}, victim_sha256="a" * 64, data_sha256="d") != base
    # videos attacked side by side: the number in flight and the group are part of the key
    assert provenance.record_key(other(videos_in_flight=2), **ids, victim_sha256="a" * 64, data_sha256="d") != base
    pair = provenance.record_key(cfg, **ids, victim_sha256="a" * 64, data_sha256="d", batched_with=["v1", "v2"])
    assert pair != base and pair != provenance.record_key(cfg, **ids, victim_sha256="a" * 64, data_sha256="d",
                                                          batched_with=["v1", "v3"])


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


def test_a_variant_keys_on_its_resolved_settings_and_its_base_methods_code(cfg):
    """A variant's jobs and records follow its own settings (base block + overrides) and
    the code of the method it runs; editing the base block reruns the variant too, a
    change to another variant does not."""
    ids = dict(dataset="synthetic", victim="c3d", mode="untargeted", video_id="v1", victim_sha256="a" * 64,
               data_sha256="d")
    s = provenance.attack_settings(cfg, "sva_r_attack", "untargeted")
    assert s["variant_of"] == "sva" and s["sva_r_attack"]["rewards"] == "attack"
    assert "variant_of" not in provenance.attack_settings(cfg, "sva", "untargeted")
    # a variant's own ε is part of what decides its records
    assert provenance.attack_settings(cfg, "sva_eps_003", "untargeted")["eps"] == 0.03
    assert provenance.attack_settings(cfg, "sva", "untargeted")["eps"] == cfg.attacks.eps
    key = provenance.record_key(cfg, method="sva_r_attack", **ids)
    assert key != provenance.record_key(cfg, method="sva", **ids)

    def other(change):
        data = cfg.model_dump(mode="json")
        change(data["attacks"])
        return type(cfg).model_validate(data)

    assert provenance.record_key(other(lambda a: a["sva"].update(gamma1=1.0)), method="sva_r_attack", **ids) != key
    assert provenance.record_key(other(lambda a: a["variants"]["sva_r_attack_rep"]["settings"].update(gamma1=1.0)),
                                 method="sva_r_attack", **ids) == key
    job = dict(dataset="synthetic", model="c3d", mode="untargeted")
    assert provenance.stage_key(cfg, "attack_shard", method="sva_r_attack", **job) != \
        provenance.stage_key(cfg, "attack_shard", method="sva", **job)
    # the code part is the base method's (a variant has no module of its own)
    assert provenance.code_fingerprint("attack_shard", cfg.attacks.base_method("sva_r_attack")) == \
        provenance.code_fingerprint("attack_shard", "sva")
    assert any(p.name == "algorithm.py" for p in provenance.stage_files("attack_shard", "sva"))
