"""`s3` inputs through the node's input cache, against a real S3 server (SeaweedFS, see tests/s3_env.py)
behind a proxy that records every request line (no mocks)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.s3.fixtures import bucket, s3_env, seaweed

from bacalhau.compute.storage.base import PreparedInput
from bacalhau.compute.storage.input_cache import InputCache
from bacalhau.compute.storage.s3 import S3Storage
from bacalhau.models.errors import ErrorCode, StorageError
from bacalhau.models.job import InputSource, SpecConfig
from s3_env import SeaweedS3

__all__ = ["bucket", "s3_env", "seaweed"]  # fixtures, imported to be found by pytest

_REQUEST_LINE = re.compile(rb"^(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/1\.[01]\r?$")


class RecordingProxy:
    """A TCP proxy to the S3 gateway recording each request's method and path. The node's requests
    (HEAD, GET) carry no body, so every request starts on a line of its own."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests: list[tuple[str, str]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def count(self, method: str, path_prefix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(path_prefix))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        for pipe in (self._pipe(reader, up_writer, record=True), self._pipe(up_reader, writer, record=False)):
            task = asyncio.create_task(pipe)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, record: bool) -> None:
        pending = b""
        try:
            while data := await reader.read(1 << 16):
                if record:
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if match := _REQUEST_LINE.match(line):
                            self.requests.append((match.group(1).decode(), match.group(2).decode()))
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()


@pytest.fixture
async def proxy(seaweed: SeaweedS3) -> AsyncIterator[RecordingProxy]:
    made = RecordingProxy(seaweed.ports["s3.port"])
    await made.start()
    try:
        yield made
    finally:
        await made.stop()


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[S3Storage]:
    cache = InputCache(root=tmp_path / "input-cache", max_bytes=1 << 20)
    made = S3Storage(max_bytes=1 << 20, cache=cache)
    try:
        yield made
    finally:
        await made.stop()
        cache.close()


def s3_input(**params: Any) -> InputSource:
    return InputSource(Source=SpecConfig(Type="s3", Params=params), Alias="data", Target="/inputs")


def tree(prepared: PreparedInput) -> dict[str, bytes]:
    root = prepared.host_path
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def test_a_second_staging_of_an_object_is_a_head_and_no_get(
    provider: S3Storage, proxy: RecordingProxy, s3_env: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    s3_env.put(bucket, "data/report.csv", b"a,b\n1,2\n")
    source = s3_input(Bucket=bucket, Key="data/report.csv", Endpoint=proxy.endpoint)
    assert not await provider.has_locally(source)

    first = await provider.prepare(source, tmp_path / "a")
    assert await provider.has_locally(source)
    second = await provider.prepare(source, tmp_path / "b")

    assert tree(first) == tree(second) == {"report.csv": b"a,b\n1,2\n"}
    object_path = f"/{bucket}/data/report.csv"
    assert proxy.count("GET", object_path) == 1
    assert proxy.count("HEAD", object_path) == 2


async def test_a_changed_object_is_fetched_again(
    provider: S3Storage, proxy: RecordingProxy, s3_env: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    s3_env.put(bucket, "obj.txt", b"version 1")
    source = s3_input(Bucket=bucket, Key="obj.txt", Endpoint=proxy.endpoint)
    old = await provider.prepare(source, tmp_path / "a")

    s3_env.put(bucket, "obj.txt", b"version 2")
    new = await provider.prepare(source, tmp_path / "b")

    assert tree(old) == {"obj.txt": b"version 1"}
    assert tree(new) == {"obj.txt": b"version 2"}
    assert proxy.count("GET", f"/{bucket}/obj.txt") == 2


async def test_a_prefix_is_revalidated_by_one_listing_and_no_object_gets(
    provider: S3Storage, proxy: RecordingProxy, s3_env: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    s3_env.put(bucket, "set/a.csv", b"a")
    s3_env.put(bucket, "set/sub/b.csv", b"bb")
    source = s3_input(Bucket=bucket, Key="set/", Endpoint=proxy.endpoint)
    first = await provider.prepare(source, tmp_path / "a")
    gets_after_first = proxy.count("GET", f"/{bucket}/set/")
    requests_before = len(proxy.requests)

    second = await provider.prepare(source, tmp_path / "b")

    assert tree(first) == tree(second) == {"a.csv": b"a", "sub/b.csv": b"bb"}
    assert gets_after_first == 2
    assert proxy.count("GET", f"/{bucket}/set/") == 2  # no object fetched again
    assert [method for method, _ in proxy.requests[requests_before:]] == ["GET"]  # the listing

    s3_env.put(bucket, "set/c.csv", b"c")
    third = await provider.prepare(source, tmp_path / "c")
    assert tree(third) == {"a.csv": b"a", "c.csv": b"c", "sub/b.csv": b"bb"}


@pytest.mark.parametrize("missing", ["bucket", "key"])
async def test_a_missing_bucket_or_key_is_reported_as_without_the_cache(
    provider: S3Storage, s3_env: SeaweedS3, bucket: str, tmp_path: Path, missing: str
) -> None:
    source = s3_input(
        Bucket=f"{bucket}-nope" if missing == "bucket" else bucket, Key="nope.txt", Endpoint=s3_env.endpoint
    )
    uncached = S3Storage(max_bytes=1 << 20)
    try:
        with pytest.raises(StorageError) as without:
            await uncached.prepare(source, tmp_path / "plain")
    finally:
        await uncached.stop()

    with pytest.raises(StorageError) as cached:
        await provider.prepare(source, tmp_path / "cached")

    assert cached.value.message == without.value.message
    assert cached.value.code == without.value.code == ErrorCode.NotFound
    assert list((tmp_path / "cached").iterdir()) == []
