"""Fixtures for the compute node tests: the orchestrator side of the link, a scriptable engine, a node.

`RecordingOrchestrator` is the other side of the OrchestratorService interface: it records every
message and lets a test wait for one (with a timeout, never a fixed sleep). `ScriptedExecutor` is an
Executor whose tasks do what their `Engine.Params` say (print, block until released, fail, exit with a
code), so queueing, cancellation, timeouts and log following can be driven step by step.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

# compute_factories.py sits next to this file; make it importable whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compute_executors import ScriptedExecutor
from compute_factories import make_compute_config, make_registry

from bacalhau.compute.service import ComputeNode
from bacalhau.compute.store import ExecutionStore
from bacalhau.config.types import BacalhauConfig
from bacalhau.transport.messages import (
    BidResult,
    ComputeError,
    ExecutionProgress,
    Handshake,
    NodeInfoUpdate,
    RunResult,
)

T = TypeVar("T")
WAIT_S = 10.0


class RecordingOrchestrator:
    """Records what a compute node tells the orchestrator; tests await the messages they expect."""

    def __init__(self, *, accepts_steps: bool = False) -> None:
        self.messages: list[object] = []
        self._changed = asyncio.Condition()
        self.fail_calls = False
        # False: every report comes on its own, as to a Go orchestrator (and over NCL).
        self.accepts_steps = accepts_steps

    async def _record(self, message: object) -> None:
        async with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
        if self.fail_calls:
            raise ConnectionError("orchestrator unreachable")

    async def handshake(self, request: Handshake) -> None:
        await self._record(request)

    async def update_node_info(self, request: NodeInfoUpdate) -> None:
        await self._record(request)

    async def on_bid_result(self, message: BidResult) -> None:
        await self._record(message)

    async def on_execution_progress(self, message: ExecutionProgress) -> None:
        await self._record(message)

    async def on_run_result(self, message: RunResult) -> None:
        await self._record(message)

    async def on_compute_error(self, message: ComputeError) -> None:
        await self._record(message)

    def of(self, kind: type[T], execution_id: str | None = None) -> list[T]:
        """Recorded messages of one type (for one execution, if given), in arrival order."""
        return [
            m
            for m in self.messages
            if isinstance(m, kind) and (execution_id is None or getattr(m, "execution_id", None) == execution_id)
        ]

    async def wait_for(
        self, kind: type[T], execution_id: str | None = None, where: Callable[[T], bool] = lambda _: True
    ) -> T:
        """The first recorded message of `kind` (for `execution_id`) matching `where`; waits up to WAIT_S."""
        async with asyncio.timeout(WAIT_S), self._changed:
            while True:
                for message in self.of(kind, execution_id):
                    if where(message):
                        return message
                await self._changed.wait()

    async def wait_final(self, execution_id: str) -> RunResult | ComputeError:
        """The RunResult or ComputeError that ends an execution."""
        async with asyncio.timeout(WAIT_S), self._changed:
            while True:
                for message in self.messages:
                    if isinstance(message, RunResult | ComputeError) and message.execution_id == execution_id:
                        return message
                await self._changed.wait()


@pytest.fixture
def orchestrator() -> RecordingOrchestrator:
    return RecordingOrchestrator()


@pytest.fixture
def executor() -> ScriptedExecutor:
    return ScriptedExecutor()


@pytest.fixture
def config(tmp_path: Path) -> BacalhauConfig:
    return make_compute_config(tmp_path)


@pytest.fixture
async def node(
    config: BacalhauConfig, executor: ScriptedExecutor, orchestrator: RecordingOrchestrator
) -> AsyncIterator[ComputeNode]:
    """A started compute node with the scripted engine; stopped at teardown."""
    compute = ComputeNode(
        node_id="n-test", config=config, registry=make_registry(config, executor), orchestrator=orchestrator
    )
    await compute.start()
    try:
        yield compute
    finally:
        await compute.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ExecutionStore]:
    """The compute node's execution store on a fresh SQLite file, open; closed at teardown."""
    s = ExecutionStore(path=tmp_path / "compute" / "executions.db")
    s.open()
    try:
        yield s
    finally:
        s.close()
