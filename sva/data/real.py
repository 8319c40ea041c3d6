"""Real dataset adapters: UCF-101 and HMDB-51 into the raw layout.

:func:`prepare_real_dataset` downloads the videos archive and the splits archive into
``cache_dir`` (resumable, checksum-verified), extracts them safely and builds::

    raw_dir/videos/<Class>/<video files>      (class folders found wherever they sit)
    raw_dir/splits/*.txt                      (split files found wherever they sit)
    raw_dir/manifest.json                     (written last: the "done" marker)

Published checksums are in :data:`KNOWN_CHECKSUMS` (see ``docs/datasets.md``). A
SHA-256 in the config wins; without one, a known SHA-256 for the URL is enforced;
a known MD5 (third-party, never enforced) is compared and a mismatch is logged and
recorded in the manifest.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sva.utils.atomic import atomic_path, write_json
from sva.data.settings import DownloadCfg
from sva.data.archives import ArchiveError, extract, extract_nested
from sva.data.download import Downloaded, fetch, md5_file
from sva.data.splits import read_split

log = logging.getLogger(__name__)

REAL_KINDS = ("ucf101", "hmdb51")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v", ".ogv", ".flv", ".wmv")
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1

UCF101_VIDEOS_URL = "https://www.crcv.ucf.edu/data/UCF101/UCF101.rar"
UCF101_SPLITS_URL = "https://www.crcv.ucf.edu/data/UCF101/UCF101TrainTestSplits-RecognitionTask.zip"
HMDB51_VIDEOS_URL = "http://serre-lab.clps.brown.edu/wp-content/uploads/2013/10/hmdb51_org.rar"
HMDB51_SPLITS_URL = "http://serre-lab.clps.brown.edu/wp-content/uploads/2013/10/test_train_splits.rar"


@dataclass(frozen=True)
class KnownChecksum:
    """A published checksum of a download, with where it was published."""

    sha256: str | None
    size: int | None
    md5: str | None
    source: str


_TFDS_UCF = (
    "tensorflow/datasets, tensorflow_datasets/url_checksums/ucf101.txt "
    "(commit 24211da0508a86f0a9efd82c69bab9d25cda0a20)"
)
_TORCHVISION_HMDB = "pytorch/vision, torchvision/datasets/hmdb51.py (HMDB51.splits['md5'])"
_BRAVE_HMDB = "google-deepmind/brave, brave/download_hmdb.py (MD5_OF_VIDEOS_FILE, MD5_OF_SPLITS_FILE)"

#: Checksums found in public sources, keyed by URL (the scheme is ignored on lookup).
#: Nothing else could be established: no public SHA-256 or size exists for
#: UCF101.rar, hmdb51_org.rar or test_train_splits.rar (see docs/datasets.md).
KNOWN_CHECKSUMS: dict[str, KnownChecksum] = {
    UCF101_VIDEOS_URL: KnownChecksum(None, None, None, "none found"),
    UCF101_SPLITS_URL: KnownChecksum(
        "5c0d1a53b8ed364a2ac830a73f405e51bece7d98ce1254fd19ed4a36b224bd27", 113943, None, _TFDS_UCF
    ),
    HMDB51_VIDEOS_URL: KnownChecksum(None, None, "517d6f1f19f215c45cdd4d25356be1fb", _BRAVE_HMDB),
    HMDB51_SPLITS_URL: KnownChecksum(
        None, None, "15e67781e70dcfbdce2d7dbb9b3344b5", f"{_TORCHVISION_HMDB}; {_BRAVE_HMDB}"
    ),
}

#: The official download locations, with the published SHA-256 where one exists.
DEFAULT_DOWNLOADS: dict[str, DownloadCfg] = {
    "ucf101": DownloadCfg(
        videos_url=UCF101_VIDEOS_URL,
        splits_url=UCF101_SPLITS_URL,
        splits_sha256=KNOWN_CHECKSUMS[UCF101_SPLITS_URL].sha256,
    ),
    "hmdb51": DownloadCfg(videos_url=HMDB51_VIDEOS_URL, splits_url=HMDB51_SPLITS_URL),
}


class DatasetLayoutError(RuntimeError):
    """The downloaded archives do not contain what the dataset should contain."""


def known_checksum(url: str) -> KnownChecksum | None:
    """The published checksum of ``url`` (http and https treated alike), if any."""
    key = _scheme_free(url)
    for known_url, value in KNOWN_CHECKSUMS.items():
        if _scheme_free(known_url) == key:
            return value
    return None


def _scheme_free(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.netloc.lower()}{parts.path}"


# --------------------------------------------------------------------------- steps


def _archive_name(url: str) -> str:
    name = Path(unquote(urlsplit(url).path)).name
    if not name or name in (".", ".."):
        raise ValueError(f"cannot derive a file name from the URL {url!r}")
    return name


def _download(
    url: str, sha256: str | None, cache_dir: Path, *, use_known: bool, progress: bool, retries: int
) -> tuple[Downloaded, dict]:
    """Fetch one archive into ``cache_dir``; return it and its manifest record."""
    known = known_checksum(url) if use_known else None
    expected = sha256 or (known.sha256 if known else None)
    result = fetch(url, cache_dir / _archive_name(url), expected, progress=progress, retries=retries)
    record = {
        "url": url,
        "file": result.path.name,
        "size": result.size,
        "sha256": result.sha256,
        "sha256_verified": result.verified,
    }
    if known and known.size is not None and known.size != result.size:
        log.warning(
            "%s: size %d differs from the published %d (%s)",
            result.path,
            result.size,
            known.size,
            known.source,
        )
    if known and known.md5 and not result.verified:
        actual = md5_file(result.path)
        record.update(
            md5=actual, md5_expected=known.md5, md5_match=actual == known.md5, md5_source=known.source
        )
        if actual != known.md5:
            log.warning(
                "%s: md5 %s differs from the published %s (%s); the archive may have "
                "been re-packed or corrupted",
                result.path,
                actual,
                known.md5,
                known.source,
            )
        else:
            log.info("%s: md5 matches the published %s (%s)", result.path, known.md5, known.source)
    return result, record


def _skip(path: Path, root: Path) -> bool:
    """macOS debris (``__MACOSX/``, ``._x``) and hidden entries are never data."""
    rel = path.relative_to(root).parts
    return any(p == "__MACOSX" or p.startswith(".") for p in rel)


def find_class_dirs(root: Path) -> dict[str, Path]:
    """Folders directly holding video files, by name, wherever they sit below ``root``."""
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d != "__MACOSX" and not d.startswith("."))
        if here == root:
            continue
        if not any(f.lower().endswith(VIDEO_EXTENSIONS) and not f.startswith(".") for f in filenames):
            continue
        if here.name in found:
            raise DatasetLayoutError(
                f"class folder name {here.name!r} appears twice: {found[here.name]} and {here}"
            )
        for other in found.values():
            if other in here.parents:
                raise DatasetLayoutError(f"class folder {here} is inside another class folder {other}")
        found[here.name] = here
    if not found:
        raise DatasetLayoutError(f"no folder with video files ({', '.join(VIDEO_EXTENSIONS)}) under {root}")
    return found


def _install_videos(kind: str, archive: Path, raw_dir: Path) -> dict[str, int]:
    """Extract the videos archive into ``raw_dir/videos/<Class>/``; return counts."""
    work = raw_dir / ".videos-extract"
    try:
        (extract_nested if kind == "hmdb51" else extract)(archive, work)
        classes = find_class_dirs(work)
        with atomic_path(raw_dir / "videos", is_dir=True) as tmp:
            for name, folder in sorted(classes.items()):
                os.replace(folder, tmp / name)
            counts = {
                name: sum(1 for f in (tmp / name).iterdir() if f.name.lower().endswith(VIDEO_EXTENSIONS))
                for name in sorted(classes)
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("%s: %d classes, %d videos", raw_dir / "videos", len(counts), sum(counts.values()))
    return counts


def _check_split_files(kind: str, names: set[str], archive: Path) -> None:
    if kind == "ucf101":
        needed = {"classInd.txt", "trainlist01.txt", "testlist01.txt"}
        if not needed <= names:
            raise DatasetLayoutError(f"{archive}: missing split files {sorted(needed - names)}")
    elif not any(n.endswith("_test_split1.txt") for n in names):
        raise DatasetLayoutError(f"{archive}: no '<class>_test_split1.txt' split files")


def _install_splits(kind: str, archive: Path, raw_dir: Path) -> list[str]:
    """Extract the splits archive; gather its ``*.txt`` files into ``raw_dir/splits/``."""
    work = raw_dir / ".splits-extract"
    try:
        extract(archive, work)
        texts: dict[str, Path] = {}
        for path in sorted(work.rglob("*.txt")):
            if not path.is_file() or _skip(path, work):
                continue
            if path.name in texts:
                raise DatasetLayoutError(
                    f"{archive}: two split files named {path.name!r}: " f"{texts[path.name]} and {path}"
                )
            texts[path.name] = path
        _check_split_files(kind, set(texts), archive)
        with atomic_path(raw_dir / "splits", is_dir=True) as tmp:
            for name, path in texts.items():
                os.replace(path, tmp / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return sorted(texts)


def _split_present(kind: str, splits_dir: Path, k: int) -> bool:
    if kind == "ucf101":
        return (splits_dir / f"trainlist0{k}.txt").is_file()
    return any(splits_dir.glob(f"*_test_split{k}.txt"))


def _split_summary(kind: str, raw_dir: Path) -> dict[str, dict[str, int]]:
    """Read every split present (k = 1..3) to prove the layout is consistent."""
    summary: dict[str, dict[str, int]] = {}
    for k in (1, 2, 3):
        if k > 1 and not _split_present(kind, raw_dir / "splits", k):
            continue  # fewer than three splits published: fine
        entries = read_split(kind, raw_dir, k)
        summary[str(k)] = {s: sum(e.split == s for e in entries) for s in ("train", "test")}
    return summary


def _existing_manifest(path: Path, kind: str, cfg: DownloadCfg) -> bool:
    """True when ``path`` records a finished preparation of the same kind and URLs."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    archives = old.get("archives", {})
    for role, url, sha256 in (
        ("videos", cfg.videos_url, cfg.videos_sha256),
        ("splits", cfg.splits_url, cfg.splits_sha256),
    ):
        record = archives.get(role, {})
        if record.get("url") != url or (sha256 and record.get("sha256") != sha256.strip().lower()):
            return False
    return old.get("kind") == kind and (path.parent / "videos").is_dir() and (path.parent / "splits").is_dir()


# ----------------------------------------------------------------------------- main


def prepare_real_dataset(
    kind: str,
    download_cfg: DownloadCfg,
    raw_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    progress: bool = True,
    retries: int = 3,
    use_known_checksums: bool = True,
) -> Path:
    """Download, verify and extract UCF-101 or HMDB-51 into ``raw_dir``; return it.

    Idempotent: a ``raw_dir/manifest.json`` for the same kind and URLs means the work
    is done and nothing happens; otherwise the manifest is removed first and written
    again (atomically) as the very last step. Downloaded archives stay in
    ``cache_dir`` (a complete, matching archive is never downloaded twice).
    ``use_known_checksums=False`` ignores :data:`KNOWN_CHECKSUMS`.
    """
    if kind not in REAL_KINDS:
        raise ValueError(f"unknown real dataset kind {kind!r}; expected one of {', '.join(REAL_KINDS)}")
    raw_dir, cache_dir = Path(raw_dir), Path(cache_dir)
    manifest_path = raw_dir / MANIFEST
    if manifest_path.is_file() and _existing_manifest(manifest_path, kind, download_cfg):
        log.info("%s already prepared (%s present)", raw_dir, manifest_path)
        return raw_dir
    manifest_path.unlink(missing_ok=True)
    raw_dir.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    if _archive_name(download_cfg.videos_url) == _archive_name(download_cfg.splits_url):
        raise ValueError("videos_url and splits_url must name different files")

    common = dict(use_known=use_known_checksums, progress=progress, retries=retries)
    videos, videos_record = _download(
        download_cfg.videos_url, download_cfg.videos_sha256, cache_dir, **common
    )
    splits, splits_record = _download(
        download_cfg.splits_url, download_cfg.splits_sha256, cache_dir, **common
    )
    try:
        counts = _install_videos(kind, videos.path, raw_dir)
        split_files = _install_splits(kind, splits.path, raw_dir)
    except (ArchiveError, DatasetLayoutError) as err:
        raise DatasetLayoutError(f"{kind}: cannot build {raw_dir}: {err}") from err
    summary = _split_summary(kind, raw_dir)

    write_json(
        manifest_path,
        {
            "manifest_version": MANIFEST_VERSION,
            "kind": kind,
            "num_classes": len(counts),
            "num_videos": sum(counts.values()),
            "videos_per_class": counts,
            "split_files": split_files,
            "splits": summary,
            "archives": {"videos": videos_record, "splits": splits_record},
        },
    )
    log.info(
        "%s prepared: %d classes, %d videos; manifest %s",
        kind,
        len(counts),
        sum(counts.values()),
        manifest_path,
    )
    return raw_dir
