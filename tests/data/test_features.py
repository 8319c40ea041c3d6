"""Per-frame ResNet18 features: weights resolution, shapes, determinism, the folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from sva.data import features as ft
from sva.data.settings import FeatureCfg, SnippetCfg
from sva.data.snippets import build_snippets, load_snippets
from sva.utils.errors import UserError
from sva.data.features import (
    FEATURE_DIM,
    WeightsError,
    build_features,
    extract_features,
    load_features,
    load_resnet18,
)
from videos import Entry, column_frames, write_numbered, write_video



T = 8  # frames per snippet here (keeps the CPU forward passes short)


@pytest.fixture(scope="module")
def snippets_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("feat")
    videos = root / "videos"
    entries = []
    for i, n in enumerate([8, 5, 30]):
        write_numbered(videos / f"v{i}.mkv", n)
        entries.append(Entry(f"v{i}", f"v{i}.mkv", f"c{i % 2}", i % 2, "train"))
    write_video(videos / "p.avi", column_frames(12, 32, 32), "ffv1-avi")
    entries.append(Entry("p", "p.avi", "c0", 0, "test"))
    build_snippets(entries, videos, root / "snippets", SnippetCfg(num_frames=T), progress=False)
    return root / "snippets"


@pytest.fixture
def no_hub(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub


def _random_state_dict(seed: int, drop_fc: bool = False) -> dict:
    torch.manual_seed(seed)
    sd = torchvision.models.resnet18(weights=None).state_dict()
    return {k: v for k, v in sd.items() if not (drop_fc and k.startswith("fc."))}


def test_extract_shape_dtype_and_determinism(snippets_dir):
    store = load_snippets(snippets_dir)
    cfg = FeatureCfg(weights="none", batch_size=16)
    a, used = extract_features(store, cfg, seed=3, device="cpu", progress=False)
    assert used == "none"
    assert a.dtype == np.float32 and a.shape == (4, T, FEATURE_DIM)
    assert np.isfinite(a).all() and a.std() > 0
    b, _ = extract_features(store, cfg, seed=3, device="cpu", progress=False)
    np.testing.assert_array_equal(a, b)
    c, _ = extract_features(store, FeatureCfg(weights="none", batch_size=32), seed=4, device="cpu", progress=False)
    assert not np.allclose(a, c)
    # batching does not change the numbers beyond float noise
    d, _ = extract_features(store, FeatureCfg(weights="none", batch_size=32), seed=3, device="cpu", progress=False)
    np.testing.assert_allclose(a, d, rtol=1e-4, atol=1e-5)
    # repeated source frames (video of 7 frames) give identical features
    idx = np.flatnonzero(np.diff(store.frames[1].reshape(T, -1).astype(int), axis=0).any(axis=1) == 0)
    assert len(idx) > 0
    np.testing.assert_array_equal(a[1, idx], a[1, idx + 1])


def test_matches_a_manual_forward(snippets_dir):
    store = load_snippets(snippets_dir)
    feats, _ = extract_features(store, FeatureCfg(weights="none"), seed=0, progress=False)
    model, _ = load_resnet18("none", 0)
    x = store.as_float(3)
    mean = torch.tensor(ft.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(ft.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        ref = model((x - mean) / std).numpy()
    np.testing.assert_allclose(feats[3], ref, rtol=1e-4, atol=1e-5)


def test_input_size_resizes(snippets_dir):
    store = load_snippets(snippets_dir)
    small, _ = extract_features(store, FeatureCfg(weights="none"), seed=0, progress=False)
    big, _ = extract_features(store, FeatureCfg(weights="none", input_size=64), seed=0, progress=False)
    assert big.shape == small.shape and not np.allclose(big, small)


def test_random_init_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_resnet18("none", 0)
    assert torch.equal(torch.rand(3), expected)


def test_model_is_backbone_in_eval_mode():
    model, _ = load_resnet18("none", 0)
    assert isinstance(model.fc, torch.nn.Identity) and not model.training
    assert all(not p.requires_grad for p in model.parameters())
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, FEATURE_DIM)


@pytest.mark.parametrize("drop_fc", [False, True])
def test_local_state_dict(tmp_path, snippets_dir, drop_fc):
    path = tmp_path / "w.pt"
    torch.save(_random_state_dict(7, drop_fc), path)
    model, used = load_resnet18(str(path), seed=0)
    assert used == f"file:{path.resolve()}"
    ref = _random_state_dict(7)
    got = model.state_dict()
    assert all(torch.equal(got[k], ref[k]) for k in got)
    other, _ = load_resnet18(str(path), seed=99)  # the seed only matters for random init
    assert all(torch.equal(v, got[k]) for k, v in other.state_dict().items())
    if drop_fc:
        feats, used = extract_features(load_snippets(snippets_dir), FeatureCfg(weights=str(path)), 0, progress=False)
        assert used == f"file:{path.resolve()}" and feats.shape == (4, T, FEATURE_DIM)


def test_wrapped_state_dict_accepted(tmp_path):
    sd = _random_state_dict(1)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    model, _ = load_resnet18(str(path), 0)
    assert torch.equal(model.conv1.weight, sd["conv1.weight"])


def test_missing_weights_path_names_it(tmp_path):
    missing = tmp_path / "nowhere" / "resnet.pt"
    with pytest.raises(WeightsError, match=str(missing)):
        load_resnet18(str(missing), 0)


@pytest.mark.parametrize(
    "payload",
    [
        {"foo.weight": torch.zeros(3)},
        {"conv1.weight": torch.zeros(4, 3, 7, 7)},
        [torch.zeros(3)],
    ],
    ids=["wrong-keys", "wrong-shape", "not-a-dict"],
)
def test_incompatible_state_dict_names_the_path(tmp_path, payload):
    path = tmp_path / "bad.pt"
    torch.save(payload, path)
    with pytest.raises(WeightsError, match=str(path)):
        load_resnet18(str(path), 0)


class _NotATensor:
    pass


def test_non_tensor_pickle_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"conv1.weight": _NotATensor()}, path)  # loading it needs full unpickling
    with pytest.raises(WeightsError, match=str(path)):
        load_resnet18(str(path), 0)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot be read"):
        load_resnet18(str(path), 0)


def test_imagenet_without_cache_is_a_clear_error(no_hub):
    with pytest.raises(WeightsError) as err:
        load_resnet18("imagenet", 0)
    msg = str(err.value)
    assert str(no_hub / "checkpoints" / "resnet18-f37072fd.pth") in msg
    assert "download" in msg and "'auto'" in msg


def test_auto_without_cache_falls_back_to_seeded_random(no_hub, caplog):
    with caplog.at_level(logging.WARNING, logger="sva.data.features"):
        model, used = load_resnet18("auto", 5)
    assert used == "none"
    assert any("random init" in r.getMessage() for r in caplog.records)
    ref, _ = load_resnet18("none", 5)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))


@pytest.mark.parametrize("weights", ["imagenet", "auto"])
def test_imagenet_from_the_hub_cache(no_hub, weights):
    file = no_hub / "checkpoints" / "resnet18-f37072fd.pth"
    file.parent.mkdir(parents=True)
    sd = _random_state_dict(11)  # stands in for the real checkpoint (same keys and shapes)
    torch.save(sd, file)
    model, used = load_resnet18(weights, 0)
    assert used == "imagenet"
    assert torch.equal(model.conv1.weight, sd["conv1.weight"])


def test_build_features_folder(tmp_path, snippets_dir):
    out = tmp_path / "features"
    cfg = FeatureCfg(weights="none", center="none")  # raw: equal to extract_features (centring: below)
    meta = build_features(snippets_dir, out, cfg, seed=2, device="cpu", progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["features.npy", "meta.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["features"]
    arr = load_features(out)
    assert isinstance(arr, np.memmap) and arr.dtype == np.float32 and arr.shape == (4, T, FEATURE_DIM)
    direct, _ = extract_features(load_snippets(snippets_dir), cfg, seed=2, progress=False)
    np.testing.assert_array_equal(np.asarray(arr), direct)
    on_disk = json.loads((out / "meta.json").read_text())
    assert on_disk == meta
    assert meta["weights"] == "none" and meta["seed"] == 2 and meta["shape"] == [4, T, FEATURE_DIM]
    assert meta["snippets_dir"] == str(snippets_dir) and meta["weights_sha256"] is None


def test_build_features_records_file_hash(tmp_path, snippets_dir):
    path = tmp_path / "w.pt"
    torch.save(_random_state_dict(0), path)
    meta = build_features(snippets_dir, tmp_path / "f", FeatureCfg(weights=str(path)), seed=0, progress=False)
    import hashlib

    assert meta["weights"] == f"file:{path.resolve()}"
    assert meta["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_features_failure_leaves_nothing(tmp_path, snippets_dir, monkeypatch):
    out = tmp_path / "features"

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(ft.nn.Module, "__call__", boom)
    with pytest.raises(RuntimeError, match="out of memory"):
        build_features(snippets_dir, out, FeatureCfg(weights="none"), seed=0, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_build_features_missing_snippets(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope")):
        build_features(tmp_path / "nope", tmp_path / "f", FeatureCfg(weights="none"), seed=0, progress=False)
    assert not (tmp_path / "f").exists()


def test_threads_argument_is_temporary(snippets_dir):
    store = load_snippets(snippets_dir)
    before = torch.get_num_threads()
    a, _ = extract_features(store, FeatureCfg(weights="none"), seed=1, progress=False, threads=2)
    assert torch.get_num_threads() == before
    b, _ = extract_features(store, FeatureCfg(weights="none"), seed=1, progress=False, threads=1)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_auto_with_a_broken_cached_file_is_an_error(no_hub):
    file = no_hub / "checkpoints" / "resnet18-f37072fd.pth"
    file.parent.mkdir(parents=True)
    file.write_bytes(b"half a download")
    with pytest.raises(WeightsError, match=str(file)):
        load_resnet18("auto", 0)


# --------------------------------------------------------------------------- centring
def test_resolve_center():
    assert ft.resolve_center("auto", "none") == "train_mean"  # random init: centre
    assert ft.resolve_center("auto", "imagenet") == "none"  # the paper's raw features
    assert ft.resolve_center("auto", "file:/x.pth") == "none"
    assert ft.resolve_center("train_mean", "imagenet") == "train_mean"
    assert ft.resolve_center("none", "none") == "none"
    with pytest.raises(ValueError, match="features.center"):
        ft.resolve_center("median", "none")


def test_center_on_train_mean_subtracts_the_train_frames_mean():
    rng = np.random.default_rng(0)
    f = (rng.random((7, 4, 5)) + 3.0).astype(np.float32)
    raw = f.copy()
    train = np.array([0, 2, 3])
    mean = ft.center_on_train_mean(f, train, chunk=2)
    np.testing.assert_allclose(mean, raw[train].reshape(-1, 5).mean(0), rtol=1e-6)
    np.testing.assert_allclose(f, raw - mean, rtol=1e-6)
    np.testing.assert_allclose(f[train].reshape(-1, 5).mean(0), 0.0, atol=1e-5)
    # Euclidean distances (hence R_rep) unchanged
    np.testing.assert_allclose(np.linalg.norm(f[1, 0] - f[5, 3]), np.linalg.norm(raw[1, 0] - raw[5, 3]), rtol=1e-5)
    with pytest.raises(ValueError, match="train"):
        ft.center_on_train_mean(f, np.array([], dtype=np.int64))


def test_build_features_centres_random_features_on_the_train_split(tmp_path, snippets_dir):
    store = load_snippets(snippets_dir)
    raw, used = extract_features(store, FeatureCfg(weights="none"), 0, "cpu", progress=False)
    assert used == "none"
    meta = build_features(snippets_dir, tmp_path / "f", FeatureCfg(weights="none"), 0, "cpu", progress=False)
    assert meta["center"] == "train_mean" and meta["center_train_snippets"] == 3
    train = store.split_indices("train")
    mean = raw[train].reshape(-1, FEATURE_DIM).mean(0)
    np.testing.assert_allclose(meta["center_mean"], mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(load_features(tmp_path / "f"), raw - mean, rtol=1e-4, atol=1e-5)
    plain = build_features(snippets_dir, tmp_path / "g", FeatureCfg(weights="none", center="none"), 0, "cpu",
                           progress=False)
    assert plain["center"] == "none" and plain["center_mean"] is None
    np.testing.assert_array_equal(load_features(tmp_path / "g"), raw)


def test_centring_without_a_train_split_names_the_index(tmp_path):
    root = tmp_path
    write_numbered(root / "videos" / "v.mkv", 8)
    build_snippets([Entry("v", "v.mkv", "c0", 0, "test")], root / "videos", root / "snippets",
                   SnippetCfg(num_frames=T), progress=False)
    with pytest.raises(UserError, match=r"index\.csv has no train-split snippet"):
        build_features(root / "snippets", root / "f", FeatureCfg(weights="none", center="train_mean"), 0, "cpu",
                       progress=False)
    assert not (root / "f").exists()


def test_centred_random_features_tell_frames_of_different_content_apart():
    """The agent's features must carry information (R_div, R_rep): on the embedded
    synthetic videos, frames before the motion window (the same content up to noise)
    stay alike, frames on either side of it (the object moved) clearly differ, and R_div
    of random half masks spans a useful range. Raw random features do not (cosine ~0.99,
    R_div ~0.01): that is why ``center: auto`` centres them."""
    import pandas as pd

    from sva.attacks.rl.rewards import diversity
    from sva.data import synthetic as syn
    from sva.data.settings import SyntheticCfg
    from sva.data.snippets import SnippetStore

    cfg = SyntheticCfg(num_classes=6, train_per_class=3, test_per_class=2)
    parts = {s: syn.generate_arrays(cfg, 0, s) for s in ("train", "test")}
    frames = np.concatenate([parts["train"][0], parts["test"][0]])
    infos = parts["train"][2] + parts["test"][2]
    split = ["train"] * len(parts["train"][1]) + ["test"] * len(parts["test"][1])
    store = SnippetStore(Path("synthetic"), pd.DataFrame({"split": split}), frames, {})
    raw, _ = extract_features(store, FeatureCfg(weights="none"), 0, "cpu", progress=False)
    centred = raw.copy()
    ft.center_on_train_mean(centred, store.split_indices("train"))

    def cos(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    same, moved = [], []
    for i, info in enumerate(infos):
        s, n = info["window_start"], info["window_length"]
        if s >= 2 and s + n < cfg.frames:  # two frames before the window, one after it
            same.append(cos(centred[i, 0], centred[i, 1]))
            moved.append(cos(centred[i, 0], centred[i, -1]))
    assert len(same) >= 10
    assert np.mean(same) > 0.95 and np.mean(moved) < np.mean(same) - 0.1, (np.mean(same), np.mean(moved))

    g = torch.Generator().manual_seed(0)
    masks = [torch.rand(cfg.frames, generator=g) < 0.5 for _ in range(8)]
    r_div = {name: np.array([diversity(torch.from_numpy(f[i]), m) for i in range(len(f)) for m in masks])
             for name, f in (("raw", raw), ("centred", centred))}
    lo, hi = np.percentile(r_div["centred"], [5, 95])
    assert hi - lo > 0.1 and r_div["centred"].mean() > 0.05, (lo, hi)
    assert r_div["raw"].mean() < 0.03  # the problem centring solves
