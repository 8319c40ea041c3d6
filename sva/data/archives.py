"""Safe archive extraction: zip and tar with Python, RAR with ``unar`` (or ``bsdtar``).

Every archive is extracted into a fresh temporary folder beside ``dest`` and renamed
into place only once complete (:func:`sva.utils.atomic.atomic_path`), so a killed job never
leaves a half-extracted folder under the final name.

Safety. An entry that would land outside the target folder is refused with
:class:`UnsafeArchiveError` naming the archive and the entry:

- zip / tar: every entry is checked *before* anything is written: no absolute path
  (``/x``, ``\\x``, ``C:x``), no ``..`` component, no symlink or hard link whose
  target leaves the folder, no entry whose path runs through a symlink entry, and
  (tar) no device, FIFO or other special file. Python's own guards (zipfile's name
  sanitising, tarfile's ``filter="data"``) run as well.
- RAR: the archive is listed first (``lsar -j`` gives the entry names; ``bsdtar -tf``
  as the fallback) and the same name checks are applied. ``lsar`` does not report
  symlink targets, so after extraction every symlink is resolved and must stay inside,
  and the extractor runs one level below a private folder that must hold nothing else
  afterwards (nothing landed beside its output).

HMDB-51 ships as a RAR of RARs (one per class): :func:`extract_nested`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sva.utils.atomic import atomic_path

log = logging.getLogger(__name__)

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


class ArchiveError(RuntimeError):
    """An archive cannot be extracted (unknown format, missing tool, tool failure)."""


class UnsafeArchiveError(ValueError):
    """An archive entry would be written outside the target folder."""

    def __init__(self, archive: Path, entry: str, reason: str):
        self.archive, self.entry, self.reason = Path(archive), entry, reason
        super().__init__(f"unsafe archive {archive}: entry {entry!r} {reason}; nothing extracted")


@dataclass(frozen=True)
class Member:
    """What the safety check needs to know about one archive entry.

    ``link`` is the target of a symlink (or hard link, ``hard=True``) when known;
    ``is_link`` without ``link`` means "a symlink whose target we cannot see".
    """

    name: str
    is_link: bool = False
    link: str | None = None
    hard: bool = False


# ----------------------------------------------------------------------------- checks


def entry_parts(archive: Path, name: str) -> tuple[str, ...]:
    """Split an entry name into path components, refusing anything that could escape.

    Both ``/`` and ``\\`` count as separators (archives written on Windows).
    """
    if "\x00" in name:
        raise UnsafeArchiveError(archive, name, "contains a NUL byte")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE_RE.match(norm):
        raise UnsafeArchiveError(archive, name, "is an absolute path")
    parts = tuple(p for p in norm.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchiveError(archive, name, "contains a '..' component")
    return parts


def _link_target_parts(archive: Path, member: Member, links: set[tuple[str, ...]]) -> tuple[str, ...]:
    """Resolve a link target lexically, relative to its folder (hard links: to the root)."""
    assert member.link is not None
    target = member.link.replace("\\", "/")
    if target.startswith("/") or _DRIVE_RE.match(target):
        raise UnsafeArchiveError(archive, member.name, f"links to the absolute path {member.link!r}")
    base = () if member.hard else entry_parts(archive, member.name)[:-1]
    resolved: list[str] = list(base)
    components = [p for p in target.split("/") if p not in ("", ".")]
    for i, part in enumerate(components):
        if part == "..":
            if not resolved:
                raise UnsafeArchiveError(archive, member.name, f"links outside the folder ({member.link!r})")
            resolved.pop()
        else:
            resolved.append(part)
            if i < len(components) - 1 and tuple(resolved) in links:
                raise UnsafeArchiveError(
                    archive, member.name, f"links through another symlink ({member.link!r})"
                )
    return tuple(resolved)


def check_members(archive: Path, members: list[Member]) -> None:
    """Raise :class:`UnsafeArchiveError` unless every member stays inside the folder."""
    links = {entry_parts(archive, m.name) for m in members if m.is_link and not m.hard}
    for member in members:
        parts = entry_parts(archive, member.name)
        if not parts:
            continue  # "." or "./": the root folder itself
        for i in range(1, len(parts)):
            if parts[:i] in links:
                raise UnsafeArchiveError(
                    archive, member.name, f"goes through the symlink {'/'.join(parts[:i])!r}"
                )
        if member.link is not None:
            _link_target_parts(archive, member, links)


def verify_tree(archive: Path, root: Path) -> None:
    """After extraction: every symlink under ``root`` must resolve inside ``root``.

    Also gives the owner read/write access to what was extracted (archives written on
    Windows may carry read-only attributes, which would block the later moves).
    """
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(path)
                if os.path.commonpath([real_root, real]) != real_root:
                    rel = os.path.relpath(path, root)
                    raise UnsafeArchiveError(
                        archive, rel, f"is a symlink pointing outside ({os.readlink(path)!r})"
                    )
            elif stat.S_ISDIR(st.st_mode):
                os.chmod(path, st.st_mode | stat.S_IRWXU)
            elif stat.S_ISREG(st.st_mode):
                os.chmod(path, st.st_mode | stat.S_IRUSR | stat.S_IWUSR)
            else:
                raise UnsafeArchiveError(archive, os.path.relpath(path, root), "is a special file")


# ------------------------------------------------------------------------- dispatch


def archive_format(archive: Path) -> str:
    """``"zip"``, ``"tar"`` or ``"rar"`` from the file name; ArchiveError otherwise."""
    name = Path(archive).name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    if name.endswith(".rar"):
        return "rar"
    raise ArchiveError(
        f"{archive}: unsupported archive type (expected .zip, .tar[.gz|.bz2|.xz], .tgz or .rar)"
    )


def extract(archive: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Safely extract ``archive`` into the folder ``dest``; return the extracted files.

    ``dest`` is replaced as a whole (an existing folder of that name is removed once the
    new one is complete). The returned list holds every non-directory entry, sorted.
    """
    archive, dest = Path(archive), Path(dest)
    fmt = archive_format(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    log.info("extracting %s into %s", archive, dest)
    with atomic_path(dest, is_dir=True) as tmp:
        _EXTRACTORS[fmt](archive, tmp)
        verify_tree(archive, tmp)
    return list_files(dest)


def list_files(root: Path) -> list[Path]:
    """Every file (and symlink) below ``root``, sorted."""
    return sorted(p for p in Path(root).rglob("*") if p.is_symlink() or not p.is_dir())


def extract_nested(archive: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Extract a RAR of RARs (HMDB-51): the outer archive, then each inner ``.rar``.

    Each inner ``X.rar`` is extracted into a folder ``X`` beside it and then deleted.
    When ``X`` then holds nothing but a folder also named ``X`` (HMDB-51's inner
    archives each contain their class folder), that folder is lifted one level, so
    ``X/X/a.avi`` becomes ``X/a.avi``.
    """
    archive, dest = Path(archive), Path(dest)
    extract(archive, dest)
    inner = sorted(p for p in list_files(dest) if p.suffix.lower() == ".rar" and not p.is_symlink())
    for rar in inner:
        target = rar.with_suffix("")
        if target.exists():
            raise ArchiveError(f"{archive}: cannot extract inner archive {rar.name}: {target} already exists")
        extract(rar, target)
        _lift_single_folder(target)
        rar.unlink()
    return list_files(dest)


def _lift_single_folder(folder: Path) -> None:
    """``folder/<folder.name>/...`` (and nothing else) → ``folder/...``."""
    children = list(folder.iterdir())
    if (
        len(children) != 1
        or children[0].name != folder.name
        or not children[0].is_dir()
        or children[0].is_symlink()
    ):
        return
    staging = Path(tempfile.mkdtemp(prefix=".lift-", dir=folder))
    os.rmdir(staging)
    os.replace(children[0], staging)
    for child in staging.iterdir():
        os.replace(child, folder / child.name)
    staging.rmdir()


# ---------------------------------------------------------------------- zip and tar


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Member:
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_ISLNK(mode):
        return Member(info.filename, is_link=True, link=zf.read(info).decode("utf-8", "replace"))
    return Member(info.filename)


def _extract_zip(archive: Path, out: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            check_members(archive, [_zip_member(zf, info) for info in zf.infolist()])
            zf.extractall(out)  # zipfile writes symlink entries as small regular files
    except zipfile.BadZipFile as err:
        raise ArchiveError(f"{archive}: not a valid zip file: {err}") from None


def _tar_member(archive: Path, info: tarfile.TarInfo) -> Member:
    if info.issym():
        return Member(info.name, is_link=True, link=info.linkname)
    if info.islnk():
        return Member(info.name, is_link=True, link=info.linkname, hard=True)
    if not (info.isfile() or info.isdir()):
        raise UnsafeArchiveError(archive, info.name, "is a device, FIFO or other special file")
    return Member(info.name)


def _extract_tar(archive: Path, out: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            infos = tf.getmembers()
            check_members(archive, [_tar_member(archive, info) for info in infos])
            tf.extractall(out, members=infos, filter="data")
    except tarfile.FilterError as err:  # our checks run first; this is the backstop
        name = err.tarinfo.name if getattr(err, "tarinfo", None) is not None else "?"
        raise UnsafeArchiveError(archive, name, f"was refused by tarfile's data filter ({err})") from None
    except tarfile.TarError as err:
        raise ArchiveError(f"{archive}: not a valid tar file: {err}") from None


# ------------------------------------------------------------------------------ rar


def rar_tool() -> str:
    """``"unar"`` (with ``lsar``) if installed, else ``"bsdtar"``; ArchiveError if neither."""
    if shutil.which("unar") and shutil.which("lsar"):
        return "unar"
    if shutil.which("bsdtar"):
        return "bsdtar"
    raise ArchiveError(
        "cannot extract RAR archives: neither 'unar' (with 'lsar'; Debian/Ubuntu: "
        "apt-get install unar) nor 'bsdtar' (apt-get install libarchive-tools) is installed"
    )


def _run(cmd: list[str], archive: Path) -> bytes:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip()[-2000:]
        raise ArchiveError(f"{archive}: {cmd[0]} failed (exit {proc.returncode}): {detail}")
    return proc.stdout


def list_rar(archive: Path, tool: str | None = None) -> list[Member]:
    """The entries of a RAR archive, from ``lsar -j`` (or ``bsdtar -tf``)."""
    tool = tool or rar_tool()
    if tool == "unar":
        listing = json.loads(_run(["lsar", "-j", "-nr", str(archive)], archive).decode("utf-8", "replace"))
        return [
            Member(str(entry.get("XADFileName", "")), is_link=bool(entry.get("XADIsLink")))
            for entry in listing.get("lsarContents", [])
        ]
    out = _run(["bsdtar", "-tf", str(archive)], archive).decode("utf-8", "replace")
    return [Member(line) for line in out.splitlines() if line]


def _extract_rar(archive: Path, out: Path) -> None:
    tool = rar_tool()
    check_members(archive, list_rar(archive, tool))
    work = Path(tempfile.mkdtemp(prefix=".x-", dir=out))
    if tool == "unar":
        _run(["unar", "-q", "-nr", "-D", "-f", "-k", "skip", "-o", str(work), str(archive)], archive)
    else:
        _run(["bsdtar", "-xf", str(archive), "-C", str(work)], archive)
    strays = [p.name for p in out.iterdir() if p != work]
    if strays:
        raise UnsafeArchiveError(archive, strays[0], "was written outside the extraction folder")
    verify_tree(archive, work)
    for child in work.iterdir():
        os.replace(child, out / child.name)
    work.rmdir()


_EXTRACTORS = {"zip": _extract_zip, "tar": _extract_tar, "rar": _extract_rar}
