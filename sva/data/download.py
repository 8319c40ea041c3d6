"""Resumable, checksum-verified HTTP downloads (standard library only, plus tqdm).

A download streams into ``<dest>.part`` and is renamed to ``dest`` only once it is
complete and, when a checksum is given, verified: a killed job never leaves a
truncated file under the final name. The next run resumes the ``.part`` with an HTTP
``Range`` request; a server that ignores ``Range`` (answers ``200``) makes it restart
from zero. Transient failures (connection resets, timeouts, 5xx, short reads) are
retried ``retries`` times, each retry resuming where the last one stopped.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)

USER_AGENT = "Mozilla/5.0 (compatible; sva-workbench downloader)"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE_RE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class DownloadError(RuntimeError):
    """A URL could not be fetched (HTTP error, network failure after all retries)."""


class ChecksumError(ValueError):
    """A downloaded file does not match its expected SHA-256 (the file is deleted)."""

    def __init__(self, path: Path, expected: str, actual: str, url: str | None = None):
        self.path, self.expected, self.actual, self.url = Path(path), expected, actual, url
        source = f" (from {url})" if url else ""
        super().__init__(
            f"checksum mismatch for {path}{source}: expected sha256 {expected}, "
            f"got {actual}; the file was deleted"
        )


class _Retryable(Exception):
    """A transient failure: try again, resuming the partial file."""


class _RangeNotSatisfiable(Exception):
    """HTTP 416 on a resume request: the partial file is not a prefix we can extend."""


@dataclass(frozen=True)
class Downloaded:
    """The outcome of :func:`fetch`.

    ``verified`` is False when no checksum was given (``sha256`` is then the hash
    computed here, to be recorded); ``reused`` is True when ``dest`` already existed.
    """

    path: Path
    sha256: str
    size: int
    verified: bool
    reused: bool


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in ``chunk``-byte pieces."""
    return _hash_file(path, hashlib.sha256(), chunk)


def md5_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file (only to compare with published MD5 sums)."""
    return _hash_file(path, hashlib.md5(), chunk)


def _hash_file(path: str | os.PathLike, digest, chunk: int) -> str:
    with open(path, "rb") as f:
        while buf := f.read(chunk):
            digest.update(buf)
    return digest.hexdigest()


def normalise_sha256(sha256: str | None) -> str | None:
    """Lower-case and validate a hex SHA-256 (``None`` passes through)."""
    if sha256 is None:
        return None
    value = sha256.strip().lower()
    if not _SHA256_RE.match(value):
        raise ValueError(f"not a SHA-256 hex digest (64 hex characters): {sha256!r}")
    return value


def part_path(dest: Path) -> Path:
    """Where the download of ``dest`` is staged: ``dest`` + ``.part``."""
    return dest.with_suffix(dest.suffix + ".part")


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None,
    *,
    chunk: int = 1 << 20,
    progress: bool = True,
    retries: int = 3,
) -> Path:
    """Download ``url`` to ``dest`` (resuming, retrying, verifying); return ``dest``.

    See :func:`fetch`, which also returns the computed hash.
    """
    return fetch(url, dest, sha256, chunk=chunk, progress=progress, retries=retries).path


def fetch(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None,
    *,
    chunk: int = 1 << 20,
    progress: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
) -> Downloaded:
    """Download ``url`` to ``dest`` and verify it against ``sha256``.

    - ``dest`` already present with a matching checksum: not downloaded again (with
      ``sha256=None`` an existing ``dest`` is trusted: it only ever appears complete).
    - ``dest`` present with a wrong checksum: deleted and downloaded again.
    - Checksum mismatch after the download: the file is deleted and
      :class:`ChecksumError` names the file, the expected and the actual hash.
    - ``sha256=None``: a warning says the file is unverified and gives its hash.
    - HTTP errors raise :class:`DownloadError` naming the URL and the status.
    """
    dest = Path(dest)
    expected = normalise_sha256(sha256)
    if dest.is_file():
        reused = _check_existing(dest, expected, url, chunk)
        if reused is not None:
            return reused
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    _download_with_retries(
        url,
        part,
        chunk=chunk,
        progress=progress,
        retries=retries,
        timeout=timeout,
        backoff=backoff,
        label=dest.name,
    )
    actual = sha256_file(part, chunk)
    if expected is not None and actual != expected:
        part.unlink(missing_ok=True)
        raise ChecksumError(dest, expected, actual, url)
    os.replace(part, dest)
    _log_result(dest, url, actual, expected is not None)
    return Downloaded(dest, actual, dest.stat().st_size, expected is not None, reused=False)


def _check_existing(dest: Path, expected: str | None, url: str, chunk: int) -> Downloaded | None:
    """Reuse a complete ``dest`` if it matches; delete it (return None) if not."""
    actual = sha256_file(dest, chunk)
    if expected is None or actual == expected:
        log.info("%s already present, not downloaded again", dest)
        _log_result(dest, url, actual, expected is not None)
        return Downloaded(dest, actual, dest.stat().st_size, expected is not None, reused=True)
    log.warning(
        "%s exists but its sha256 %s is not the expected %s: downloading again", dest, actual, expected
    )
    dest.unlink()
    return None


def _log_result(dest: Path, url: str, actual: str, verified: bool) -> None:
    if verified:
        log.info("%s: sha256 %s verified", dest, actual)
    else:
        log.warning(
            "%s (from %s) is UNVERIFIED: no sha256 was given; its sha256 is %s "
            "(put it in the config to verify future downloads)",
            dest,
            url,
            actual,
        )


def _download_with_retries(
    url: str,
    part: Path,
    *,
    chunk: int,
    progress: bool,
    retries: int,
    timeout: float,
    backoff: float,
    label: str,
) -> None:
    """Fill ``part`` with the whole body of ``url``, resuming after transient errors."""
    attempt = 0
    while True:
        try:
            _transfer(url, part, chunk=chunk, progress=progress, timeout=timeout, label=label)
            return
        except _Retryable as err:
            attempt += 1
            if attempt > retries:
                raise DownloadError(f"download of {url} failed after {attempt} attempts: {err}") from err
            delay = backoff * min(2 ** (attempt - 1), 30)
            log.warning(
                "download of %s interrupted (%s); retry %d/%d in %.1f s", url, err, attempt, retries, delay
            )
            time.sleep(delay)


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    """Open ``url`` (from byte ``offset``); classify failures as fatal or retryable."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:
            raise _RangeNotSatisfiable() from None
        if err.code >= 500 or err.code in (408, 429):
            raise _Retryable(f"HTTP {err.code} {err.reason}") from None
        raise DownloadError(f"cannot download {url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Retryable(f"{type(err).__name__}: {getattr(err, 'reason', err)}") from None


def _transfer(url: str, part: Path, *, chunk: int, progress: bool, timeout: float, label: str) -> None:
    """One attempt: request the missing bytes of ``part`` and append them."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset, timeout)
    except _RangeNotSatisfiable:
        log.warning("%s: server refused the resume range (416); restarting from zero", url)
        part.unlink()
        response = _open(url, 0, timeout)
        offset = 0
    with response:
        offset, total = _resume_point(response, part, offset, url)
        mode = "ab" if offset else "wb"
        try:
            with (
                open(part, mode) as f,
                tqdm(
                    total=total,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=label,
                    disable=not progress,
                    leave=False,
                ) as bar,
            ):
                while buf := response.read(chunk):
                    f.write(buf)
                    bar.update(len(buf))
        except (OSError, http.client.HTTPException) as err:
            raise _Retryable(f"{type(err).__name__}: {err}") from None
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Retryable(f"connection closed after {size} of {total} bytes")
    if total is not None and size > total:
        part.unlink()
        raise _Retryable(f"received {size} bytes, more than the announced {total}; restarting")


def _resume_point(response, part: Path, offset: int, url: str) -> tuple[int, int | None]:
    """Decide where the body starts: ``(offset to append at, total size or None)``."""
    status = getattr(response, "status", None)
    length = response.headers.get("Content-Length") if response.headers else None
    length = int(length) if length and length.isdigit() else None
    if offset and status == 206:
        match = _CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != offset:
            part.unlink()
            raise _Retryable(f"unexpected Content-Range {response.headers.get('Content-Range')!r}")
        total = None if match.group(3) == "*" else int(match.group(3))
        if total is None and length is not None:
            total = offset + length
        log.info("%s: resuming at byte %d", url, offset)
        return offset, total
    if offset:
        log.warning("%s: server ignored the Range request (status %s); restarting from zero", url, status)
    return 0, length
