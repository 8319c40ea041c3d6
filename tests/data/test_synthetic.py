"""The embedded synthetic action dataset: determinism, the motion window, files, splits."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from sva.data.settings import SyntheticCfg
from sva.data import synthetic as syn

CFG = SyntheticCfg()  # the params.yaml defaults: 10 classes, 16x32x32, window 3-4


def _render(cls: int, seed: int = 0, idx: int = 0, cfg: SyntheticCfg = CFG, **kw):
    return syn.render_video_with_info(cls, syn.video_rng(seed, "train", cls, idx), cfg, **kw)


def test_shape_dtype_and_names():
    v = syn.render_video(0, syn.video_rng(0, "train", 0, 0), CFG)
    assert v.shape == (CFG.frames, CFG.height, CFG.width, 3)
    assert v.dtype == np.uint8
    assert syn.class_names(10) == list(syn.CLASS_NAMES[:10])
    assert len(set(syn.CLASS_NAMES)) == 12
    assert all(n[0].isupper() and n.isalnum() for n in syn.CLASS_NAMES)
    with pytest.raises(ValueError):
        syn.class_names(13)


def test_deterministic_from_seed():
    a = syn.render_video(3, syn.video_rng(0, "train", 3, 5), CFG)
    b = syn.render_video(3, syn.video_rng(0, "train", 3, 5), CFG)
    np.testing.assert_array_equal(a, b)
    for other in (syn.video_rng(1, "train", 3, 5), syn.video_rng(0, "test", 3, 5), syn.video_rng(0, "train", 3, 6)):
        assert not np.array_equal(a, syn.render_video(3, other, CFG))


@pytest.mark.parametrize("cls", range(12))
def test_motion_confined_to_window(cls):
    cfg = SyntheticCfg(num_classes=12)
    for idx in range(3):
        clean, info = _render(cls, idx=idx, cfg=cfg, noise=False, distractor=False)
        noisy, info2 = _render(cls, idx=idx, cfg=cfg)
        start, length = info["window_start"], info["window_length"]
        assert (start, length) == (info2["window_start"], info2["window_length"])
        assert cfg.window[0] <= length <= cfg.window[1]
        assert 1 <= start and start + length <= cfg.frames
        window = range(start, start + length)
        state = np.stack([info["cx"], info["cy"], info["theta"], info["scale"]], axis=1)
        for t in range(1, cfg.frames):
            if t in window:  # the object moves at every window frame...
                assert not np.allclose(state[t], state[t - 1]), (t, start, length)
                assert np.abs(clean[t].astype(int) - clean[t - 1]).max() > 30
            else:  # ...and nowhere else: without noise the frames are identical
                np.testing.assert_array_equal(state[t], state[t - 1])
                np.testing.assert_array_equal(clean[t], clean[t - 1])
        # with noise, frames outside the window differ from the clean ones by noise only
        diff = np.abs(noisy.astype(int) - clean.astype(int))
        assert diff.max() <= 6 * syn.DESIGN["noise_std"] + 1
        assert diff.mean() > 0.5


def test_object_stays_in_frame_and_single_frame_stats_match():
    """The object's centre stays inside the frame, and per-frame size/position stats
    do not give the class away (compare a Move class with a non-moving one)."""
    cfg = CFG
    stats = {}
    for cls in (0, 6, 8):  # MoveRight, Grow, ShakeHorizontal
        xs, ss = [], []
        for idx in range(150):
            _, info = _render(cls, idx=idx, cfg=cfg, noise=False, distractor=False)
            assert (info["cx"] >= 0).all() and (info["cx"] <= cfg.width).all()
            assert (info["cy"] >= 0).all() and (info["cy"] <= cfg.height).all()
            xs.append(info["cx"])
            ss.append(info["scale"])
        stats[cls] = (np.concatenate(xs), np.concatenate(ss))
    for a, b in ((0, 6), (0, 8), (6, 8)):
        assert abs(stats[a][0].mean() - stats[b][0].mean()) < 1.0  # pixels
        assert abs(np.log(stats[a][1]).mean() - np.log(stats[b][1]).mean()) < 0.1


def test_generate_arrays_matches_render():
    cfg = SyntheticCfg(num_classes=3, train_per_class=2, test_per_class=1)
    x, y, infos = syn.generate_arrays(cfg, 7, "train")
    assert x.shape == (6, 16, 32, 32, 3) and y.tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(x[3], syn.render_video(1, syn.video_rng(7, "train", 1, 1), cfg))
    assert infos[3]["class_name"] == "MoveLeft"


def _read(path):
    import decord

    vr = decord.VideoReader(str(path))
    return len(vr), vr.get_batch(list(range(len(vr)))).asnumpy()


def test_generate_files_ucf_layout(tmp_path):
    cfg = SyntheticCfg(num_classes=3, train_per_class=3, test_per_class=2)
    raw = tmp_path / "raw"
    manifest = syn.generate_synthetic(cfg, 5, raw, progress=False)
    assert json.loads((raw / "manifest.json").read_text()) == manifest
    assert manifest["counts"] == {"train": 9, "test": 6, "total": 15}
    assert manifest["classes"] == ["MoveRight", "MoveLeft", "MoveUp"]

    splits = raw / "splits"
    assert (splits / "classInd.txt").read_text().splitlines() == ["1 MoveRight", "2 MoveLeft", "3 MoveUp"]
    for k in (1, 2, 3):
        train = [ln.split() for ln in (splits / f"trainlist0{k}.txt").read_text().splitlines()]
        test = (splits / f"testlist0{k}.txt").read_text().splitlines()
        assert len(train) == 9 and len(test) == 6
        for rel, label in train:
            cls_name = rel.split("/")[0]
            assert rel.startswith(f"{cls_name}/v_{cls_name}_g") and rel.endswith(".avi")
            assert syn.CLASS_NAMES[int(label) - 1] == cls_name
            assert 8 <= int(rel.split("_g")[1][:2]) <= 25  # train groups
            assert (raw / "videos" / rel).is_file()
        for rel in test:
            assert len(rel.split()) == 1
            assert 1 <= int(rel.split("_g")[1][:2]) <= 7  # test groups
            assert (raw / "videos" / rel).is_file()
    rows = list(csv.DictReader((raw / "windows.csv").open()))
    assert len(rows) == 15 and {r["split"] for r in rows} == {"train", "test"}

    # decoded frames equal the rendered ones exactly (FFV1 stores RGB losslessly)
    row = next(r for r in rows if r["split"] == "test")
    n, frames = _read(raw / "videos" / row["video"])
    expected = syn.render_video(int(row["label"]), syn.video_rng(5, "test", int(row["label"]), int(row["index"])), cfg)
    assert n == cfg.frames
    np.testing.assert_array_equal(frames, expected)


def test_h264_roundtrip_close(tmp_path):
    v = syn.render_video(2, syn.video_rng(0, "train", 2, 0), CFG)
    path = tmp_path / "v.avi"
    syn.write_video(path, v, "h264")
    n, frames = _read(path)
    assert n == CFG.frames
    # lossy: 4:2:0 chroma subsampling blurs colour edges of a 32x32 video; the mean
    # error stays a few grey levels (documented tolerance: mean < 8)
    assert np.abs(frames.astype(int) - v).mean() < 8


def test_parallel_generation_identical(tmp_path):
    cfg = SyntheticCfg(num_classes=2, train_per_class=2, test_per_class=1)
    syn.generate_synthetic(cfg, 3, tmp_path / "a", progress=False)
    syn.generate_synthetic(cfg, 3, tmp_path / "b", progress=False, workers=2)
    for rel in (tmp_path / "a" / "splits" / "trainlist01.txt").read_text().split()[::2]:
        np.testing.assert_array_equal(
            _read(tmp_path / "a" / "videos" / rel)[1], _read(tmp_path / "b" / "videos" / rel)[1]
        )
    assert (tmp_path / "a" / "windows.csv").read_text() == (tmp_path / "b" / "windows.csv").read_text()


def test_splits_parse_with_the_pipeline_reader(tmp_path):
    from sva.data.splits import read_classes, read_split

    cfg = SyntheticCfg(num_classes=4, train_per_class=2, test_per_class=1)
    syn.generate_synthetic(cfg, 1, tmp_path, progress=False)
    assert read_classes("synthetic", tmp_path) == syn.class_names(4)
    for k in (1, 2, 3):
        entries = read_split("synthetic", tmp_path, k)
        assert sum(e.split == "train" for e in entries) == 8 and sum(e.split == "test" for e in entries) == 4
        assert all(syn.CLASS_NAMES[e.label] == e.class_name for e in entries)
