"""Snippet extraction: sampling formula, decoding real tiny videos, the on-disk folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sva.data.settings import SnippetCfg
from sva.data import snippets as sn
from sva.data.snippets import (
    BAD_COLUMNS,
    INDEX_COLUMNS,
    BadVideoError,
    build_snippets,
    load_snippets,
    read_snippet,
    sample_indices,
)
from videos import (
    Entry,
    column_frames,
    frame_numbers,
    write_garbage,
    write_numbered,
    write_truncated,
    write_video,
)

# ----------------------------------------------------------------- sample_indices


def test_sample_indices_known_values():
    assert sample_indices(16, 16).tolist() == list(range(16))
    assert sample_indices(32, 16).tolist() == list(range(1, 32, 2))
    assert sample_indices(40, 16).tolist() == [1, 3, 6, 8, 11, 13, 16, 18, 21, 23, 26, 28, 31, 33, 36, 38]
    assert sample_indices(5, 16).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert sample_indices(1, 16).tolist() == [0] * 16
    assert sample_indices(100, 1).tolist() == [50]


@pytest.mark.parametrize("num", [1, 7, 16])
def test_sample_indices_properties(num):
    for n in range(1, 120):
        idx = sample_indices(n, num)
        assert idx.dtype == np.int64 and idx.shape == (num,)
        assert idx.min() >= 0 and idx.max() <= n - 1
        steps = np.diff(idx)
        assert (steps >= 0).all()
        if n >= num:
            assert (steps > 0).all(), (n, num)  # no repeats
        else:
            counts = np.bincount(idx, minlength=n)  # every frame used, evenly repeated
            assert set(counts.tolist()) <= {num // n, -(-num // n)}
        # exact formula: centre of segment i, floored
        expected = [int(np.floor((i + 0.5) * n / num)) for i in range(num)]
        assert idx.tolist() == expected


@pytest.mark.parametrize("n", [0, -3])
def test_sample_indices_zero_frames_is_an_error(n):
    with pytest.raises(ValueError, match="frames"):
        sample_indices(n, 16)


# ----------------------------------------------------------------- read_snippet


@pytest.mark.parametrize("ext", [".avi", ".mkv", ".mp4"])
@pytest.mark.parametrize("n", [1, 5, 16, 37])
def test_read_snippet_samples_the_expected_frames(tmp_path, ext, n):
    path = write_numbered(tmp_path / f"v{n}{ext}", n)
    clip, info = read_snippet(path, 16, return_info=True)
    assert clip.dtype == np.uint8 and clip.shape == (16, 32, 32, 3)
    assert info == {"frame_count": n, "reader": "decord"}
    assert frame_numbers(clip).tolist() == sample_indices(n, 16).tolist()


def test_read_snippet_lossless_content_is_exact(tmp_path):
    frames = column_frames(20, 24, 40)
    path = write_video(tmp_path / "c.mkv", frames, "ffv1-mkv")
    clip = read_snippet(path, 16)
    np.testing.assert_array_equal(clip, frames[sample_indices(20, 16)])


def test_read_snippet_resize_then_centre_crop(tmp_path):
    path = write_video(tmp_path / "big.avi", column_frames(10, 48, 64), "ffv1-avi")
    assert read_snippet(path, 16, resize=(24, 34)).shape == (16, 24, 34, 3)
    assert read_snippet(path, 16, resize=(24, 34), crop=(16, 16)).shape == (16, 16, 16, 3)
    assert read_snippet(path, 8, resize=(128, 171), crop=(112, 112)).shape == (8, 112, 112, 3)
    # crop only: exact window, top = (48-16)//2 = 16, left = (64-20)//2 = 22
    clip = read_snippet(path, 16, crop=(16, 20))
    full = read_snippet(path, 16)
    np.testing.assert_array_equal(clip, full[:, 16:32, 22:42])
    assert clip[0, 0, 0, 0] == 4 * 22 and clip[0, 0, 0, 1] == 4 * 16


def test_read_snippet_crop_larger_than_video_names_file(tmp_path):
    path = write_numbered(tmp_path / "small.mkv", 4)
    with pytest.raises(BadVideoError, match="small.mkv.*crop"):
        read_snippet(path, 16, crop=(64, 64))


@pytest.mark.parametrize(
    "make",
    [
        lambda d: write_garbage(d / "garbage.mp4"),
        lambda d: write_garbage(d / "garbage.avi", nbytes=20000, seed=1),
        lambda d: write_truncated(write_numbered(d / "src.mkv", 8), d / "empty.mkv", 0),
        lambda d: write_truncated(write_numbered(d / "src.mp4", 30), d / "cut.mp4", 1200),
        lambda d: write_truncated(write_numbered(d / "src.avi", 30), d / "cut.avi", 6000),
        lambda d: d / "missing.avi",
    ],
    ids=["random-mp4", "random-avi", "empty", "truncated-mp4", "truncated-avi", "missing"],
)
def test_unreadable_video_raises_naming_the_file(tmp_path, make):
    path = Path(make(tmp_path))
    with pytest.raises(BadVideoError) as err:
        read_snippet(path, 16)
    assert str(path) in str(err.value)


def test_pyav_fallback_matches_decord(tmp_path, monkeypatch):
    paths = [write_numbered(tmp_path / "a.mp4", 23), write_video(tmp_path / "b.avi", column_frames(7, 30, 44), "ffv1-avi")]
    expected = [read_snippet(p, 16, resize=(20, 26), crop=(16, 16)) for p in paths]

    def broken(*args, **kwargs):
        raise RuntimeError("cannot seek")

    monkeypatch.setattr(sn, "_read_decord", broken)
    for p, exp in zip(paths, expected):
        clip, info = read_snippet(p, 16, resize=(20, 26), crop=(16, 16), return_info=True)
        assert info["reader"] == "pyav"
        np.testing.assert_array_equal(clip, exp)
    clip, info = read_snippet(paths[0], 16, return_info=True)
    assert info["frame_count"] == 23
    assert frame_numbers(clip).tolist() == sample_indices(23, 16).tolist()
    with pytest.raises(BadVideoError, match="decord: RuntimeError: cannot seek.*pyav"):
        read_snippet(write_garbage(tmp_path / "g.mkv"), 16)


# ----------------------------------------------------------------- build_snippets


def _dataset(root: Path) -> list[Entry]:
    specs = [  # (relpath, n_frames, class, split)
        ("walk/v0.avi", 16, 0, "train"),
        ("walk/v1.mkv", 5, 0, "test"),
        ("run/v2.mp4", 40, 1, "train"),
        ("run/v3.mkv", 23, 1, "train"),
        ("jump/v4.avi", 9, 2, "test"),
    ]
    entries = []
    for rel, n, label, split in specs:
        write_numbered(root / rel, n)
        entries.append(Entry(Path(rel).stem, rel, rel.split("/")[0], label, split))
    return entries


N_FRAMES = {"v0": 16, "v1": 5, "v2": 40, "v3": 23, "v4": 9}


def test_build_snippets_layout_and_content(tmp_path):
    videos = tmp_path / "videos"
    entries = _dataset(videos)
    out = tmp_path / "snippets"
    meta = build_snippets(entries, videos, out, SnippetCfg(), progress=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(sn.FILES)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp leftovers

    arr = np.load(out / "frames.npy", mmap_mode="r")
    assert isinstance(arr, np.memmap) and arr.dtype == np.uint8 and arr.shape == (5, 16, 32, 32, 3)
    index = pd.read_csv(out / "index.csv")
    assert list(index.columns) == INDEX_COLUMNS
    assert index["idx"].tolist() == list(range(5))
    assert index["video_id"].tolist() == ["v0", "v1", "v2", "v3", "v4"]
    assert index["frame_count"].tolist() == [16, 5, 40, 23, 9]
    assert index["path"].tolist() == [e.relpath for e in entries]
    bad = pd.read_csv(out / "bad_videos.csv")
    assert list(bad.columns) == BAD_COLUMNS and len(bad) == 0
    for i, vid in enumerate(index["video_id"]):
        assert frame_numbers(arr[i]).tolist() == sample_indices(N_FRAMES[vid], 16).tolist()

    on_disk = json.loads((out / "meta.json").read_text())
    assert on_disk == meta
    assert meta["shape"] == [5, 16, 32, 32, 3]
    assert meta["counts"]["written"] == 5 and meta["counts"]["bad"] == 0
    assert meta["class_names"] == ["walk", "run", "jump"]
    assert meta["cfg"]["num_frames"] == 16


def test_build_snippets_resize_crop_and_workers_agree(tmp_path):
    videos = tmp_path / "videos"
    entries = _dataset(videos)
    write_video(videos / "run/v5.avi", column_frames(12, 48, 64), "ffv1-avi")  # a different size
    entries.append(Entry("v5", "run/v5.avi", "run", 1, "test"))
    cfg = SnippetCfg(resize=(24, 30), crop=(16, 16))
    build_snippets(entries, videos, tmp_path / "a", cfg, progress=False, workers=1)
    build_snippets(entries, videos, tmp_path / "b", cfg, progress=False, workers=2)
    a, b = load_snippets(tmp_path / "a"), load_snippets(tmp_path / "b")
    assert a.frames.shape == (6, 16, 16, 16, 3)
    np.testing.assert_array_equal(np.asarray(a.frames), np.asarray(b.frames))
    pd.testing.assert_frame_equal(a.index, b.index)


def test_different_sizes_without_resize_is_an_error_naming_the_file(tmp_path):
    videos = tmp_path / "videos"
    entries = _dataset(videos)
    write_numbered(videos / "run/odd.mkv", 16, height=24, width=40)
    entries.insert(2, Entry("odd", "run/odd.mkv", "run", 1, "train"))
    out = tmp_path / "snippets"
    with pytest.raises(ValueError, match=r"odd\.mkv.*24x40.*32x32.*resize"):
        build_snippets(entries, videos, out, SnippetCfg(), progress=False)
    assert not out.exists()
    assert list(tmp_path.glob(".snippets*")) == []
    # a centre crop makes them agree
    build_snippets(entries, videos, out, SnippetCfg(crop=(24, 24)), progress=False)
    assert load_snippets(out).frames.shape == (6, 16, 24, 24, 3)


def _with_bad(videos: Path) -> list[Entry]:
    entries = _dataset(videos)
    write_garbage(videos / "run/corrupt.mp4")
    write_truncated(videos / "walk/v0.avi", videos / "walk/cut.avi", 5000)
    entries.insert(1, Entry("corrupt", "run/corrupt.mp4", "run", 1, "train"))
    entries.append(Entry("cut", "walk/cut.avi", "walk", 0, "test"))
    return entries


def test_bad_video_error_mode_names_the_file_and_writes_nothing(tmp_path):
    videos = tmp_path / "videos"
    entries = _with_bad(videos)
    out = tmp_path / "snippets"
    with pytest.raises(BadVideoError, match=r"corrupt\.mp4"):
        build_snippets(entries, videos, out, SnippetCfg(on_bad_video="error"), progress=False)
    assert not out.exists() and list(tmp_path.glob(".snippets*")) == []


def test_bad_video_skip_mode_lists_and_leaves_out(tmp_path, caplog):
    videos = tmp_path / "videos"
    entries = _with_bad(videos)
    out = tmp_path / "snippets"
    with caplog.at_level(logging.WARNING, logger="sva.data.snippets"):
        meta = build_snippets(entries, videos, out, SnippetCfg(on_bad_video="skip"), progress=False)
    assert any("2 of 7 videos" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    bad = pd.read_csv(out / "bad_videos.csv")
    assert bad["video_id"].tolist() == ["corrupt", "cut"]
    assert bad["path"].tolist() == ["run/corrupt.mp4", "walk/cut.avi"]
    assert bad["error"].str.contains("corrupt.mp4").iloc[0] and bad["error"].str.contains("cut.avi").iloc[1]
    store = load_snippets(out)
    assert len(store) == 5 and store.frames.shape == (5, 16, 32, 32, 3)
    assert store.index["video_id"].tolist() == ["v0", "v1", "v2", "v3", "v4"]
    assert store.index["idx"].tolist() == list(range(5))
    for i, vid in enumerate(store.index["video_id"]):  # the shrunk file kept the right rows
        assert frame_numbers(store.video(i)).tolist() == sample_indices(N_FRAMES[vid], 16).tolist()
    assert meta["counts"] == {**meta["counts"], "entries": 7, "written": 5, "bad": 2}


def test_all_videos_bad_is_an_error(tmp_path):
    write_garbage(tmp_path / "v/a.mp4")
    with pytest.raises(BadVideoError, match="none of the 1 videos"):
        build_snippets([Entry("a", "a.mp4", "x", 0, "train")], tmp_path / "v", tmp_path / "o",
                       SnippetCfg(on_bad_video="skip"), progress=False)


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_interrupted_build_leaves_no_output_and_keeps_the_old_one(tmp_path, monkeypatch, exc):
    videos = tmp_path / "videos"
    entries = _dataset(videos)
    out = tmp_path / "snippets"
    build_snippets(entries[:2], videos, out, SnippetCfg(), progress=False)
    before = (out / "index.csv").read_text()

    real_memmap = np.lib.format.open_memmap
    created = []

    def spy_memmap(*args, **kwargs):
        created.append(args[0])
        return real_memmap(*args, **kwargs)

    def boom(self, *args, **kwargs):  # fails after every frame was written
        raise exc("disk full")

    monkeypatch.setattr(np.lib.format, "open_memmap", spy_memmap)
    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(exc, match="disk full"):
        build_snippets(entries, videos, out, SnippetCfg(), progress=False)
    assert len(created) == 1 and not Path(created[0]).exists()  # frames.npy was built, then removed
    assert (out / "index.csv").read_text() == before  # old output untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snippets", "videos"]  # no temp dir

    # and with no previous output, nothing appears
    with pytest.raises(exc):
        build_snippets(entries, videos, tmp_path / "fresh", SnippetCfg(), progress=False)
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupt_while_reading_leaves_nothing(tmp_path, monkeypatch, workers):
    videos = tmp_path / "videos"
    entries = _dataset(videos)
    real = sn.read_snippet

    def interrupted(path, *args, **kwargs):
        if Path(path).stem == "v3":
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(sn, "read_snippet", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_snippets(entries, videos, tmp_path / "s", SnippetCfg(on_bad_video="skip"), progress=False, workers=workers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["videos"]


def test_duplicate_ids_and_inconsistent_labels_rejected(tmp_path):
    videos = tmp_path / "videos"
    entries = _dataset(videos)
    with pytest.raises(ValueError, match="duplicate video_id 'v0'"):
        build_snippets(entries + [entries[0]], videos, tmp_path / "o", SnippetCfg(), progress=False)
    wrong = Entry("x", entries[0].relpath, "other", 0, "train")
    with pytest.raises(ValueError, match="label 0 maps to both"):
        build_snippets(entries + [wrong], videos, tmp_path / "o", SnippetCfg(), progress=False)


# ----------------------------------------------------------------- SnippetStore


def test_store_api(tmp_path):
    videos = tmp_path / "videos"
    build_snippets(_dataset(videos), videos, tmp_path / "s", SnippetCfg(), progress=False)
    store = load_snippets(tmp_path / "s")
    assert len(store) == 5 and store.num_frames == 16 and store.frame_size == (32, 32)
    assert isinstance(store.frames, np.memmap) and not store.frames.flags.writeable
    v = store.video(2)
    assert v.dtype == np.uint8 and v.shape == (16, 32, 32, 3) and v.flags.writeable
    x = store.as_float(2)
    assert x.dtype == torch.float32 and tuple(x.shape) == (16, 3, 32, 32)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    np.testing.assert_allclose(x.permute(0, 2, 3, 1).numpy() * 255.0, v, atol=1e-3)
    assert store.split_indices("train").tolist() == [0, 2, 3]
    assert store.split_indices("test").tolist() == [1, 4]
    with pytest.raises(ValueError, match="unknown split 'val'"):
        store.split_indices("val")
    assert store.labels.tolist() == [0, 0, 1, 1, 2] and store.labels.dtype == np.int64
    assert store.num_classes == 3 and store.class_names == ["walk", "run", "jump"]


def test_load_snippets_missing_files_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope")):
        load_snippets(tmp_path / "nope")
    videos = tmp_path / "videos"
    build_snippets(_dataset(videos), videos, tmp_path / "s", SnippetCfg(), progress=False)
    (tmp_path / "s" / "index.csv").unlink()
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path / 's'}.*index\.csv"):
        load_snippets(tmp_path / "s")
