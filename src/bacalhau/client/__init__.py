"""Typed HTTP client for Bacalhau's /api/v1: `Client` (sync) and `AsyncClient` (asyncio).

Every method returns our pydantic models (bacalhau.models) and raises BacalhauError on failure, with
the server's code, message and hint. `Client.raw` returns the decoded JSON instead, for callers that
read it themselves without importing the models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bacalhau.client.aio import AsyncClient
    from bacalhau.client.sync import Client

__all__ = ["AsyncClient", "Client"]


def __getattr__(name: str) -> Any:
    # Both are imported on first use: importing a submodule (routes, address) runs this package first,
    # and the CLI's fast paths must not pay for asyncio or httpx there.
    if name == "Client":
        from bacalhau.client.sync import Client

        return Client
    if name == "AsyncClient":
        from bacalhau.client.aio import AsyncClient

        return AsyncClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
