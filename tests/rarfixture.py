"""A tiny RAR 4.x (RAR 2.9/3.x format) writer for tests: stored entries only.

``rar`` is proprietary and not installed, so the tests build RAR archives by hand.
Layout (see the RAR 4.x technical note, ``technote.txt`` in the unrar sources)::

    marker block   52 61 72 21 1A 07 00                ("Rar!\\x1a\\x07\\x00")
    main header    HEAD_CRC HEAD_TYPE=0x73 HEAD_FLAGS HEAD_SIZE=13 RESERVED1(2) RESERVED2(4)
    file header    HEAD_CRC HEAD_TYPE=0x74 HEAD_FLAGS HEAD_SIZE PACK_SIZE UNP_SIZE HOST_OS
                   FILE_CRC FTIME UNP_VER METHOD NAME_SIZE ATTR FILE_NAME, then the data
    end block      HEAD_CRC HEAD_TYPE=0x7B HEAD_FLAGS=0x4000 HEAD_SIZE=7

``HEAD_CRC`` is the low 16 bits of the CRC-32 of the header from ``HEAD_TYPE`` on;
``FILE_CRC`` is the CRC-32 of the (unpacked) data; method 0x30 means "stored".
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

MARKER = b"Rar!\x1a\x07\x00"

HOST_MSDOS = 0
HOST_UNIX = 3

_MAIN_HEAD = 0x73
_FILE_HEAD = 0x74
_END_HEAD = 0x7B

_LHD_LONG_BLOCK = 0x8000  # ADD_SIZE (the packed data) follows the header
_LHD_DIRECTORY = 0x00E0  # dictionary bits 111 = directory entry
_ENDARC_FLAGS = 0x4000

_METHOD_STORE = 0x30
_UNP_VER = 29  # RAR 2.9 / 3.x

_DOS_ATTR_ARCHIVE = 0x20
_DOS_ATTR_DIRECTORY = 0x10
_UNIX_FILE = 0o100644
_UNIX_DIR = 0o040755
_UNIX_SYMLINK = 0o120777


@dataclass(frozen=True)
class RarEntry:
    """One archive member. ``link`` makes a Unix symlink (needs host OS 3)."""

    name: str
    data: bytes = b""
    is_dir: bool = False
    link: str | None = None


def _dos_time(ts: float) -> int:
    """MS-DOS date/time: 7 bits year-1980, 4 month, 5 day | 5 hour, 6 minute, 5 sec/2."""
    t = time.localtime(ts)
    year = max(t.tm_year, 1980) - 1980
    date = (year << 9) | (t.tm_mon << 5) | t.tm_mday
    clock = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    return (date << 16) | clock


def _block(head_type: int, flags: int, body: bytes) -> bytes:
    """A header block: CRC16 over TYPE..end, then TYPE, FLAGS, SIZE and the body."""
    size = 7 + len(body)
    rest = struct.pack("<BHH", head_type, flags, size) + body
    crc = zlib.crc32(rest) & 0xFFFF
    return struct.pack("<H", crc) + rest


def _attributes(entry: RarEntry, host_os: int) -> int:
    if host_os == HOST_UNIX:
        if entry.link is not None:
            return _UNIX_SYMLINK
        return _UNIX_DIR if entry.is_dir else _UNIX_FILE
    if entry.link is not None:
        raise ValueError("symlinks need host_os=HOST_UNIX")
    return _DOS_ATTR_DIRECTORY if entry.is_dir else _DOS_ATTR_ARCHIVE


def _file_block(entry: RarEntry, host_os: int, mtime: float, sep: str) -> bytes:
    data = entry.link.encode() if entry.link is not None else entry.data
    if entry.is_dir:
        data = b""
    name = entry.name.rstrip("/").replace("/", sep).encode("utf-8")
    flags = _LHD_LONG_BLOCK | (_LHD_DIRECTORY if entry.is_dir else 0)
    body = (
        struct.pack(
            "<IIBIIBBHI",
            len(data),  # PACK_SIZE (stored: equal to the unpacked size)
            len(data),  # UNP_SIZE
            host_os,
            zlib.crc32(data) & 0xFFFFFFFF,  # FILE_CRC
            _dos_time(mtime),
            _UNP_VER,
            _METHOD_STORE,
            len(name),
            _attributes(entry, host_os),
        )
        + name
    )
    return _block(_FILE_HEAD, flags, body) + data


def rar_bytes(
    entries: list[RarEntry] | dict[str, bytes],
    *,
    host_os: int = HOST_UNIX,
    mtime: float | None = None,
    sep: str | None = None,
) -> bytes:
    """Serialise ``entries`` (a list, or ``{name: data}``) as a RAR 4.x archive.

    ``sep`` is the path separator stored in names. RAR 4.x stores ``\\`` whatever
    the host OS (unar splits names on it and keeps a stored ``/`` as part of a
    file name), so that is the default; pass ``sep="/"`` to build odd archives.
    """
    if isinstance(entries, dict):
        entries = [RarEntry(name, data) for name, data in entries.items()]
    mtime = time.time() if mtime is None else mtime
    sep = "\\" if sep is None else sep
    out = bytearray(MARKER)
    out += _block(_MAIN_HEAD, 0, struct.pack("<HI", 0, 0))
    for entry in entries:
        out += _file_block(entry, host_os, mtime, sep)
    out += _block(_END_HEAD, _ENDARC_FLAGS, b"")
    return bytes(out)


def write_rar(path: Path, entries: list[RarEntry] | dict[str, bytes], **kwargs) -> Path:
    """Write a RAR 4.x archive of ``entries`` to ``path`` (see :func:`rar_bytes`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(rar_bytes(entries, **kwargs))
    return path
