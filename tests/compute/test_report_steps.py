"""Progress reports held a moment and carried by the final report (compute/reports.py), for an
orchestrator that accepts steps (ours); every report on its own for one that does not (Go, NCL)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from compute_executors import ReattachingExecutor, ScriptedExecutor
from compute_factories import make_registry, scripted_execution

from bacalhau.compute.reports import HOLD_S, ReportQueue
from bacalhau.compute.service import STOP_MESSAGE, ComputeNode
from bacalhau.compute.store import ExecutionRecord, ExecutionStore
from bacalhau.config.types import BacalhauConfig
from bacalhau.models.execution import DesiredState
from bacalhau.models.state import ExecutionDesiredStateType
from bacalhau.models.state import ExecutionStateType as State
from bacalhau.transport.messages import (
    AskForBid,
    BidResult,
    CancelExecution,
    ComputeError,
    ExecutionProgress,
    ExecutionStep,
    RunResult,
)

if TYPE_CHECKING:
    from conftest import RecordingOrchestrator


@pytest.fixture
def orchestrator(orchestrator: RecordingOrchestrator) -> RecordingOrchestrator:
    """conftest's, as our own orchestrator is: final reports may carry steps."""
    orchestrator.accepts_steps = True
    return orchestrator


def reports_of(orchestrator: RecordingOrchestrator, execution_id: str) -> list[str]:
    return [type(m).__name__ for m in orchestrator.messages if getattr(m, "execution_id", None) == execution_id]


def states(steps: list[ExecutionStep]) -> list[State]:
    return [s.state for s in steps]


# ---- the queue ------------------------------------------------------------------------------------


class Sent:
    """Report calls as the queue makes them: the names in the order they were sent."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def make(self, name: str) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            self.names.append(name)

        return call


def at(state: State) -> ExecutionStep:
    return ExecutionStep(state=state, message=state.name, time_ns=time.time_ns())


@pytest.fixture
async def queue() -> AsyncIterator[ReportQueue]:
    q = ReportQueue(node_id="n-test", hold_s=0.05)
    q.start()
    try:
        yield q
    finally:
        await q.stop(timeout_s=1)


async def test_held_steps_go_to_the_final_report_and_are_not_sent_on_their_own(queue: ReportQueue) -> None:
    sent = Sent()
    await queue.hold("e-1", at(State.BidAccepted), sent.make("accepted"))
    await queue.hold("e-1", at(State.Running), sent.make("running"))

    assert states(queue.take_steps("e-1")) == [State.BidAccepted, State.Running]
    await asyncio.sleep(0.1)  # past the hold: nothing was left to release
    assert sent.names == []
    assert queue.take_steps("e-1") == []


async def test_steps_held_past_the_window_are_sent_in_order_then_a_new_window_opens(queue: ReportQueue) -> None:
    sent = Sent()
    await queue.hold("e-1", at(State.BidAccepted), sent.make("accepted"))
    await queue.hold("e-2", at(State.BidAccepted), sent.make("other"))
    await asyncio.sleep(0.15)
    assert sent.names == ["accepted", "other"]
    assert queue.take_steps("e-1") == []

    await queue.hold("e-1", at(State.Running), sent.make("running"))
    assert states(queue.take_steps("e-1")) == [State.Running]


async def test_stop_sends_what_is_held() -> None:
    sent = Sent()
    q = ReportQueue(node_id="n-test", hold_s=60)
    q.start()
    await q.hold("e-1", at(State.BidAccepted), sent.make("accepted"))
    await q.hold("e-1", at(State.Running), sent.make("running"))
    await q.stop(timeout_s=1)
    assert sent.names == ["accepted", "running"]


async def test_nothing_is_held_without_a_window_or_before_start() -> None:
    sent = Sent()
    idle = ReportQueue(node_id="n-test", hold_s=60)  # not started: reports are made inline
    await idle.hold("e-1", at(State.BidAccepted), sent.make("inline"))
    no_window = ReportQueue(node_id="n-test", hold_s=0)
    no_window.start()
    await no_window.hold("e-1", at(State.BidAccepted), sent.make("queued"))
    await no_window.stop(timeout_s=1)
    assert sent.names == ["inline", "queued"]
    assert idle.take_steps("e-1") == [] and no_window.take_steps("e-1") == []


# ---- a compute node whose orchestrator accepts steps ----------------------------------------------


async def test_a_short_execution_sends_one_report_carrying_its_steps(
    node: ComputeNode, orchestrator: RecordingOrchestrator
) -> None:
    execution = scripted_execution(Stdout="hello\n")
    before = time.time_ns()

    await node.ask_for_bid(AskForBid(Execution=execution))
    result = await orchestrator.wait_for(RunResult, execution.id)

    assert reports_of(orchestrator, execution.id) == ["RunResult"]
    assert states(result.steps) == [State.BidAccepted, State.Running]
    assert [s.message for s in result.steps] == ["Bid accepted", "Running"]
    times = [s.time_ns for s in result.steps]
    assert before <= times[0] <= times[1] <= time.time_ns()
    assert result.run_output.stdout == "hello\n"


async def test_a_failed_short_execution_carries_its_steps_in_the_error(
    node: ComputeNode, orchestrator: RecordingOrchestrator
) -> None:
    execution = scripted_execution(Error="boom")

    await node.ask_for_bid(AskForBid(Execution=execution))
    error = await orchestrator.wait_for(ComputeError, execution.id)

    assert reports_of(orchestrator, execution.id) == ["ComputeError"]
    assert states(error.steps) == [State.BidAccepted, State.Running]


async def test_a_long_execution_reports_its_steps_on_their_own_after_the_window(
    node: ComputeNode, orchestrator: RecordingOrchestrator, executor: ScriptedExecutor
) -> None:
    execution = scripted_execution(Block=True)

    await node.ask_for_bid(AskForBid(Execution=execution))
    await orchestrator.wait_for(ExecutionProgress, execution.id)  # HOLD_S after the bid, nothing final
    assert reports_of(orchestrator, execution.id) == ["BidResult", "ExecutionProgress"]
    executor.release(execution.id)
    result = await orchestrator.wait_for(RunResult, execution.id)

    assert reports_of(orchestrator, execution.id) == ["BidResult", "ExecutionProgress", "RunResult"]
    assert result.steps == []


async def test_a_cancelled_execution_reports_nothing_not_even_what_was_held(
    config: BacalhauConfig, executor: ScriptedExecutor, orchestrator: RecordingOrchestrator
) -> None:
    async with running_node(config, executor, orchestrator, hold_s=0.05) as compute:
        execution = scripted_execution(Block=True)
        await compute.ask_for_bid(AskForBid(Execution=execution))
        await executor.started[execution.id].wait()
        await compute.cancel_execution(CancelExecution(execution_id=execution.id, reason="user asked"))
        await asyncio.sleep(0.2)  # past the hold: what was held is dropped, not released

    assert reports_of(orchestrator, execution.id) == []


async def test_stopping_the_node_reports_a_held_execution_with_its_steps(
    config: BacalhauConfig, executor: ScriptedExecutor, orchestrator: RecordingOrchestrator
) -> None:
    async with running_node(config, executor, orchestrator, hold_s=HOLD_S) as compute:
        execution = scripted_execution(Block=True, IgnoreTimeout=True)
        await compute.ask_for_bid(AskForBid(Execution=execution))
        await executor.started[execution.id].wait()
    # Stopped: the held steps go with the execution's interruption.

    error = await orchestrator.wait_for(ComputeError, execution.id)
    assert error.message == STOP_MESSAGE
    assert reports_of(orchestrator, execution.id) == ["ComputeError"]
    assert states(error.steps) == [State.BidAccepted, State.Running]


async def test_without_steps_every_report_comes_on_its_own(
    node: ComputeNode, orchestrator: RecordingOrchestrator
) -> None:
    orchestrator.accepts_steps = False  # a Go orchestrator, or any over NCL today
    execution = scripted_execution(Stdout="hello\n")

    await node.ask_for_bid(AskForBid(Execution=execution))
    result = await orchestrator.wait_for(RunResult, execution.id)

    assert reports_of(orchestrator, execution.id) == ["BidResult", "ExecutionProgress", "RunResult"]
    assert result.steps == []


# ---- edges: a link that changes, approval, stopping, restarting ------------------------------------


@contextlib.asynccontextmanager
async def running_node(
    config: BacalhauConfig, executor: ScriptedExecutor, orchestrator: RecordingOrchestrator, *, hold_s: float
) -> AsyncIterator[ComputeNode]:
    """A started compute node whose progress reports wait `hold_s` for a final report; stopped after."""
    compute = ComputeNode(
        node_id="n-test", config=config, registry=make_registry(config, executor), orchestrator=orchestrator,
        report_hold_s=hold_s,
    )
    await compute.start()
    try:
        yield compute
    finally:
        await compute.stop()


async def test_a_step_held_before_the_link_stopped_taking_steps_is_still_sent_first(
    config: BacalhauConfig, executor: ScriptedExecutor, orchestrator: RecordingOrchestrator
) -> None:
    async with running_node(config, executor, orchestrator, hold_s=0.05) as compute:
        execution = scripted_execution(Block=True)
        await compute.ask_for_bid(AskForBid(Execution=execution))  # bid accepted: held
        orchestrator.accepts_steps = False  # the link reconnected to an orchestrator without steps
        await orchestrator.wait_for(ExecutionProgress, execution.id)
        executor.release(execution.id)
        await orchestrator.wait_for(RunResult, execution.id)

    assert reports_of(orchestrator, execution.id) == ["BidResult", "ExecutionProgress", "RunResult"]


async def test_a_pending_bid_is_answered_at_once_even_to_an_orchestrator_that_takes_steps(
    config: BacalhauConfig, executor: ScriptedExecutor, orchestrator: RecordingOrchestrator
) -> None:
    async with running_node(config, executor, orchestrator, hold_s=60) as compute:  # held steps would wait a minute
        execution = scripted_execution()
        execution.desired_state = DesiredState(StateType=ExecutionDesiredStateType.Pending)
        await compute.ask_for_bid(AskForBid(Execution=execution))
        bid = await orchestrator.wait_for(BidResult, execution.id)

    assert bid.accepted and executor.requests == {}


async def test_a_step_made_while_the_queue_stops_is_sent_not_held() -> None:
    sent = Sent()
    gate = asyncio.Event()

    async def slow() -> None:
        await gate.wait()
        sent.names.append("slow")

    q = ReportQueue(node_id="n-test", hold_s=60)
    q.start()
    await q.report(slow())
    stopping = asyncio.create_task(q.stop(timeout_s=5))
    await asyncio.sleep(0)  # stop() now waits for the queue to empty
    await q.hold("e-1", at(State.Running), sent.make("running"))
    gate.set()
    await stopping

    assert sent.names == ["slow", "running"]
    assert not q.holding("e-1")


def left_by_an_earlier_process(config: BacalhauConfig, state: State) -> ExecutionRecord:
    """An execution as a killed process left it in the store (its steps perhaps still held then)."""
    store = ExecutionStore(path=Path(config.data_dir) / "compute" / "executions.db")
    store.open()
    try:
        execution = scripted_execution()
        store.create(execution, state)
        record = store.get(execution.id)
    finally:
        store.close()
    assert record is not None
    (Path(config.data_dir) / "compute" / "results" / execution.id).mkdir(parents=True)
    return record


async def test_a_restart_reports_again_the_steps_of_what_it_takes_back_at_their_stored_times(
    config: BacalhauConfig, orchestrator: RecordingOrchestrator
) -> None:
    queued = left_by_an_earlier_process(config, State.BidAccepted)
    running = left_by_an_earlier_process(config, State.Running)
    executor = ReattachingExecutor()
    executor.survivors[running.execution_id] = release = asyncio.Event()
    async with running_node(config, executor, orchestrator, hold_s=60):
        queued_result = await orchestrator.wait_for(RunResult, queued.execution_id)
        release.set()
        running_result = await orchestrator.wait_for(RunResult, running.execution_id)

    # Told again, one report each (nothing is held before the node is up), then run or taken back.
    assert reports_of(orchestrator, queued.execution_id) == ["BidResult", "RunResult"]
    assert states(queued_result.steps) == [State.Running]
    assert reports_of(orchestrator, running.execution_id) == ["BidResult", "ExecutionProgress", "RunResult"]
    assert running_result.steps == []


async def test_a_restart_tells_an_orchestrator_without_steps_nothing_again(
    config: BacalhauConfig, orchestrator: RecordingOrchestrator
) -> None:
    orchestrator.accepts_steps = False  # nothing was held for it; a Go one may refuse a repeated bid
    queued = left_by_an_earlier_process(config, State.BidAccepted)
    async with running_node(config, ReattachingExecutor(), orchestrator, hold_s=60):
        await orchestrator.wait_for(RunResult, queued.execution_id)

    assert reports_of(orchestrator, queued.execution_id) == ["ExecutionProgress", "RunResult"]
