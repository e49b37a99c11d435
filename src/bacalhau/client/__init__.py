"""Typed HTTP client for Bacalhau's /api/v1: `Client` (sync) and `AsyncClient` (asyncio), both httpx.

Every method returns our pydantic models (bacalhau.models) and raises BacalhauError on failure, with
the server's code, message and hint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bacalhau.client.sync import Client

if TYPE_CHECKING:
    from bacalhau.client.aio import AsyncClient

__all__ = ["AsyncClient", "Client"]


def __getattr__(name: str) -> Any:
    # AsyncClient pulls in asyncio; the CLI (sync) should not pay for it at start-up.
    if name == "AsyncClient":
        from bacalhau.client.aio import AsyncClient

        return AsyncClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
