"""End to end: tiny fake UCF-101 / HMDB-51 archives served from 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rarfixture import HOST_MSDOS, rar_bytes, write_rar
from sva.data.settings import DownloadCfg
from sva.data import real
from sva.data.download import ChecksumError
from sva.data.real import (
    DEFAULT_DOWNLOADS,
    KNOWN_CHECKSUMS,
    DatasetLayoutError,
    KnownChecksum,
    known_checksum,
    prepare_real_dataset,
)
from sva.data.archives import UnsafeArchiveError
from sva.data.splits import SplitError, read_split

pytestmark = pytest.mark.skipif(
    shutil.which("unar") is None or shutil.which("lsar") is None, reason="unar/lsar not installed"
)

UCF = ["ApplyEyeMakeup", "Archery", "YoYo"]
HMDB = ["brush_hair", "cartwheel"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path):
        self.paths: list[str] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                server.paths.append(self.path)

        super().__init__(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[_Server, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    srv = _Server(root)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield srv, root
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_ucf_archives(root: Path) -> tuple[Path, Path]:
    """UCF101.rar (``UCF-101/<Class>/*.avi``, WinRAR-style) and the splits zip."""
    videos: dict[str, bytes] = {}
    for c in UCF:
        for g in (1, 2, 3):
            videos[f"UCF-101/{c}/v_{c}_g{g:02d}_c01.avi"] = f"RIFF {c} {g}".encode()
    rar = write_rar(root / "UCF101.rar", videos, host_os=HOST_MSDOS)
    zpath = root / "UCF101TrainTestSplits-RecognitionTask.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("ucfTrainTestlist/classInd.txt", "".join(f"{i} {c}\r\n" for i, c in enumerate(UCF, 1)))
        for k in (1, 2, 3):
            train = [
                f"{c}/v_{c}_g{g:02d}_c01.avi {i}" for i, c in enumerate(UCF, 1) for g in (1, 2, 3) if g != k
            ]
            test = [f"{c}/v_{c}_g{k:02d}_c01.avi" for c in UCF]
            zf.writestr(f"ucfTrainTestlist/trainlist0{k}.txt", "\r\n".join(train) + "\r\n")
            zf.writestr(f"ucfTrainTestlist/testlist0{k}.txt", "\r\n".join(test) + "\r\n")
        zf.writestr("__MACOSX/ucfTrainTestlist/._classInd.txt", b"\x00\x05\x16\x07junk")
    return rar, zpath


def make_hmdb_archives(root: Path) -> tuple[Path, Path]:
    """hmdb51_org.rar (one inner rar per class) and test_train_splits.rar (split 1, 2)."""
    inner = {
        f"{c}.rar": rar_bytes({f"{c}/{c}_{n}_u_nm_np1_fr_goo_0.avi": f"{c}{n}".encode() for n in range(3)})
        for c in HMDB
    }
    outer = write_rar(root / "hmdb51_org.rar", inner)
    splits = {}
    for c in HMDB:
        for k in (1, 2):
            tags = {0: "1", 1: "2", 2: "0"} if k == 1 else {0: "2", 1: "1", 2: "1"}
            splits[f"testTrainMulti_7030_splits/{c}_test_split{k}.txt"] = "".join(
                f"{c}_{n}_u_nm_np1_fr_goo_0.avi {tags[n]} \n" for n in range(3)
            ).encode()
    return outer, write_rar(root / "test_train_splits.rar", splits)


def test_prepare_ucf101(served, tmp_path: Path) -> None:
    srv, root = served
    rar, zpath = make_ucf_archives(root)
    cfg = DownloadCfg(videos_url=srv.url(rar.name), videos_sha256=_sha(rar), splits_url=srv.url(zpath.name))
    raw = prepare_real_dataset("ucf101", cfg, tmp_path / "raw", tmp_path / "cache", progress=False)

    assert sorted(p.name for p in (raw / "videos").iterdir()) == UCF
    assert sorted(p.name for p in (raw / "splits").iterdir()) == sorted(
        ["classInd.txt"] + [f"{s}list0{k}.txt" for s in ("train", "test") for k in (1, 2, 3)]
    )
    assert sorted(p.name for p in raw.iterdir()) == ["manifest.json", "splits", "videos"]
    for k in (1, 2, 3):
        entries = read_split("ucf101", raw, k)
        assert len(entries) == 9
        test = [e for e in entries if e.split == "test"]
        assert [(e.relpath, e.label) for e in test] == [
            (f"{c}/v_{c}_g{k:02d}_c01.avi", i) for i, c in enumerate(UCF)
        ]

    manifest = json.loads((raw / "manifest.json").read_text())
    assert manifest["kind"] == "ucf101"
    assert manifest["videos_per_class"] == {c: 3 for c in UCF}
    assert manifest["num_videos"] == 9 and manifest["num_classes"] == 3
    assert manifest["archives"]["videos"]["sha256"] == _sha(rar)
    assert manifest["archives"]["videos"]["sha256_verified"] is True
    assert manifest["archives"]["splits"]["sha256"] == _sha(zpath)
    assert manifest["archives"]["splits"]["sha256_verified"] is False
    assert manifest["splits"]["1"] == {"train": 6, "test": 3}

    # Second run: the manifest says done; nothing is fetched or touched.
    requests, mtime = list(srv.paths), (raw / "manifest.json").stat().st_mtime_ns
    prepare_real_dataset("ucf101", cfg, raw, tmp_path / "cache", progress=False)
    assert srv.paths == requests and (raw / "manifest.json").stat().st_mtime_ns == mtime


def test_prepare_hmdb51(served, tmp_path: Path) -> None:
    srv, root = served
    outer, splits = make_hmdb_archives(root)
    cfg = DownloadCfg(
        videos_url=srv.url(outer.name), splits_url=srv.url(splits.name), splits_sha256=_sha(splits)
    )
    raw = prepare_real_dataset("hmdb51", cfg, tmp_path / "raw", tmp_path / "cache", progress=False)

    assert sorted(p.name for p in (raw / "videos").iterdir()) == HMDB
    assert not list((raw / "videos").rglob("*.rar"))
    e1 = read_split("hmdb51", raw, 1)
    assert [(e.video_id, e.label, e.split) for e in e1] == [
        (f"{c}_{n}_u_nm_np1_fr_goo_0", i, s)
        for i, c in enumerate(HMDB)
        for n, s in ((0, "train"), (1, "test"))
    ]
    e2 = read_split("hmdb51", raw, 2)
    assert sum(e.split == "train" for e in e2) == 4
    manifest = json.loads((raw / "manifest.json").read_text())
    assert manifest["videos_per_class"] == {c: 3 for c in HMDB}
    assert set(manifest["splits"]) == {"1", "2"}
    assert manifest["archives"]["splits"]["sha256_verified"] is True


def test_bad_checksum_leaves_no_manifest(served, tmp_path: Path) -> None:
    srv, root = served
    rar, zpath = make_ucf_archives(root)
    cfg = DownloadCfg(videos_url=srv.url(rar.name), videos_sha256="f" * 64, splits_url=srv.url(zpath.name))
    with pytest.raises(ChecksumError, match="UCF101.rar"):
        prepare_real_dataset("ucf101", cfg, tmp_path / "raw", tmp_path / "cache", progress=False)
    assert not (tmp_path / "raw" / "manifest.json").exists()
    assert not (tmp_path / "cache" / "UCF101.rar").exists()


def test_stale_manifest_is_removed_first(served, tmp_path: Path) -> None:
    srv, root = served
    rar, zpath = make_ucf_archives(root)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "manifest.json").write_text(json.dumps({"kind": "hmdb51"}))
    cfg = DownloadCfg(videos_url=srv.url(rar.name), videos_sha256="f" * 64, splits_url=srv.url(zpath.name))
    with pytest.raises(ChecksumError):
        prepare_real_dataset("ucf101", cfg, raw, tmp_path / "cache", progress=False)
    assert not (raw / "manifest.json").exists()


def test_known_checksums_are_enforced_and_md5_recorded(
    served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, root = served
    rar, zpath = make_ucf_archives(root)
    known = {
        srv.url(rar.name): KnownChecksum(None, None, "0" * 32, "test"),
        srv.url(zpath.name): KnownChecksum(_sha(zpath), zpath.stat().st_size, None, "test"),
    }
    monkeypatch.setattr(real, "KNOWN_CHECKSUMS", known)
    cfg = DownloadCfg(videos_url=srv.url(rar.name), splits_url=srv.url(zpath.name))
    raw = prepare_real_dataset("ucf101", cfg, tmp_path / "raw", tmp_path / "cache", progress=False)
    archives = json.loads((raw / "manifest.json").read_text())["archives"]
    assert archives["splits"]["sha256_verified"] is True
    assert archives["videos"]["md5_match"] is False and archives["videos"]["md5_expected"] == "0" * 32

    known[srv.url(zpath.name)] = KnownChecksum("e" * 64, None, None, "test")
    with pytest.raises(ChecksumError):
        prepare_real_dataset("ucf101", cfg, tmp_path / "raw2", tmp_path / "cache2", progress=False)
    prepare_real_dataset(
        "ucf101", cfg, tmp_path / "raw3", tmp_path / "cache3", progress=False, use_known_checksums=False
    )


def test_missing_listed_video_fails_before_manifest(served, tmp_path: Path) -> None:
    srv, root = served
    rar, zpath = make_ucf_archives(root)
    with zipfile.ZipFile(zpath) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["ucfTrainTestlist/testlist03.txt"] += b"YoYo/v_YoYo_g09_c01.avi\n"
    with zipfile.ZipFile(zpath, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    cfg = DownloadCfg(videos_url=srv.url(rar.name), splits_url=srv.url(zpath.name))
    with pytest.raises(SplitError, match=r"v_YoYo_g09_c01\.avi"):
        prepare_real_dataset("ucf101", cfg, tmp_path / "raw", tmp_path / "cache", progress=False)
    assert not (tmp_path / "raw" / "manifest.json").exists()


def test_unsafe_archive_is_refused(served, tmp_path: Path) -> None:
    srv, root = served
    rar = write_rar(root / "UCF101.rar", {"UCF-101/A/v.avi": b"x", "../../evil.avi": b"x"})
    _, zpath = make_ucf_archives(tmp_path / "other")
    shutil.copy(zpath, root / zpath.name)
    cfg = DownloadCfg(videos_url=srv.url(rar.name), splits_url=srv.url(zpath.name))
    with pytest.raises(UnsafeArchiveError, match="evil.avi"):
        prepare_real_dataset("ucf101", cfg, tmp_path / "raw", tmp_path / "cache", progress=False)
    assert not list(tmp_path.rglob("evil.avi")) and not (tmp_path / "raw" / "manifest.json").exists()


def test_unknown_kind_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synthetic"):
        prepare_real_dataset("synthetic", DEFAULT_DOWNLOADS["ucf101"], tmp_path, tmp_path, progress=False)


def test_published_checksums_are_well_formed() -> None:
    for url, value in KNOWN_CHECKSUMS.items():
        assert url.startswith("http") and value.source
        assert value.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", value.sha256)
        assert value.md5 is None or re.fullmatch(r"[0-9a-f]{32}", value.md5)
    assert known_checksum(real.UCF101_SPLITS_URL.replace("https:", "http:")).size == 113943
    assert known_checksum("https://example.org/x.rar") is None
    assert DEFAULT_DOWNLOADS["ucf101"].splits_sha256 == KNOWN_CHECKSUMS[real.UCF101_SPLITS_URL].sha256


def test_splits_archive_without_class_index(served, tmp_path: Path) -> None:
    srv, root = served
    rar, _ = make_ucf_archives(root)
    bad = root / "splits.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("lists/trainlist01.txt", "")
    cfg = DownloadCfg(videos_url=srv.url(rar.name), splits_url=srv.url(bad.name))
    with pytest.raises(DatasetLayoutError, match="classInd.txt"):
        prepare_real_dataset("ucf101", cfg, tmp_path / "raw", tmp_path / "cache", progress=False)
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["videos"]  # no debris, no manifest


def test_videos_archive_without_videos(served, tmp_path: Path) -> None:
    srv, root = served
    _, zpath = make_ucf_archives(root)
    empty = write_rar(root / "empty.rar", {"README.txt": b"nothing here"})
    cfg = DownloadCfg(videos_url=srv.url(empty.name), splits_url=srv.url(zpath.name))
    with pytest.raises(DatasetLayoutError, match="no folder with video files"):
        prepare_real_dataset("ucf101", cfg, tmp_path / "raw", tmp_path / "cache", progress=False)
    assert list((tmp_path / "raw").iterdir()) == []


def test_manifest_with_other_checksum_is_rebuilt(served, tmp_path: Path) -> None:
    srv, root = served
    rar, zpath = make_ucf_archives(root)
    cfg = DownloadCfg(videos_url=srv.url(rar.name), splits_url=srv.url(zpath.name))
    raw = prepare_real_dataset("ucf101", cfg, tmp_path / "raw", tmp_path / "cache", progress=False)
    pinned = DownloadCfg(videos_url=cfg.videos_url, videos_sha256="a" * 64, splits_url=cfg.splits_url)
    with pytest.raises(ChecksumError):  # not taken as done: the pinned hash differs
        prepare_real_dataset("ucf101", pinned, raw, tmp_path / "cache", progress=False)
    assert not (raw / "manifest.json").exists()
