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

from bacalhau.asgi_server import MAX_HEAD_BYTES, BoundedHttpTools, bound_port, serve


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
