"""`urlDownload` inputs through the node's input cache, against a real HTTP server on 127.0.0.1 that
counts what it serves and answers conditional requests (no mocks)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from input_cache_probe import ObservedCache

from bacalhau.compute.storage.base import PreparedInput
from bacalhau.compute.storage.input_cache import InputCache
from bacalhau.compute.storage.url import UrlStorage
from bacalhau.models.errors import StorageError
from bacalhau.models.job import InputSource, SpecConfig

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"


@dataclass
class Served:
    """What the server sent: full bodies (200) and bodies saved (304), per path, and body bytes in all."""

    full: dict[str, int] = field(default_factory=dict)
    not_modified: dict[str, int] = field(default_factory=dict)
    body_bytes: int = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/gated" and not self.server.gate_reached.is_set():
            self.server.gate_reached.set()
            self.server.gate.wait(30)
        body = self.server.contents.get(path)
        if body is None:
            self._send(404, b"no such file", {})
            return
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        headers: dict[str, str] = {}
        if path.startswith("/lm/"):
            headers["Last-Modified"] = LAST_MODIFIED
            fresh = self.headers.get("If-Modified-Since") == LAST_MODIFIED
        elif path.startswith("/plain/"):
            fresh = False  # no validator at all
        else:
            headers["ETag"] = etag
            fresh = self.headers.get("If-None-Match") == etag
        if path == "/named":
            headers["Content-Disposition"] = 'attachment; filename="report.csv"'
        with self.server.lock:
            counts = self.server.served.not_modified if fresh else self.server.served.full
            counts[path] = counts.get(path, 0) + 1
            self.server.served.body_bytes += 0 if fresh else len(body)
        if fresh:
            self._send(304, b"", headers)
        else:
            self._send(200, body, headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    contents: dict[str, bytes]
    served: Served
    lock: threading.Lock
    gate: threading.Event
    gate_reached: threading.Event


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.contents = {}
    srv.served = Served()
    srv.lock = threading.Lock()
    srv.gate, srv.gate_reached = threading.Event(), threading.Event()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.gate.set()
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ObservedCache]:
    made = ObservedCache(root=tmp_path / "node" / "compute" / "input-cache", max_bytes=1 << 20)
    try:
        yield made
    finally:
        made.close()


def url_of(srv: _Server, path: str) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


def url_input(url: str, checksum: str = "") -> InputSource:
    params: dict[str, object] = {"URL": url}
    if checksum:
        params["Checksum"] = checksum
    return InputSource(Source=SpecConfig(Type="urlDownload", Params=params), Target="/inputs/data", Alias="data")


def storage(cache: InputCache | None) -> UrlStorage:
    return UrlStorage(read_timeout_s=5.0, max_retries=0, max_bytes=1 << 20, retry_backoff_s=0.01, cache=cache)


def files(prepared: PreparedInput) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(prepared.host_path.iterdir())}


async def test_three_stagings_download_once_and_revalidate_twice(
    server: _Server, cache: InputCache, tmp_path: Path
) -> None:
    server.contents["/data/file.bin"] = b"0123456789" * 100
    provider, source = storage(cache), url_input(url_of(server, "/data/file.bin"))

    staged = [await provider.prepare(source, tmp_path / f"exec-{n}") for n in range(3)]

    assert server.served.full == {"/data/file.bin": 1}
    assert server.served.not_modified == {"/data/file.bin": 2}
    assert server.served.body_bytes == 1000
    assert [files(p) for p in staged] == [{"file.bin": b"0123456789" * 100}] * 3
    assert [p.host_path for p in staged] == [tmp_path / f"exec-{n}" / "0" for n in range(3)]
    assert all(p.read_only and p.owned for p in staged)
    stats = cache.stats().to_wire()
    assert (stats["Hits"], stats["Misses"], stats["Entries"], stats["SizeBytes"]) == (2, 1, 1, 1000)


async def test_a_staged_hit_is_read_only_and_its_cleanup_leaves_the_cache_alone(
    server: _Server, cache: InputCache, tmp_path: Path
) -> None:
    server.contents["/data/file.bin"] = b"kept"
    provider, source = storage(cache), url_input(url_of(server, "/data/file.bin"))
    first = await provider.prepare(source, tmp_path / "a")

    await provider.cleanup(first)
    second = await provider.prepare(source, tmp_path / "b")

    assert not first.host_path.exists()
    assert files(second) == {"file.bin": b"kept"}
    assert stat.S_IMODE((second.host_path / "file.bin").stat().st_mode) & 0o222 == 0
    assert server.served.not_modified == {"/data/file.bin": 1}


async def test_changed_content_is_fetched_again_and_replaces_the_entry(
    server: _Server, cache: InputCache, tmp_path: Path
) -> None:
    server.contents["/data/file.bin"] = b"version 1"
    provider, source = storage(cache), url_input(url_of(server, "/data/file.bin"))
    old = await provider.prepare(source, tmp_path / "a")

    server.contents["/data/file.bin"] = b"version 2, longer"
    new = await provider.prepare(source, tmp_path / "b")
    again = await provider.prepare(source, tmp_path / "c")

    assert files(old) == {"file.bin": b"version 1"}  # an earlier staging keeps what it was given
    assert files(new) == files(again) == {"file.bin": b"version 2, longer"}
    assert server.served.full == {"/data/file.bin": 2}
    assert server.served.not_modified == {"/data/file.bin": 1}
    assert cache.stats().entries == 1


async def test_last_modified_is_revalidated_with_if_modified_since(
    server: _Server, cache: InputCache, tmp_path: Path
) -> None:
    server.contents["/lm/file.bin"] = b"dated"
    provider, source = storage(cache), url_input(url_of(server, "/lm/file.bin"))

    await provider.prepare(source, tmp_path / "a")
    staged = await provider.prepare(source, tmp_path / "b")

    assert files(staged) == {"file.bin": b"dated"}
    assert (server.served.full, server.served.not_modified) == ({"/lm/file.bin": 1}, {"/lm/file.bin": 1})


async def test_a_url_without_a_validator_is_not_cached(
    server: _Server, cache: InputCache, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.contents["/plain/file.bin"] = b"no etag"
    provider, source = storage(cache), url_input(url_of(server, "/plain/file.bin"))

    with caplog.at_level(logging.DEBUG, logger="bacalhau.compute.storage.url"):
        staged = [await provider.prepare(source, tmp_path / f"exec-{n}") for n in range(2)]

    assert server.served.full == {"/plain/file.bin": 2}
    assert [files(p) for p in staged] == [{"file.bin": b"no etag"}] * 2
    assert not await provider.has_locally(source)
    assert "neither an ETag nor a Last-Modified" in caplog.text
    assert cache.stats().entries == 0


async def test_content_disposition_names_the_file_on_a_miss_and_on_a_hit(
    server: _Server, cache: InputCache, tmp_path: Path
) -> None:
    server.contents["/named"] = b"a,b\n"
    source = url_input(url_of(server, "/named"))
    uncached = await storage(None).prepare(source, tmp_path / "plain")

    miss = await storage(cache).prepare(source, tmp_path / "miss")
    hit = await storage(cache).prepare(source, tmp_path / "hit")

    assert files(uncached) == files(miss) == files(hit) == {"report.csv": b"a,b\n"}


async def test_has_locally_is_true_only_once_a_staging_cached_the_url(
    server: _Server, cache: InputCache, tmp_path: Path
) -> None:
    server.contents["/data/file.bin"] = b"x"
    provider, source = storage(cache), url_input(url_of(server, "/data/file.bin"))
    assert not await provider.has_locally(source)

    await provider.prepare(source, tmp_path / "a")

    assert await provider.has_locally(source)
    assert not await provider.has_locally(url_input(url_of(server, "/data/other.bin")))
    assert not await storage(None).has_locally(source)
    assert server.served.full == {"/data/file.bin": 1}  # has_locally asked the server nothing
    assert server.served.not_modified == {}


async def test_a_matching_checksum_is_a_hit_without_any_request(
    server: _Server, cache: InputCache, tmp_path: Path
) -> None:
    body = b"content-addressed"
    server.contents["/data/file.bin"] = body
    provider = storage(cache)
    source = url_input(url_of(server, "/data/file.bin"), checksum="sha256:" + hashlib.sha256(body).hexdigest())
    await provider.prepare(url_input(url_of(server, "/data/file.bin")), tmp_path / "a")  # cached without a Checksum

    staged = await provider.prepare(source, tmp_path / "b")

    assert files(staged) == {"file.bin": body}
    assert (server.served.full, server.served.not_modified) == ({"/data/file.bin": 1}, {})
    assert cache.stats().hits == 1


async def test_a_wrong_checksum_still_fails_when_the_cached_file_is_fresh(
    server: _Server, cache: InputCache, tmp_path: Path
) -> None:
    server.contents["/data/file.bin"] = b"the bytes"
    provider = storage(cache)
    await provider.prepare(url_input(url_of(server, "/data/file.bin")), tmp_path / "a")

    with pytest.raises(StorageError, match="checksum mismatch"):
        await provider.prepare(url_input(url_of(server, "/data/file.bin"), checksum="0" * 64), tmp_path / "b")

    assert list((tmp_path / "b").iterdir()) == []


async def test_two_concurrent_stagings_of_one_url_download_it_once(
    server: _Server, cache: ObservedCache, tmp_path: Path
) -> None:
    server.contents["/gated"] = b"shared" * 1000
    provider, source = storage(cache), url_input(url_of(server, "/gated"))
    first = asyncio.create_task(provider.prepare(source, tmp_path / "a"))
    await asyncio.to_thread(server.gate_reached.wait, 30)  # the first download is under way, held back
    second = asyncio.create_task(provider.prepare(source, tmp_path / "b"))
    await cache.wait_for_claims(2)  # the second staging is queued behind the first

    server.gate.set()
    staged = await asyncio.gather(first, second)

    assert [files(p) for p in staged] == [{"gated": b"shared" * 1000}] * 2
    assert server.served.full == {"/gated": 1}
    assert server.served.not_modified == {"/gated": 1}
    assert cache.stats().entries == 1


async def test_a_failed_download_leaves_nothing_in_the_cache_or_the_work_dir(
    server: _Server, cache: InputCache, tmp_path: Path
) -> None:
    provider, source = storage(cache), url_input(url_of(server, "/data/missing.bin"))

    with pytest.raises(StorageError, match="HTTP 404"):
        await provider.prepare(source, tmp_path / "a")

    assert list((tmp_path / "a").iterdir()) == []
    assert list((cache.root / "scratch").iterdir()) == []
    assert cache.stats().entries == 0


async def test_a_cache_that_cannot_be_opened_costs_the_hits_not_the_staging(server: _Server, tmp_path: Path) -> None:
    server.contents["/data/file.bin"] = b"still staged"
    (tmp_path / "not-a-folder").write_bytes(b"")
    broken = InputCache(root=tmp_path / "not-a-folder" / "cache", max_bytes=1 << 20)
    provider, source = storage(broken), url_input(url_of(server, "/data/file.bin"))

    staged = [await provider.prepare(source, tmp_path / f"exec-{n}") for n in range(2)]

    assert [files(p) for p in staged] == [{"file.bin": b"still staged"}] * 2
    assert server.served.full == {"/data/file.bin": 2}
    assert not await provider.has_locally(source)
