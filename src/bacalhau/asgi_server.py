"""Serving an ASGI app with uvicorn inside the node's event loop: the API and the web UI both.

uvicorn's own `serve()` installs signal handlers; the node keeps those (its handlers stop the whole
node in order), so the server runs through `_serve()` and is stopped by `should_exit`, from the
node's exit stack. A port that cannot be bound is a ConfigurationError naming the setting to change.

HTTP is parsed by httptools (llhttp, in C: an empty route answers 6,500 requests/s here against 3,750
with h11), with a bound on a request's head that httptools itself lacks: it gathers a header line
whole in memory, so a 200 MB header would be read entirely. `BoundedHttpTools` answers 431 and closes
once a head passes MAX_HEAD_BYTES (64 KiB; Go's net/http allows 1 MB). It also sends a response's
head and body in one write (`CoalescedWrites`): uvicorn writes them apart, two sends and two packets
for every small JSON answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from bacalhau.models.errors import ConfigurationError

MAX_HEAD_BYTES = 64 * 1024
# What a write may hold back for the next one; more is sent at once (a big body is never copied twice).
COALESCE_BYTES = 16 * 1024


class CoalescedWrites:
    """A connection's transport that sends a write together with the one right after it.

    uvicorn writes a response's head, then its body, as two calls in the same step of the request's
    task. A small write is held until the next write (both then go out as one send) or, when no other
    write comes in that step, until the next turn of the event loop (a streamed chunk, a lone head).
    Everything else, flow control included, is the wrapped transport's own.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send `data`, after what is held; hold it instead if small and nothing is held."""
        if self._held:
            data, self._held = self._held + bytes(data), b""
        elif len(data) < COALESCE_BYTES and not self._transport.is_closing():
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
            return
        self._transport.write(data)

    def _flush(self) -> None:
        if self._held:
            data, self._held = self._held, b""
            if not self._transport.is_closing():
                self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        """Send each chunk, in order."""
        for data in list_of_data:
            self.write(data)

    def close(self) -> None:
        """Send what is held, then close (the wrapped transport sends what it buffered first)."""
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        """Drop what is held and close at once."""
        self._held = b""
        self._transport.abort()

    def is_closing(self) -> bool:
        """Whether the connection is closing or closed."""
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The wrapped transport's (peername, sockname, sslcontext...)."""
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        """Bytes waiting to be sent, held ones included."""
        return len(self._held) + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        # pause_reading, resume_reading, set_protocol, write buffer limits...: the wrapped transport's.
        # (Not a subclass of asyncio.Transport: its stubs of these would raise NotImplementedError.)
        return getattr(self._transport, name)


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing (431, then close) a request head over MAX_HEAD_BYTES.

    Bytes are counted from the start of a message until its headers are complete; a chunk that
    completes the head (and carries a body) is never counted against it.
    """

    _head_bytes = 0
    _in_head = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Serve the connection through CoalescedWrites."""
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(cast(asyncio.Transport, CoalescedWrites(transport, asyncio.get_running_loop())))

    def on_message_begin(self) -> None:
        """A new request: its head is counted from here."""
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        """The head is whole: what follows is the body, never counted."""
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        """Parse `data`; refuse the request if its head is still unfinished past MAX_HEAD_BYTES."""
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self._refuse_head()

    def _refuse_head(self) -> None:
        message = b"request head larger than 64 KiB"
        self.transport.write(b"".join([
            STATUS_LINE[431], b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: ", str(len(message)).encode("ascii"), b"\r\n", b"connection: close\r\n\r\n", message,
        ]))
        self.transport.close()


async def serve(stack: contextlib.AsyncExitStack, config: uvicorn.Config, *, what: str, hint: str) -> uvicorn.Server:
    """Start `config`'s server; it stops when `stack` closes. Returns it once it listens."""
    server = uvicorn.Server(config)
    task = asyncio.create_task(server._serve())

    async def stop() -> None:
        """Ask uvicorn to finish (it closes its connections gracefully) and wait for it."""
        server.should_exit = True
        await task

    while not server.started:
        if task.done():
            with contextlib.suppress(BaseException):
                task.result()  # retrieved: uvicorn already logged why (address in use, ...)
            raise ConfigurationError(f"{what} could not listen on {config.host}:{config.port}", hint=hint)
        await asyncio.sleep(0.01)
    stack.push_async_callback(stop)
    return server


def bound_port(server: uvicorn.Server, *, default: int) -> int:
    """The port `server` listens on (the one the OS chose for port 0), `default` if it cannot tell."""
    for listener in server.servers:
        for sock in listener.sockets:
            port = sock.getsockname()[1]
            if isinstance(port, int):
                return port
    return default
