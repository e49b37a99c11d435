"""Serving an ASGI app with uvicorn inside the node's event loop: the API and the web UI both.

uvicorn's own `serve()` installs signal handlers; the node keeps those (its handlers stop the whole
node in order), so the server runs through `_serve()` and is stopped by `should_exit`, from the
node's exit stack. A port that cannot be bound is a ConfigurationError naming the setting to change.
"""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn

from bacalhau.models.errors import ConfigurationError


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
