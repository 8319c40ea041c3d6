"""Train/test split files of UCF-101 and HMDB-51 (and the synthetic set, UCF layout).

Raw layout shared by every dataset::

    raw_dir/videos/<Class>/<video file>
    raw_dir/splits/<split files>

UCF layout (UCF-101 and the synthetic set), ``k`` in 1..3:

- ``classInd.txt``: ``"1 ApplyEyeMakeup"`` lines, 1-based;
- ``trainlist0k.txt``: ``"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"`` (1-based label);
- ``testlist0k.txt``: ``"ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"`` (label from the
  folder name through ``classInd.txt``).

HMDB-51 layout: ``<class>_test_split<k>.txt`` per class, lines
``"<video file name> <0|1|2>"`` (1 = train, 2 = test, 0 = unused and left out);
labels are the sorted class folder names of ``videos/``.

Labels are 0-based. CRLF line ends, trailing blanks and blank lines are tolerated; a
malformed line, an unknown class or a listed video missing on disk is a
:class:`SplitError` naming the file (and the line).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

SPLIT_KINDS = ("synthetic", "ucf101", "hmdb51")
_HMDB_FILE_RE = re.compile(r"^(?P<cls>.+)_test_split(?P<k>\d+)\.txt$")
_MAX_MISSING_SHOWN = 5


class SplitError(ValueError):
    """A split file is missing or malformed, or lists a video that is not on disk."""


@dataclass(frozen=True)
class VideoEntry:
    """One video of one split.

    ``relpath`` is POSIX-style and relative to the videos folder
    (``"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"``); ``video_id`` is the file
    name without its extension; ``label`` is 0-based; ``split`` is "train" or "test".
    """

    video_id: str
    relpath: str
    class_name: str
    label: int
    split: str


def check_k(k: int) -> int:
    """The split index must be 1, 2 or 3."""
    if isinstance(k, bool) or not isinstance(k, int) or k not in (1, 2, 3):
        raise ValueError(f"split index k must be 1, 2 or 3, got {k!r}")
    return k


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, stripped text)`` of the non-blank lines; CRLF tolerated."""
    if not path.is_file():
        raise SplitError(f"{path}: split file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def _relpath(path: Path, number: int, value: str) -> PurePosixPath:
    rel = PurePosixPath(value.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or len(rel.parts) < 2:
        raise SplitError(f"{path}:{number}: expected '<Class>/<video file>', got {value!r}")
    return rel


def _entry(rel: PurePosixPath, class_name: str, label: int, split: str) -> VideoEntry:
    return VideoEntry(PurePosixPath(rel.name).stem, rel.as_posix(), class_name, label, split)


class _Collector:
    """Gathers entries, refusing duplicates and recording missing video files.

    A listed file that is missing under its exact name but present under a name that
    differs only in letter case is taken, with the on-disk name (TFDS reports a
    ``HandStandPushups`` / ``HandstandPushups`` mismatch between the UCF-101 lists and
    its mirror).
    """

    def __init__(self, videos_dir: Path):
        self.videos_dir = videos_dir
        self.entries: list[VideoEntry] = []
        self.seen: dict[str, str] = {}
        self.missing: list[str] = []
        self._folders: dict[Path, dict[str, list[str]]] = {}

    def _case_match(self, rel: PurePosixPath) -> PurePosixPath | None:
        folder = self.videos_dir.joinpath(*rel.parts[:-1])
        if folder not in self._folders:
            names: dict[str, list[str]] = {}
            if folder.is_dir():
                for child in folder.iterdir():
                    names.setdefault(child.name.lower(), []).append(child.name)
            self._folders[folder] = names
        found = self._folders[folder].get(rel.name.lower(), [])
        return rel.with_name(found[0]) if len(found) == 1 else None

    def add(self, entry: VideoEntry, where: str) -> None:
        if not (self.videos_dir / entry.relpath).is_file():
            match = self._case_match(PurePosixPath(entry.relpath))
            if match is not None and (self.videos_dir / match).is_file():
                entry = _entry(match, entry.class_name, entry.label, entry.split)
            else:
                self.missing.append(f"{self.videos_dir / entry.relpath} (listed at {where})")
        if entry.relpath in self.seen:
            raise SplitError(
                f"{where}: {entry.relpath} is listed twice (first at {self.seen[entry.relpath]})"
            )
        self.seen[entry.relpath] = where
        self.entries.append(entry)

    def result(self) -> list[VideoEntry]:
        if self.missing:
            shown = "\n  ".join(self.missing[:_MAX_MISSING_SHOWN])
            more = len(self.missing) - _MAX_MISSING_SHOWN
            tail = f"\n  ... and {more} more" if more > 0 else ""
            raise SplitError(f"{len(self.missing)} listed video file(s) missing:\n  {shown}{tail}")
        return self.entries


# ----------------------------------------------------------------------------- UCF


def read_class_index(path: Path) -> list[str]:
    """Class names in label order from a UCF ``classInd.txt`` (1-based, contiguous)."""
    path = Path(path)
    by_index: dict[int, str] = {}
    for number, line in _lines(path):
        parts = line.split(None, 1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise SplitError(f"{path}:{number}: expected '<index> <ClassName>', got {line!r}")
        index, name = int(parts[0]), parts[1].strip()
        if index in by_index:
            raise SplitError(f"{path}:{number}: index {index} appears twice")
        if name in by_index.values():
            raise SplitError(f"{path}:{number}: class {name!r} appears twice")
        by_index[index] = name
    if not by_index:
        raise SplitError(f"{path}: no classes")
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        raise SplitError(f"{path}: class indices must be 1..{len(by_index)} without gaps")
    return [by_index[i] for i in range(1, len(by_index) + 1)]


def _ucf_line(
    path: Path, number: int, line: str, labels: dict[str, int], with_label: bool
) -> tuple[PurePosixPath, str, int]:
    """Parse one train/test list line into ``(relpath, class name, 0-based label)``.

    Train lines need the 1-based label; on test lines it is optional (checked if there).
    """
    parts = line.rsplit(None, 1)
    has_label = len(parts) == 2 and parts[1].isdigit()
    if with_label and not has_label:
        raise SplitError(f"{path}:{number}: expected '<Class>/<video file> <label>', got {line!r}")
    value, given = (parts[0], int(parts[1])) if has_label else (line, None)
    rel = _relpath(path, number, value)
    class_name = rel.parts[0]
    if class_name not in labels:
        raise SplitError(f"{path}:{number}: unknown class {class_name!r} (not in classInd.txt)")
    label = labels[class_name]
    if given is not None and given - 1 != label:
        raise SplitError(
            f"{path}:{number}: label {given} does not match class {class_name!r} "
            f"(index {label + 1} in classInd.txt)"
        )
    return rel, class_name, label


def read_ucf_split(splits_dir: Path, videos_dir: Path, k: int) -> list[VideoEntry]:
    """Entries of split ``k`` in the UCF layout: train list first, then test list."""
    check_k(k)
    splits_dir, videos_dir = Path(splits_dir), Path(videos_dir)
    classes = read_class_index(splits_dir / "classInd.txt")
    labels = {name: i for i, name in enumerate(classes)}
    out = _Collector(videos_dir)
    for split, name, with_label in (
        ("train", f"trainlist0{k}.txt", True),
        ("test", f"testlist0{k}.txt", False),
    ):
        path = splits_dir / name
        for number, line in _lines(path):
            rel, class_name, label = _ucf_line(path, number, line, labels, with_label)
            out.add(_entry(rel, class_name, label, split), f"{path}:{number}")
    return out.result()


# ---------------------------------------------------------------------------- HMDB


def hmdb_classes(videos_dir: Path) -> list[str]:
    """Sorted class folder names (hidden folders ignored)."""
    videos_dir = Path(videos_dir)
    if not videos_dir.is_dir():
        raise SplitError(f"{videos_dir}: videos folder not found")
    classes = sorted(d.name for d in videos_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise SplitError(f"{videos_dir}: no class folders")
    return classes


def _hmdb_split_files(splits_dir: Path, k: int) -> dict[str, Path]:
    files: dict[str, Path] = {}
    if not splits_dir.is_dir():
        raise SplitError(f"{splits_dir}: splits folder not found")
    for path in sorted(splits_dir.iterdir()):
        match = _HMDB_FILE_RE.match(path.name)
        if match and int(match["k"]) == k:
            files[match["cls"]] = path
    return files


def read_hmdb_split(splits_dir: Path, videos_dir: Path, k: int) -> list[VideoEntry]:
    """Entries of split ``k`` in the HMDB-51 layout, class by class (sorted)."""
    check_k(k)
    splits_dir, videos_dir = Path(splits_dir), Path(videos_dir)
    classes = hmdb_classes(videos_dir)
    files = _hmdb_split_files(splits_dir, k)
    for class_name, path in files.items():
        if class_name not in classes:
            raise SplitError(f"{path}: unknown class {class_name!r} (no folder {videos_dir / class_name})")
    out = _Collector(videos_dir)
    for label, class_name in enumerate(classes):
        path = files.get(class_name, splits_dir / f"{class_name}_test_split{k}.txt")
        for number, line in _lines(path):
            parts = line.rsplit(None, 1)
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise SplitError(f"{path}:{number}: expected '<video file> <0|1|2>', got {line!r}")
            if parts[1] == "0":
                continue
            if "/" in parts[0] or "\\" in parts[0] or parts[0] in (".", ".."):
                raise SplitError(f"{path}:{number}: expected a bare file name, got {parts[0]!r}")
            split = "train" if parts[1] == "1" else "test"
            rel = PurePosixPath(class_name, parts[0])
            out.add(_entry(rel, class_name, label, split), f"{path}:{number}")
    return out.result()


# -------------------------------------------------------------------------- entry


def read_split(kind: str, raw_dir: str | Path, k: int) -> list[VideoEntry]:
    """Entries of split ``k`` of a dataset in the raw layout (``videos/``, ``splits/``).

    ``kind``: "synthetic" or "ucf101" (UCF layout) or "hmdb51".
    """
    check_k(k)
    raw_dir = Path(raw_dir)
    videos_dir, splits_dir = raw_dir / "videos", raw_dir / "splits"
    if kind in ("synthetic", "ucf101"):
        return read_ucf_split(splits_dir, videos_dir, k)
    if kind == "hmdb51":
        return read_hmdb_split(splits_dir, videos_dir, k)
    raise ValueError(f"unknown dataset kind {kind!r}; expected one of {', '.join(SPLIT_KINDS)}")


def read_classes(kind: str, raw_dir: str | Path) -> list[str]:
    """Class names in label order (``classes[label]``) for a dataset in the raw layout."""
    raw_dir = Path(raw_dir)
    if kind in ("synthetic", "ucf101"):
        return read_class_index(raw_dir / "splits" / "classInd.txt")
    if kind == "hmdb51":
        return hmdb_classes(raw_dir / "videos")
    raise ValueError(f"unknown dataset kind {kind!r}; expected one of {', '.join(SPLIT_KINDS)}")
