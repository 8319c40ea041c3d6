"""Safe extraction of zip, tar and RAR archives (RARs built by tests/rarfixture.py)."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from rarfixture import HOST_MSDOS, HOST_UNIX, MARKER, RarEntry, rar_bytes, write_rar
from sva.data import archives
from sva.data.archives import ArchiveError, UnsafeArchiveError, extract, extract_nested

needs_unar = pytest.mark.skipif(
    shutil.which("unar") is None or shutil.which("lsar") is None, reason="unar/lsar not installed"
)

FILES = {"Cls/a.avi": b"alpha" * 50, "Cls/sub/b.avi": b"beta", "top.txt": b"top"}


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, files: dict[str, bytes], links: dict[str, tuple[str, bytes]] | None = None) -> Path:
    """``links``: name -> (target, type) with type tarfile.SYMTYPE or LNKTYPE."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, (target, kind) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
    return path


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _assert_nothing_left(tmp_path: Path, dest: Path) -> None:
    assert not dest.exists()
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.tmp-")]
    assert not list(tmp_path.rglob("evil*"))


# ------------------------------------------------------------------ the RAR fixture


def test_rar_fixture_matches_real_rar_headers() -> None:
    """The main and end headers equal the bytes every real RAR 4.x archive carries."""
    data = rar_bytes({"x/a.txt": b"hello"})
    assert data.startswith(MARKER + bytes.fromhex("cf90 7300 000d 0000 0000 0000".replace(" ", "")))
    assert data.endswith(bytes.fromhex("c43d7b00400700"))


@needs_unar
@pytest.mark.parametrize("host_os", [HOST_UNIX, HOST_MSDOS])
def test_rar_fixture_passes_lsar_crc_test(tmp_path: Path, host_os: int) -> None:
    path = write_rar(tmp_path / "t.rar", FILES, host_os=host_os)
    proc = subprocess.run(["lsar", "-t", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed, 0 failed" in proc.stdout


# -------------------------------------------------------------------- round trips


def test_zip_roundtrip(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    files = extract(_zip(tmp_path / "a.zip", FILES), dest)
    assert _tree(dest) == FILES
    assert files == sorted(dest / n for n in FILES)


def test_tar_roundtrip(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    extract(_tar(tmp_path / "a.tar.gz", FILES), dest)
    assert _tree(dest) == FILES


@needs_unar
@pytest.mark.parametrize("host_os", [HOST_UNIX, HOST_MSDOS])
def test_rar_roundtrip(tmp_path: Path, host_os: int) -> None:
    entries = [RarEntry("Cls", is_dir=True)] + [RarEntry(n, d) for n, d in FILES.items()]
    dest = tmp_path / "out"
    files = extract(write_rar(tmp_path / "a.rar", entries, host_os=host_os), dest)
    assert _tree(dest) == FILES
    assert files == sorted(dest / n for n in FILES)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_extract_replaces_existing_dest(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    (dest / "stale").mkdir(parents=True)
    extract(_zip(tmp_path / "a.zip", FILES), dest)
    assert _tree(dest) == FILES and not (dest / "stale").exists()


def test_unknown_suffix(tmp_path: Path) -> None:
    (tmp_path / "a.7z").write_bytes(b"x")
    with pytest.raises(ArchiveError, match="unsupported archive type"):
        extract(tmp_path / "a.7z", tmp_path / "out")


def test_corrupt_zip_is_an_archive_error(tmp_path: Path) -> None:
    (tmp_path / "a.zip").write_bytes(b"not a zip")
    with pytest.raises(ArchiveError, match="a.zip"):
        extract(tmp_path / "a.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_rar_tools_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_rar(tmp_path / "a.rar", FILES)
    monkeypatch.setattr(archives.shutil, "which", lambda name: None)
    with pytest.raises(ArchiveError) as info:
        extract(tmp_path / "a.rar", tmp_path / "out")
    assert "unar" in str(info.value) and "bsdtar" in str(info.value)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ path traversal

EVIL_NAMES = ["../evil.txt", "/tmp/evil_abs.txt", "ok/../../evil2.txt", "..\\evil3.txt", "C:\\evil4.txt"]


@pytest.mark.parametrize("name", EVIL_NAMES)
def test_zip_traversal_refused(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / "bad.zip", {"fine.txt": b"ok", name: b"evil"})
    dest = tmp_path / "a" / "out"
    with pytest.raises(UnsafeArchiveError) as info:
        extract(archive, dest)
    assert "bad.zip" in str(info.value) and repr(name) in str(info.value)
    _assert_nothing_left(tmp_path, dest)


@pytest.mark.parametrize("name", EVIL_NAMES)
def test_tar_traversal_refused(tmp_path: Path, name: str) -> None:
    archive = _tar(tmp_path / "bad.tar.gz", {"fine.txt": b"ok", name: b"evil"})
    dest = tmp_path / "a" / "out"
    with pytest.raises(UnsafeArchiveError, match="bad.tar.gz"):
        extract(archive, dest)
    _assert_nothing_left(tmp_path, dest)


@needs_unar
@pytest.mark.parametrize("name", EVIL_NAMES)
@pytest.mark.parametrize("sep", ["\\", "/"])
def test_rar_traversal_refused(tmp_path: Path, name: str, sep: str) -> None:
    archive = write_rar(tmp_path / "bad.rar", {"fine.txt": b"ok", name: b"evil"}, sep=sep)
    dest = tmp_path / "a" / "out"
    with pytest.raises(UnsafeArchiveError, match="bad.rar"):
        extract(archive, dest)
    _assert_nothing_left(tmp_path, dest)


@pytest.mark.parametrize("target", ["../../outside", "/etc/passwd", "sub/../../../x"])
def test_tar_symlink_outside_refused(tmp_path: Path, target: str) -> None:
    archive = _tar(tmp_path / "bad.tar.gz", {"d/f.txt": b"ok"}, {"d/link": (target, tarfile.SYMTYPE)})
    with pytest.raises(UnsafeArchiveError, match="d/link"):
        extract(archive, tmp_path / "out")
    _assert_nothing_left(tmp_path, tmp_path / "out")


def test_tar_hardlink_outside_refused(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "bad.tar.gz", {"f.txt": b"ok"}, {"h": ("../etc/passwd", tarfile.LNKTYPE)})
    with pytest.raises(UnsafeArchiveError, match="'h'"):
        extract(archive, tmp_path / "out")


def test_tar_write_through_symlink_refused(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "bad.tar.gz", {"d/evil.txt": b"x"}, {"d": (".", tarfile.SYMTYPE)})
    with pytest.raises(UnsafeArchiveError, match="goes through the symlink"):
        extract(archive, tmp_path / "out")


def test_tar_symlink_inside_is_kept(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "ok.tar.gz",
        {"d/f.txt": b"ok"},
        {"d/link": ("f.txt", tarfile.SYMTYPE), "l2": ("d/../d/f.txt", tarfile.SYMTYPE)},
    )
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "link").read_bytes() == b"ok"
    assert (tmp_path / "out" / "l2").read_bytes() == b"ok"


def test_tar_device_refused(tmp_path: Path) -> None:
    path = tmp_path / "dev.tar"
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("null")
        info.type = tarfile.CHRTYPE
        tf.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="special file"):
        extract(path, tmp_path / "out")


def test_zip_symlink_outside_refused(tmp_path: Path) -> None:
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.create_system = 3
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "../../etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract(path, tmp_path / "out")


@needs_unar
def test_rar_symlink_outside_refused_after_listing(tmp_path: Path) -> None:
    archive = write_rar(
        tmp_path / "link.rar", [RarEntry("ok.txt", b"ok"), RarEntry("lnk", link="/etc/passwd")]
    )
    with pytest.raises(UnsafeArchiveError, match="symlink pointing outside"):
        extract(archive, tmp_path / "out")
    _assert_nothing_left(tmp_path, tmp_path / "out")


@needs_unar
def test_rar_write_through_symlink_refused(tmp_path: Path) -> None:
    archive = write_rar(tmp_path / "link.rar", [RarEntry("d", link="."), RarEntry("d/evil.txt", b"x")])
    with pytest.raises(UnsafeArchiveError, match="goes through the symlink"):
        extract(archive, tmp_path / "out")


@needs_unar
def test_rar_symlink_inside_is_kept(tmp_path: Path) -> None:
    archive = write_rar(tmp_path / "link.rar", [RarEntry("d/f.txt", b"ok"), RarEntry("d/lnk", link="f.txt")])
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "lnk").is_symlink()
    assert (tmp_path / "out" / "d" / "lnk").read_bytes() == b"ok"


# ------------------------------------------------------------------- rar of rars


@needs_unar
def test_extract_nested_hmdb_style(tmp_path: Path) -> None:
    inner_a = rar_bytes({"brush_hair/a (1)!.avi": b"A1", "brush_hair/a2.avi": b"A2"}, host_os=HOST_MSDOS)
    inner_b = rar_bytes({"c.avi": b"C"})  # no class folder inside
    outer = write_rar(tmp_path / "hmdb51_org.rar", {"brush_hair.rar": inner_a, "cartwheel.rar": inner_b})
    dest = tmp_path / "videos"
    files = extract_nested(outer, dest)
    assert _tree(dest) == {
        "brush_hair/a (1)!.avi": b"A1",
        "brush_hair/a2.avi": b"A2",
        "cartwheel/c.avi": b"C",
    }
    assert files == sorted(dest / n for n in _tree(dest))
    assert not list(dest.rglob("*.rar"))


@needs_unar
def test_extract_nested_refuses_unsafe_inner(tmp_path: Path) -> None:
    outer = write_rar(tmp_path / "o.rar", {"bad.rar": rar_bytes({"../evil.txt": b"x"})})
    with pytest.raises(UnsafeArchiveError, match="bad.rar"):
        extract_nested(outer, tmp_path / "videos")
    assert not list(tmp_path.rglob("evil*"))
