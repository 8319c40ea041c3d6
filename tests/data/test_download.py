"""Downloads against a local HTTP server on 127.0.0.1 (nothing reaches the internet)."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sva.data.download import ChecksumError, DownloadError, download, fetch, part_path, sha256_file

DATA = bytes(range(256)) * 1200  # 300 KiB, several chunks
SHA = hashlib.sha256(DATA).hexdigest()
CHUNK = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``. Modes: ``range`` (honours Range), ``norange`` (ignores
    it), ``flaky`` (first answer per path stops half-way), ``error500``."""

    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        if srv.mode == "error500":
            self.send_error(500, "Internal Server Error")
            return
        if srv.mode == "range" and rng:
            self._send_range(data, rng)
            return
        body = data
        if srv.mode == "flaky" and self.path not in srv.cut:
            srv.cut.add(self.path)
            body = data[: len(data) // 2]
            self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        srv.sent += len(body)  # count first: the client may finish before write() returns
        self.wfile.write(body)

    def _send_range(self, data: bytes, rng: str) -> None:
        start = int(re.match(r"bytes=(\d+)-$", rng).group(1))
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start:]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.server.sent += len(body)
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.files: dict[str, bytes] = {"/data.bin": DATA}
        self.requests: list[tuple[str, str | None]] = []
        self.cut: set[str] = set()
        self.sent = 0

    def url(self, path: str = "/data.bin") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


def _serve(mode: str) -> Iterator[_Server]:
    srv = _Server(mode)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def server() -> Iterator[_Server]:
    yield from _serve("range")


@pytest.fixture
def norange_server() -> Iterator[_Server]:
    yield from _serve("norange")


@pytest.fixture
def flaky_server() -> Iterator[_Server]:
    yield from _serve("flaky")


@pytest.fixture
def error_server() -> Iterator[_Server]:
    yield from _serve("error500")


def test_full_download_with_checksum(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "data.bin"
    out = download(server.url(), dest, SHA, chunk=CHUNK, progress=False)
    assert out == dest
    assert dest.read_bytes() == DATA
    assert not part_path(dest).exists()
    assert server.requests == [("/data.bin", None)]


def test_checksum_is_case_insensitive(server: _Server, tmp_path: Path) -> None:
    assert fetch(server.url(), tmp_path / "d.bin", SHA.upper(), progress=False).verified


def test_checksum_mismatch_deletes_and_names_everything(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        download(server.url(), dest, wrong, chunk=CHUNK, progress=False)
    msg = str(info.value)
    assert str(dest) in msg and wrong in msg and SHA in msg
    assert info.value.expected == wrong and info.value.actual == SHA
    assert not dest.exists() and not part_path(dest).exists()
    assert list(tmp_path.iterdir()) == []


def test_resume_sends_range_and_appends(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    done = 100_000
    part_path(dest).write_bytes(DATA[:done])
    download(server.url(), dest, SHA, chunk=CHUNK, progress=False)
    assert server.requests == [("/data.bin", f"bytes={done}-")]
    assert server.sent == len(DATA) - done  # only the missing bytes travelled
    assert dest.read_bytes() == DATA
    assert not part_path(dest).exists()


def test_server_ignoring_range_restarts_from_zero(norange_server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    part_path(dest).write_bytes(b"garbage" * 1000)  # not a prefix: must be discarded
    download(norange_server.url(), dest, SHA, chunk=CHUNK, progress=False)
    assert norange_server.requests == [("/data.bin", "bytes=7000-")]
    assert dest.read_bytes() == DATA


def test_range_not_satisfiable_restarts(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    part_path(dest).write_bytes(DATA + b"extra")  # longer than the file: 416
    download(server.url(), dest, SHA, chunk=CHUNK, progress=False)
    assert [r for _, r in server.requests] == [f"bytes={len(DATA) + 5}-", None]
    assert dest.read_bytes() == DATA


def test_interrupted_transfer_is_retried_with_range(flaky_server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    result = fetch(flaky_server.url(), dest, SHA, chunk=CHUNK, progress=False, backoff=0)
    assert result.verified and dest.read_bytes() == DATA
    assert [r for _, r in flaky_server.requests] == [None, f"bytes={len(DATA) // 2}-"]


def test_404_is_a_clear_error(server: _Server, tmp_path: Path) -> None:
    url = server.url("/missing.rar")
    dest = tmp_path / "missing.rar"
    with pytest.raises(DownloadError, match="404") as info:
        download(url, dest, None, progress=False)
    assert url in str(info.value)
    assert not dest.exists() and not part_path(dest).exists()
    assert len(server.requests) == 1  # a 4xx is not retried


def test_server_errors_are_retried_then_reported(error_server: _Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="after 3 attempts") as info:
        fetch(error_server.url(), tmp_path / "d.bin", SHA, progress=False, retries=2, backoff=0)
    assert error_server.url() in str(info.value)
    assert len(error_server.requests) == 3


def test_unreachable_host_names_the_url(tmp_path: Path) -> None:
    srv = _Server("range")  # bound, never served, then closed: connection refused
    url = srv.url()
    srv.server_close()
    with pytest.raises(DownloadError) as info:
        fetch(url, tmp_path / "d.bin", None, progress=False, retries=1, backoff=0, timeout=2)
    assert url in str(info.value)


def test_complete_file_is_not_downloaded_again(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    dest.write_bytes(DATA)
    result = fetch(server.url(), dest, SHA, progress=False)
    assert result.reused and result.verified
    assert server.requests == []


def test_corrupt_existing_file_is_replaced(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"corrupt")
    result = fetch(server.url(), dest, SHA, progress=False)
    assert not result.reused and dest.read_bytes() == DATA
    assert len(server.requests) == 1


def test_no_checksum_warns_and_records_hash(
    server: _Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sva.data.download"):
        result = fetch(server.url(), tmp_path / "d.bin", None, progress=False)
    assert result.sha256 == SHA and not result.verified and result.size == len(DATA)
    assert any("UNVERIFIED" in r.getMessage() and SHA in r.getMessage() for r in caplog.records)


def test_progress_bar_does_not_break(server: _Server, tmp_path: Path) -> None:
    assert download(server.url(), tmp_path / "d.bin", SHA, progress=True).read_bytes() == DATA


def test_bad_checksum_string_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        download("http://127.0.0.1:9/x", tmp_path / "x", "abc", progress=False)


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(DATA)
    assert sha256_file(path, chunk=1000) == SHA
