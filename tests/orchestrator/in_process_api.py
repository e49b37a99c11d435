"""A real orchestrator (SQLite stores in the test's tmp dir) and its API in process, reached through
httpx's ASGI transport: no sockets, every layer real. Fixtures, imported by the modules that use them
(the API tests, the web UI tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.orchestrator.node_harness import FakeMonotonic, make_orchestrator, stop

from bacalhau.auth.authorizer import build_authorizer
from bacalhau.config.types import BacalhauConfig
from bacalhau.models.node import BuildVersionInfo, NodeInfo
from bacalhau.orchestrator.api.app import create_app
from bacalhau.orchestrator.api.context import ApiContext
from bacalhau.orchestrator.service import Orchestrator


@pytest.fixture
async def orch(tmp_path: Path) -> AsyncIterator[Orchestrator]:
    """A real orchestrator, its workers not started; stopped (and its store closed) at the end."""
    started = make_orchestrator(tmp_path, monotonic=FakeMonotonic())
    try:
        yield started
    finally:
        await stop(started)


def api_app(orchestrator: Orchestrator, users: list[dict[str, Any]] | None = None) -> FastAPI:
    """The API of a node running `orchestrator`, with `users` (API.Auth.Users) if given."""
    cfg = BacalhauConfig.from_user({"API": {"Auth": {"Users": users or []}}})
    return create_app(ApiContext(version=BuildVersionInfo(GitVersion="v1.9.0"), node_info=NodeInfo, config=dict,
                                 orchestrator=orchestrator, authorizer=build_authorizer(cfg.api.auth)))


@pytest.fixture
async def http(orch: Orchestrator) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of that API."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api_app(orch)), base_url="http://t") as client:
        yield client
