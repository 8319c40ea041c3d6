"""Split-file parsing: UCF layout (UCF-101, synthetic) and HMDB-51 layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sva.data.splits import SplitError, VideoEntry, read_classes, read_hmdb_split, read_split, read_ucf_split

UCF_CLASSES = ["ApplyEyeMakeup", "Archery", "YoYo"]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path


def _video(raw: Path, rel: str) -> None:
    _write(raw / "videos" / rel, "fake video")


def make_ucf(raw: Path, k: int = 1, crlf: bool = True) -> None:
    """Three classes, two train and one test video each; CRLF and blank lines."""
    nl = "\r\n" if crlf else "\n"
    _write(
        raw / "splits" / "classInd.txt", nl.join(f"{i} {c}" for i, c in enumerate(UCF_CLASSES, 1)) + nl + nl
    )
    train, test = [], []
    for i, c in enumerate(UCF_CLASSES, 1):
        for g in (1, 2):
            rel = f"{c}/v_{c}_g0{g}_c01.avi"
            _video(raw, rel)
            train.append(f"{rel} {i}")
        rel = f"{c}/v_{c}_g03_c01.avi"
        _video(raw, rel)
        test.append(rel)
    _write(raw / "splits" / f"trainlist0{k}.txt", nl.join(train) + nl)
    _write(raw / "splits" / f"testlist0{k}.txt", nl + nl.join(test) + nl + "   " + nl)


HMDB_CLASSES = ["brush_hair", "cartwheel", "chew"]


def make_hmdb(raw: Path, k: int = 1) -> None:
    """Per class: one train (1), one test (2), one unused (0) video; CRLF, trailing blanks."""
    for c in HMDB_CLASSES:
        lines = []
        for name, tag in ((f"{c}_train_#1!.avi", 1), (f"{c}_test(2).avi", 2), (f"{c}_unused.avi", 0)):
            if tag:
                _video(raw, f"{c}/{name}")
            lines.append(f"{name} {tag} ")
        _write(raw / "splits" / f"{c}_test_split{k}.txt", "\r\n".join(lines) + "\r\n")


# ------------------------------------------------------------------------- UCF


def test_ucf_entries(tmp_path: Path) -> None:
    make_ucf(tmp_path)
    entries = read_split("ucf101", tmp_path, 1)
    assert len(entries) == 9
    assert entries[0] == VideoEntry(
        "v_ApplyEyeMakeup_g01_c01",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "ApplyEyeMakeup",
        0,
        "train",
    )
    test = [e for e in entries if e.split == "test"]
    assert [(e.class_name, e.label) for e in test] == [(c, i) for i, c in enumerate(UCF_CLASSES)]
    assert read_classes("ucf101", tmp_path) == UCF_CLASSES


def test_synthetic_uses_ucf_layout(tmp_path: Path) -> None:
    make_ucf(tmp_path, k=2, crlf=False)
    assert read_split("synthetic", tmp_path, 2) == read_ucf_split(tmp_path / "splits", tmp_path / "videos", 2)


@pytest.mark.parametrize("k", [0, 4, -1, "1", 1.0, True])
def test_k_is_validated(tmp_path: Path, k) -> None:
    with pytest.raises(ValueError, match="1, 2 or 3"):
        read_split("ucf101", tmp_path, k)


def test_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kinetics"):
        read_split("kinetics", tmp_path, 1)


def test_malformed_train_line_names_file_and_line(tmp_path: Path) -> None:
    make_ucf(tmp_path)
    path = tmp_path / "splits" / "trainlist01.txt"
    lines = path.read_text().splitlines()
    lines[2] = "Archery/v_Archery_g01_c01.avi"  # label missing
    path.write_text("\n".join(lines))
    with pytest.raises(SplitError, match=r"trainlist01\.txt:3: expected"):
        read_split("ucf101", tmp_path, 1)


def test_unknown_class_in_test_list(tmp_path: Path) -> None:
    make_ucf(tmp_path)
    path = tmp_path / "splits" / "testlist01.txt"
    path.write_text(path.read_text() + "Bowling/v_Bowling_g01_c01.avi\n")
    with pytest.raises(SplitError, match=r"testlist01\.txt:\d+: unknown class 'Bowling'"):
        read_split("ucf101", tmp_path, 1)


def test_label_that_contradicts_folder(tmp_path: Path) -> None:
    make_ucf(tmp_path)
    path = tmp_path / "splits" / "trainlist01.txt"
    path.write_text("Archery/v_Archery_g01_c01.avi 3\n")
    with pytest.raises(SplitError, match=r"trainlist01\.txt:1: label 3 does not match class 'Archery'"):
        read_split("ucf101", tmp_path, 1)


def test_malformed_class_index(tmp_path: Path) -> None:
    make_ucf(tmp_path)
    _write(tmp_path / "splits" / "classInd.txt", "1 A\nB 2\n")
    with pytest.raises(SplitError, match=r"classInd\.txt:2"):
        read_split("ucf101", tmp_path, 1)


def test_class_index_with_gap(tmp_path: Path) -> None:
    make_ucf(tmp_path)
    _write(tmp_path / "splits" / "classInd.txt", "1 ApplyEyeMakeup\n3 Archery\n")
    with pytest.raises(SplitError, match="without gaps"):
        read_split("ucf101", tmp_path, 1)


def test_missing_video_is_named(tmp_path: Path) -> None:
    make_ucf(tmp_path)
    gone = tmp_path / "videos" / "YoYo" / "v_YoYo_g03_c01.avi"
    gone.unlink()
    with pytest.raises(SplitError, match="1 listed video file") as info:
        read_split("ucf101", tmp_path, 1)
    assert str(gone) in str(info.value) and "testlist01.txt" in str(info.value)


def test_missing_split_file_is_named(tmp_path: Path) -> None:
    make_ucf(tmp_path)
    with pytest.raises(SplitError, match=r"trainlist02\.txt: split file not found"):
        read_split("ucf101", tmp_path, 2)


def test_duplicate_video_refused(tmp_path: Path) -> None:
    make_ucf(tmp_path)
    path = tmp_path / "splits" / "testlist01.txt"
    path.write_text(path.read_text() + "Archery/v_Archery_g01_c01.avi\n")
    with pytest.raises(SplitError, match="listed twice"):
        read_split("ucf101", tmp_path, 1)


def test_path_escaping_videos_refused(tmp_path: Path) -> None:
    make_ucf(tmp_path)
    (tmp_path / "splits" / "testlist01.txt").write_text("Archery/../../etc/passwd\n")
    with pytest.raises(SplitError, match="expected '<Class>/<video file>'"):
        read_split("ucf101", tmp_path, 1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.from_regex(r"[A-Z][A-Za-z0-9]{0,11}", fullmatch=True), min_size=1, max_size=6, unique=True),
    st.data(),
)
def test_ucf_labels_follow_class_index(tmp_path_factory, classes: list[str], data) -> None:
    raw = tmp_path_factory.mktemp("ucf")
    _write(raw / "splits" / "classInd.txt", "".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)))
    picks = data.draw(st.lists(st.sampled_from(classes), min_size=1, max_size=10))
    train = []
    for n, c in enumerate(picks):
        rel = f"{c}/v_{c}_g{n:02d}_c01.avi"
        _video(raw, rel)
        train.append(f"{rel} {classes.index(c) + 1}")
    _write(raw / "splits" / "trainlist01.txt", "\n".join(train))
    _write(raw / "splits" / "testlist01.txt", "")
    entries = read_split("ucf101", raw, 1)
    assert [e.label for e in entries] == [classes.index(c) for c in picks]
    assert all(e.split == "train" and classes[e.label] == e.class_name for e in entries)


# ------------------------------------------------------------------------ HMDB


def test_hmdb_entries(tmp_path: Path) -> None:
    make_hmdb(tmp_path, k=3)
    entries = read_split("hmdb51", tmp_path, 3)
    assert [(e.class_name, e.label, e.split) for e in entries] == [
        (c, i, s) for i, c in enumerate(HMDB_CLASSES) for s in ("train", "test")
    ]
    assert entries[0] == VideoEntry(
        "brush_hair_train_#1!", "brush_hair/brush_hair_train_#1!.avi", "brush_hair", 0, "train"
    )
    assert not any("unused" in e.relpath for e in entries)
    assert read_classes("hmdb51", tmp_path) == HMDB_CLASSES


def test_hmdb_bad_tag(tmp_path: Path) -> None:
    make_hmdb(tmp_path)
    _write(tmp_path / "splits" / "chew_test_split1.txt", "chew_train_#1!.avi 1\nx.avi 3\n")
    with pytest.raises(SplitError, match=r"chew_test_split1\.txt:2: expected '<video file> <0\|1\|2>'"):
        read_split("hmdb51", tmp_path, 1)


def test_hmdb_unknown_class(tmp_path: Path) -> None:
    make_hmdb(tmp_path)
    _write(tmp_path / "splits" / "dance_test_split1.txt", "d.avi 1\n")
    with pytest.raises(SplitError, match=r"dance_test_split1\.txt: unknown class 'dance'"):
        read_split("hmdb51", tmp_path, 1)


def test_hmdb_class_without_split_file(tmp_path: Path) -> None:
    make_hmdb(tmp_path)
    (tmp_path / "splits" / "chew_test_split1.txt").unlink()
    with pytest.raises(SplitError, match=r"chew_test_split1\.txt: split file not found"):
        read_split("hmdb51", tmp_path, 1)


def test_hmdb_missing_video(tmp_path: Path) -> None:
    make_hmdb(tmp_path)
    gone = tmp_path / "videos" / "cartwheel" / "cartwheel_test(2).avi"
    gone.unlink()
    with pytest.raises(SplitError) as info:
        read_hmdb_split(tmp_path / "splits", tmp_path / "videos", 1)
    assert str(gone) in str(info.value)


def test_hmdb_no_videos_folder(tmp_path: Path) -> None:
    with pytest.raises(SplitError, match="videos folder not found"):
        read_split("hmdb51", tmp_path, 1)


def test_letter_case_mismatch_resolved_to_disk_name(tmp_path: Path) -> None:
    """A listed name that differs from the file on disk only in letter case is tolerated."""
    make_ucf(tmp_path)
    disk = tmp_path / "videos" / "Archery" / "v_Archery_g03_c01.avi"
    disk.rename(disk.with_name("v_ARCHERY_g03_c01.avi"))
    entries = read_split("ucf101", tmp_path, 1)
    assert "Archery/v_ARCHERY_g03_c01.avi" in [e.relpath for e in entries]
