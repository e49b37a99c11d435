"""Fixtures shared by the orchestrator tests: a real SQLite job store, the node store's file, clocks
that move only when told to, a record of membership events, a node manager on a real node store,
an evaluation broker, and an orchestrator (no workers: a test drives evaluations itself). A test module
may define its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tests.orchestrator.node_harness import FakeMonotonic, make_orchestrator, stop

from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from bacalhau.orchestrator.node_store import SQLiteNodeStore
from bacalhau.orchestrator.nodes import NodeEvent, NodeManager
from bacalhau.orchestrator.service import Orchestrator
from factories import FakeClock


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteJobStore]:
    opened = SQLiteJobStore(path=tmp_path / "orchestrator" / "jobs.db")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def nodes_db(tmp_path: Path) -> Path:
    """Where the node store keeps its records (not created yet)."""
    return tmp_path / "orchestrator" / "nodes.db"


@pytest.fixture
def clock() -> FakeClock:
    """Wall-clock nanoseconds that move only when a test moves them (no tick per read)."""
    return FakeClock(tick_ns=0)


@pytest.fixture
def mono() -> FakeMonotonic:
    """The monotonic clock node liveness is measured on."""
    return FakeMonotonic()


@pytest.fixture
def events() -> list[NodeEvent]:
    """Collects the membership events a test's node manager emits (subscribe it with `on_change`)."""
    return []


@pytest.fixture
def nodes(nodes_db: Path, mono: FakeMonotonic) -> Iterator[NodeManager]:
    node_store = SQLiteNodeStore(path=nodes_db)
    try:
        yield NodeManager(store=node_store, monotonic_s=mono)
    finally:
        node_store.close()


@pytest.fixture
def broker() -> EvaluationBroker:
    return EvaluationBroker()


@pytest.fixture
async def orchestrator(tmp_path: Path, mono: FakeMonotonic) -> AsyncIterator[Orchestrator]:
    """A real orchestrator (SQLite store, node manager) in `tmp_path`, its workers not started."""
    started = make_orchestrator(tmp_path, monotonic=mono)
    try:
        yield started
    finally:
        await stop(started)
