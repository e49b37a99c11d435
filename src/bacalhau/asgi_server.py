"""Serving an ASGI app with uvicorn inside the node's event loop: the API and the web UI both.

uvicorn's own `serve()` installs signal handlers; the node keeps those (its handlers stop the whole
node in order), so the server runs through `_serve()` and is stopped by `should_exit`, from the
node's exit stack. A port that cannot be bound is a ConfigurationError naming the setting to change.

HTTP is parsed by httptools (llhttp, in C: an empty route answers 6,500 requests/s here against 3,750
with h11), with a bound on a request's head that httptools itself lacks: it gathers a header line
whole in memory, so a 200 MB header would be read entirely. `BoundedHttpTools` answers 431 and closes
once a head passes MAX_HEAD_BYTES (64 KiB; Go's net/http allows 1 MB).
"""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from bacalhau.models.errors import ConfigurationError

MAX_HEAD_BYTES = 64 * 1024


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing (431, then close) a request head over MAX_HEAD_BYTES.

    Bytes are counted from the start of a message until its headers are complete; a chunk that
    completes the head (and carries a body) is never counted against it.
    """

    _head_bytes = 0
    _in_head = True

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
