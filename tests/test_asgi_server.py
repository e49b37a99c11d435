"""The HTTP server every listener of a node uses: httptools with a bound on a request's head.

A real uvicorn server in this process on a free loopback port, spoken to over raw sockets, so that
what goes over the wire (the status line, the connection closing) is what is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bacalhau.asgi_server import COALESCE_BYTES, MAX_HEAD_BYTES, BoundedHttpTools, CoalescedWrites, bound_port, serve


async def _echo_length(request: Request) -> PlainTextResponse:
    body = await request.body()
    return PlainTextResponse(f"{request.method} {len(body)} {request.headers.get('x-pad', '')[:3]}")


@pytest.fixture
async def port() -> AsyncIterator[int]:
    app = Starlette(routes=[Route("/echo", _echo_length, methods=["GET", "PUT"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", log_config=None, lifespan="off",
                            http=BoundedHttpTools)
    async with contextlib.AsyncExitStack() as stack:
        server = await serve(stack, config, what="test server", hint="")
        yield bound_port(server, default=0)


async def _exchange(port: int, *chunks: bytes) -> bytes:
    """Send `chunks` (stopping early if the server closes), then read the answer until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for chunk in chunks:
            writer.write(chunk)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            if reader.at_eof():
                break
        answer = b""
        with contextlib.suppress(ConnectionError):
            while data := await asyncio.wait_for(reader.read(65536), 10):  # every request here ends with a close
                answer += data
        return answer
    finally:
        writer.close()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_a_head_under_the_bound_is_served(port: int) -> None:
    pad = b"a" * (MAX_HEAD_BYTES - 1024)
    answer = await _exchange(port, b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Pad: " + pad + b"\r\nConnection: close\r\n\r\n")
    assert _status(answer) == 200 and answer.endswith(b"GET 0 aaa")


async def test_a_head_over_the_bound_is_refused_with_431_and_the_connection_closed(port: int) -> None:
    head = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Pad: "
    answer = await _exchange(port, head, *(b"a" * 16384 for _ in range(64)))  # 1 MiB that never ends
    assert _status(answer) == 431, answer[:200]
    assert b"larger than 64 KiB" in answer


async def test_a_big_body_behind_a_small_head_is_not_counted_against_the_head(port: int) -> None:
    body = b"x" * (4 * MAX_HEAD_BYTES)
    request = b"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    answer = await _exchange(port, request + body)  # head and body in one write
    assert _status(answer) == 200 and answer.endswith(b"PUT %d " % len(body))


async def test_the_bound_is_per_request_on_a_kept_alive_connection(port: int) -> None:
    """Pipelined requests whose heads together pass the bound are each within it: all are served."""
    one = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"b" * (MAX_HEAD_BYTES // 2) + b"\r\n\r\n"
    last = b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = await _exchange(port, one, one, one, last)
    assert answer.count(b"HTTP/1.1 200") == 4, answer[:300]


async def test_malformed_http_is_a_400(port: int) -> None:
    answer = await _exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
    assert _status(answer) == 400


# -- CoalescedWrites: a response's head and body in one send ----------------------------------------------
class _Peer(asyncio.Protocol):
    """The receiving end of a real loopback connection: what arrived, and whether it was closed."""

    def __init__(self) -> None:
        self.data = b""
        self.more = asyncio.Event()
        self.closed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.more.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


Connection = tuple[CoalescedWrites, list[bytes], _Peer]


@pytest.fixture
async def connection() -> AsyncIterator[Connection]:
    """A CoalescedWrites over a real TCP transport, the sends that transport was asked for, and the peer."""
    loop = asyncio.get_running_loop()
    peer = _Peer()
    server = await loop.create_server(lambda: peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    sent: list[bytes] = []
    real_write = transport.write

    def spy(data: bytes | bytearray | memoryview) -> None:  # counts the sends, then sends for real
        sent.append(bytes(data))
        real_write(data)

    transport.write = spy  # type: ignore[method-assign]
    try:
        yield CoalescedWrites(transport, loop), sent, peer
    finally:
        transport.close()
        server.close()


async def _arrived(peer: _Peer, expected: bytes) -> None:
    async with asyncio.timeout(5):
        while len(peer.data) < len(expected):
            peer.more.clear()
            await peer.more.wait()
    assert peer.data == expected


async def test_a_head_and_body_written_in_one_step_leave_in_one_send(connection: Connection) -> None:
    writes, sent, peer = connection
    writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    writes.write(b"{}")
    assert sent == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await _arrived(peer, sent[0])


async def test_a_lone_small_write_is_sent_on_the_next_turn_of_the_loop(connection: Connection) -> None:
    writes, sent, peer = connection
    writes.write(b"chunk")
    assert sent == [] and writes.get_write_buffer_size() == 5  # held, and counted as waiting
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert sent == [b"chunk"]
    await _arrived(peer, b"chunk")


async def test_a_big_write_is_not_held(connection: Connection) -> None:
    writes, sent, _ = connection
    big = b"x" * COALESCE_BYTES
    writes.write(big)
    assert sent == [big]


async def test_close_sends_what_is_held_first(connection: Connection) -> None:
    writes, sent, peer = connection
    writes.write(b"last words")
    writes.close()
    assert sent == [b"last words"]
    async with asyncio.timeout(5):
        await peer.closed.wait()
    assert peer.data == b"last words"
