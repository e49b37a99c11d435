"""Fixtures shared by the orchestrator tests: a real SQLite job store, a node manager on a real node
store with a fake monotonic clock, and an evaluation broker. A test module may define its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tests.orchestrator.node_harness import FakeMonotonic

from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from bacalhau.orchestrator.node_store import SQLiteNodeStore
from bacalhau.orchestrator.nodes import NodeManager


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteJobStore]:
    opened = SQLiteJobStore(path=tmp_path / "orchestrator" / "jobs.db")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[NodeManager]:
    node_store = SQLiteNodeStore(path=tmp_path / "orchestrator" / "nodes.db")
    try:
        yield NodeManager(store=node_store, monotonic_s=FakeMonotonic())
    finally:
        node_store.close()


@pytest.fixture
def broker() -> EvaluationBroker:
    return EvaluationBroker()
