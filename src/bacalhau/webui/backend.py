"""The API the UI talks to (the node's own, or `WebUI.Backend`), with the caller's credentials.

Every page and fragment opens a client for its request with the Authorization header of the
browser's session (session.py), or none; the API decides what the caller may see and do, exactly
as for the CLI. Nothing here reads the orchestrator's store: the UI works against any bacalhau-py
orchestrator reachable over HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from starlette.requests import HTTPConnection

from bacalhau.client import AsyncClient
from bacalhau.webui.session import COOKIE, Sessions

API_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Backend:
    """Where the API is and how to trust it."""

    base_url: str
    verify_tls: bool = True
    ca_file: str = ""
    # Tests hand an in-process API here (httpx.ASGITransport); None: HTTP to base_url.
    transport: httpx.AsyncBaseTransport | None = None

    def client(self, authorization: str, *, timeout_s: float | None = API_TIMEOUT_S) -> AsyncClient:
        """An API client sending `authorization` ("" for none), never the node's environment's."""
        return AsyncClient(
            base_url=self.base_url,
            timeout_s=timeout_s,
            headers={"Authorization": authorization} if authorization else {},
            verify_tls=self.verify_tls,
            ca_file=self.ca_file,
            env_credentials=False,
            transport=self.transport,
        )


def sessions(conn: HTTPConnection) -> Sessions:
    """The app's session table."""
    found: Sessions = conn.app.state.sessions
    return found


def authorization(conn: HTTPConnection) -> str:
    """The Authorization header of the request's session ("" when not logged in)."""
    return sessions(conn).authorization(conn.cookies.get(COOKIE))


@asynccontextmanager
async def api(conn: HTTPConnection, *, timeout_s: float | None = API_TIMEOUT_S) -> AsyncIterator[AsyncClient]:
    """An API client for this request, with its session's credentials (never the node's environment's)."""
    backend: Backend = conn.app.state.backend
    client = backend.client(authorization(conn), timeout_s=timeout_s)
    try:
        yield client
    finally:
        await client.aclose()
