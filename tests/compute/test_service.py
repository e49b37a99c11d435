"""The compute node service: bids, the FIFO queue, cancellation, restart recovery, logs, node info."""

from __future__ import annotations

import asyncio
import base64
import io
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from compute_executors import ReattachingExecutor, ScriptedExecutor
from compute_factories import SCRIPTED, make_registry, scripted_execution

from bacalhau.compute.executors.base import RunOutcome
from bacalhau.compute.registry import build_registry
from bacalhau.compute.service import HANDED_BACK_MESSAGE, LOST_MESSAGE, RESTART_MESSAGE, STOP_MESSAGE, ComputeNode
from bacalhau.compute.store import ExecutionStore
from bacalhau.config.types import BacalhauConfig
from bacalhau.models.constants import DETAIL_HANDED_BACK
from bacalhau.models.errors import BacalhauError, NotFoundError
from bacalhau.models.execution import DesiredState, ExecutionLog
from bacalhau.models.job import InputSource, SpecConfig
from bacalhau.models.resources import Resources
from bacalhau.models.state import ExecutionDesiredStateType
from bacalhau.models.state import ExecutionStateType as State
from bacalhau.transport.messages import (
    AskForBid,
    BidAccepted,
    BidResult,
    CancelExecution,
    ComputeError,
    ExecutionProgress,
    Handshake,
    LogStreamRequest,
    NodeInfoUpdate,
    RunResult,
)

if TYPE_CHECKING:
    from conftest import RecordingOrchestrator

WAIT_S = 10.0


def stored_state(config: BacalhauConfig, execution_id: str) -> State | None:
    """Read the node's execution store through a second SQLite connection, as a restarted node would."""
    store = ExecutionStore(path=Path(config.data_dir) / "compute" / "executions.db")
    store.open()
    try:
        record = store.get(execution_id)
        return None if record is None else record.state
    finally:
        store.close()


async def wait_started(executor: ScriptedExecutor, execution_id: str) -> None:
    async with asyncio.timeout(WAIT_S):
        await executor.started[execution_id].wait()


async def next_line(stream: AsyncIterator[ExecutionLog]) -> ExecutionLog:
    async with asyncio.timeout(WAIT_S):
        return await anext(stream)


async def test_start_handshakes_with_the_nodes_info(node: ComputeNode, orchestrator: RecordingOrchestrator) -> None:
    (handshake,) = orchestrator.of(Handshake)

    info = handshake.node_info
    assert (info.node_id, info.node_type) == ("n-test", "Compute")
    assert handshake.restarted is False and handshake.active_execution_ids == []
    assert info.labels["zone"] == "test"
    assert {"Architecture", "Operating-System"} <= set(info.labels)
    assert info.compute_node_info is not None
    assert info.compute_node_info.execution_engines == ["noop", SCRIPTED]
    assert info.compute_node_info.publishers == ["local", "noop"]
    assert info.compute_node_info.storage_sources == ["inline", "local", "localDirectory"]
    assert info.compute_node_info.max_capacity == Resources(CPU=4, Memory=8_000_000_000, Disk=10_000_000_000)
    assert info.compute_node_info.available_capacity == info.compute_node_info.max_capacity


def reported_steps(orchestrator: RecordingOrchestrator, execution_id: str) -> list[tuple[str, object]]:
    """What the node reported of one execution, in order: (message type, accepted or state)."""
    return [
        (type(m).__name__, getattr(m, "accepted", getattr(m, "state", None)))
        for m in orchestrator.messages
        if getattr(m, "execution_id", None) == execution_id
    ]


async def test_accepted_execution_runs_and_reports_each_step_in_order(
    node: ComputeNode, orchestrator: RecordingOrchestrator, config: BacalhauConfig
) -> None:
    execution = scripted_execution(Stdout="hello\n", ExitCode=2)

    await node.ask_for_bid(AskForBid(Execution=execution))
    result = await orchestrator.wait_for(RunResult, execution.id)

    steps = reported_steps(orchestrator, execution.id)
    # No publisher named: no Publishing state, as in Bacalhau's executor.
    assert steps == [
        ("BidResult", True),
        ("ExecutionProgress", State.Running),
        ("RunResult", None),
    ]
    assert (result.run_output.stdout, result.run_output.exit_code) == ("hello\n", 2)
    assert result.published_result is not None and result.published_result.type == "noop"
    assert stored_state(config, execution.id) is State.Completed


async def test_a_task_with_a_publisher_reports_publishing_before_its_result(
    node: ComputeNode, orchestrator: RecordingOrchestrator, config: BacalhauConfig
) -> None:
    execution = scripted_execution(publisher="noop", Stdout="hello\n")

    await node.ask_for_bid(AskForBid(Execution=execution))
    await orchestrator.wait_for(RunResult, execution.id)

    steps = reported_steps(orchestrator, execution.id)
    assert steps == [
        ("BidResult", True),
        ("ExecutionProgress", State.Running),
        ("ExecutionProgress", State.Publishing),
        ("RunResult", None),
    ]
    assert stored_state(config, execution.id) is State.Completed


async def test_offering_the_same_execution_twice_runs_it_once(
    node: ComputeNode, orchestrator: RecordingOrchestrator, executor: ScriptedExecutor
) -> None:
    execution = scripted_execution()

    await asyncio.gather(*(node.ask_for_bid(AskForBid(Execution=execution)) for _ in range(3)))
    await orchestrator.wait_for(RunResult, execution.id)
    await node.ask_for_bid(AskForBid(Execution=execution))

    assert len(orchestrator.of(BidResult, execution.id)) == 1
    assert len(orchestrator.of(RunResult, execution.id)) == 1
    assert list(executor.requests) == [execution.id]


async def test_execution_bigger_than_the_node_is_rejected_with_the_reason(
    node: ComputeNode, orchestrator: RecordingOrchestrator, config: BacalhauConfig
) -> None:
    execution = scripted_execution(cpu="8")

    await node.ask_for_bid(AskForBid(Execution=execution))

    # Reports leave through the node's outbox: wait for the answer rather than expect it inline.
    bid = await orchestrator.wait_for(BidResult, execution.id)
    assert len(orchestrator.of(BidResult, execution.id)) == 1
    assert bid.accepted is False
    assert bid.reason.startswith("job requires cpu=8 memory=1.0 GB")
    assert "but this node's capacity is cpu=4 memory=8.0 GB" in bid.reason
    assert orchestrator.of(ExecutionProgress, execution.id) == []
    assert stored_state(config, execution.id) is State.BidRejected


async def test_executions_beyond_free_capacity_wait_their_turn(
    node: ComputeNode, orchestrator: RecordingOrchestrator, executor: ScriptedExecutor
) -> None:
    first, second = scripted_execution(cpu="3", Block=True), scripted_execution(cpu="3", Block=True)

    await node.ask_for_bid(AskForBid(Execution=first))
    await node.ask_for_bid(AskForBid(Execution=second))
    await wait_started(executor, first.id)

    assert [b.accepted for b in orchestrator.of(BidResult)] == [True, True], "busy is never a reason to refuse"
    info = node.node_info().compute_node_info
    assert info is not None
    assert (info.running_executions, info.enqueued_executions) == (1, 1)
    assert info.available_capacity.cpu == pytest.approx(1)
    assert info.queue_capacity.cpu == pytest.approx(3)
    assert second.id not in executor.requests

    executor.release(first.id)
    await wait_started(executor, second.id)
    executor.release(second.id)
    await orchestrator.wait_for(RunResult, second.id)

    assert executor.max_active == 1
    assert orchestrator.of(RunResult, first.id)


async def test_small_executions_share_the_node(
    node: ComputeNode, orchestrator: RecordingOrchestrator, executor: ScriptedExecutor
) -> None:
    executions = [scripted_execution(cpu="1", Block=True) for _ in range(3)]
    for execution in executions:
        await node.ask_for_bid(AskForBid(Execution=execution))

    for execution in executions:
        await wait_started(executor, execution.id)
    assert executor.active == 3
    for execution in executions:
        executor.release(execution.id)
        await orchestrator.wait_for(RunResult, execution.id)


async def test_cancel_stops_a_running_execution_and_reports_nothing_more(
    node: ComputeNode, orchestrator: RecordingOrchestrator, executor: ScriptedExecutor, config: BacalhauConfig
) -> None:
    execution = scripted_execution(cpu="3", Block=True)
    await node.ask_for_bid(AskForBid(Execution=execution))
    await wait_started(executor, execution.id)

    await node.cancel_execution(CancelExecution(ExecutionID=execution.id, Reason="job stopped"))

    assert execution.id in executor.cancelled
    assert stored_state(config, execution.id) is State.Cancelled
    assert orchestrator.of(RunResult, execution.id) == []
    assert orchestrator.of(ComputeError, execution.id) == []
    info = node.node_info().compute_node_info
    assert info is not None and info.running_executions == 0
    assert info.available_capacity == info.max_capacity
    await node.cancel_execution(CancelExecution(ExecutionID=execution.id))  # idempotent
    await node.cancel_execution(CancelExecution(ExecutionID="e-unknown"))  # unknown: ignored


async def test_cancel_drops_a_queued_execution_before_it_starts(
    node: ComputeNode, orchestrator: RecordingOrchestrator, executor: ScriptedExecutor, config: BacalhauConfig
) -> None:
    running, queued = scripted_execution(cpu="3", Block=True), scripted_execution(cpu="3")
    await node.ask_for_bid(AskForBid(Execution=running))
    await node.ask_for_bid(AskForBid(Execution=queued))
    await wait_started(executor, running.id)

    await node.cancel_execution(CancelExecution(ExecutionID=queued.id))
    executor.release(running.id)
    await orchestrator.wait_for(RunResult, running.id)

    assert stored_state(config, queued.id) is State.Cancelled
    assert queued.id not in executor.requests
    assert orchestrator.of(ExecutionProgress, queued.id) == []


async def test_failed_execution_is_reported_with_error_details(
    node: ComputeNode, orchestrator: RecordingOrchestrator, config: BacalhauConfig
) -> None:
    execution = scripted_execution(Stdout="so far\n", Error="module trapped")

    await node.ask_for_bid(AskForBid(Execution=execution))
    error = await orchestrator.wait_for(ComputeError, execution.id)

    assert error.message == "module trapped"
    assert error.details == {
        "ErrorCode": "ExecutionError",
        "Hint": "scripted hint",
        "Retryable": "false",
        "FailsExecution": "true",
    }
    assert error.run_output is not None and error.run_output.stdout == "so far\n"
    assert stored_state(config, execution.id) is State.Failed


async def test_locally_published_results_download_over_http(
    node: ComputeNode, orchestrator: RecordingOrchestrator
) -> None:
    execution = scripted_execution(Stdout="published\n", publisher="local")

    await node.ask_for_bid(AskForBid(Execution=execution))
    result = await orchestrator.wait_for(RunResult, execution.id)

    assert result.published_result is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(result.published_result.params["URL"])
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
        stdout = archive.extractfile("stdout")
        assert stdout is not None and stdout.read() == b"published\n"
        exit_code = archive.extractfile("exitCode")
        assert exit_code is not None and exit_code.read() == b"0"


async def test_restart_fails_and_reports_what_a_previous_process_left_running(
    config: BacalhauConfig, executor: ScriptedExecutor, orchestrator: RecordingOrchestrator
) -> None:
    interrupted, finished = scripted_execution(), scripted_execution()
    store = ExecutionStore(path=Path(config.data_dir) / "compute" / "executions.db")
    store.open()
    store.create(interrupted, State.Running)
    store.create(finished, State.Completed)
    store.close()

    node = ComputeNode(
        node_id="n-test", config=config, registry=make_registry(config, executor), orchestrator=orchestrator
    )
    await node.start()
    try:
        error = await orchestrator.wait_for(ComputeError, interrupted.id)
        assert error.message == RESTART_MESSAGE
        assert error.details["Retryable"] == "true"
        (handshake,) = orchestrator.of(Handshake)
        assert handshake.restarted is True
        assert handshake.active_execution_ids == []
        assert orchestrator.messages.index(error) < orchestrator.messages.index(handshake)
        assert orchestrator.of(ComputeError, finished.id) == []
    finally:
        await node.stop()
    assert stored_state(config, interrupted.id) is State.Failed


def left_by_an_earlier_process(config: BacalhauConfig, state: State, *, exit_code: str | None = None) -> str:
    """Record an execution as a killed (kill -9) process left it: `state` in the store, results folder made."""
    execution = scripted_execution()
    store = ExecutionStore(path=Path(config.data_dir) / "compute" / "executions.db")
    store.open()
    store.create(execution, state)
    store.close()
    results = Path(config.data_dir) / "compute" / "results" / execution.id
    results.mkdir(parents=True)
    (results / "stdout").write_text("partial\n")
    if exit_code is not None:
        (results / "exitCode").write_text(exit_code)
    return execution.id


@pytest.fixture
async def restarted_node(
    config: BacalhauConfig, orchestrator: RecordingOrchestrator
) -> AsyncIterator[Callable[[ScriptedExecutor], Awaitable[ComputeNode]]]:
    """`await restarted_node(executor)` starts a node on the config's DataDir; stopped at teardown."""
    started: list[ComputeNode] = []

    async def start(executor: ScriptedExecutor) -> ComputeNode:
        node = ComputeNode(
            node_id="n-test", config=config, registry=make_registry(config, executor), orchestrator=orchestrator
        )
        started.append(node)
        await node.start()
        return node

    try:
        yield start
    finally:
        for node in started:
            await node.stop()


async def test_restart_takes_back_a_running_execution_whose_task_survived_instead_of_running_it_again(
    config: BacalhauConfig,
    orchestrator: RecordingOrchestrator,
    restarted_node: Callable[[ScriptedExecutor], Awaitable[ComputeNode]],
) -> None:
    executor = ReattachingExecutor()
    still_running = left_by_an_earlier_process(config, State.Running)
    finished_meanwhile = left_by_an_earlier_process(config, State.Running)
    executor.survivors[still_running] = release = asyncio.Event()
    executor.survivors[finished_meanwhile] = RunOutcome(exit_code=5)

    node = await restarted_node(executor)
    assert executor.kept == sorted([still_running, finished_meanwhile]), "their containers must not be removed"
    assert still_running in node.active_execution_ids(), "the handshake must list it: the node still holds it"
    done = await orchestrator.wait_for(RunResult, finished_meanwhile)
    release.set()
    resumed = await orchestrator.wait_for(RunResult, still_running)

    assert done.run_output.exit_code == 5 and done.run_output.stdout == "output of the earlier process\n"
    assert resumed.run_output.exit_code == 0
    assert executor.requests == {}, "nothing may run a second time"
    assert orchestrator.of(ComputeError) == []
    assert stored_state(config, still_running) is State.Completed


async def test_restart_fails_an_execution_whose_task_is_gone_saying_its_result_was_lost(
    config: BacalhauConfig,
    orchestrator: RecordingOrchestrator,
    restarted_node: Callable[[ScriptedExecutor], Awaitable[ComputeNode]],
) -> None:
    executor = ReattachingExecutor()
    gone = left_by_an_earlier_process(config, State.Running)

    await restarted_node(executor)
    error = await orchestrator.wait_for(ComputeError, gone)

    assert error.message == LOST_MESSAGE and "restarted" in error.message
    assert error.details["Retryable"] == "true", "a lost result runs again"
    assert executor.reattached == [gone] and executor.requests == {}
    assert stored_state(config, gone) is State.Failed


async def test_restart_publishes_what_finished_before_the_kill_without_running_or_reattaching(
    config: BacalhauConfig,
    orchestrator: RecordingOrchestrator,
    restarted_node: Callable[[ScriptedExecutor], Awaitable[ComputeNode]],
) -> None:
    executor = ScriptedExecutor()  # not even able to re-attach: the exit code says the run is over
    publishing = left_by_an_earlier_process(config, State.Publishing, exit_code="4")

    await restarted_node(executor)
    result = await orchestrator.wait_for(RunResult, publishing)

    assert (result.run_output.exit_code, result.run_output.stdout) == (4, "partial\n")
    assert executor.requests == {}
    assert stored_state(config, publishing) is State.Completed


async def test_restart_queues_again_what_was_accepted_but_never_started(
    config: BacalhauConfig,
    orchestrator: RecordingOrchestrator,
    restarted_node: Callable[[ScriptedExecutor], Awaitable[ComputeNode]],
) -> None:
    executor = ReattachingExecutor()
    queued = left_by_an_earlier_process(config, State.BidAccepted)

    await restarted_node(executor)
    result = await orchestrator.wait_for(RunResult, queued)

    assert result.run_output.exit_code == 0
    assert list(executor.requests) == [queued] and executor.reattached == []
    assert orchestrator.of(ComputeError, queued) == []


async def test_stop_interrupts_running_executions_and_reports_them(
    config: BacalhauConfig, executor: ScriptedExecutor, orchestrator: RecordingOrchestrator
) -> None:
    node = ComputeNode(
        node_id="n-test", config=config, registry=make_registry(config, executor), orchestrator=orchestrator
    )
    await node.start()
    execution = scripted_execution(Block=True)
    await node.ask_for_bid(AskForBid(Execution=execution))
    await wait_started(executor, execution.id)

    await node.stop()

    (error,) = orchestrator.of(ComputeError, execution.id)
    assert error.message == STOP_MESSAGE and error.details["Retryable"] == "true"
    assert execution.id in executor.cancelled
    assert stored_state(config, execution.id) is State.Failed


async def test_follow_logs_streams_lines_until_the_execution_ends(
    node: ComputeNode, orchestrator: RecordingOrchestrator, executor: ScriptedExecutor
) -> None:
    execution = scripted_execution(Stdout="first\n", Stderr="oops\n", Block=True, After="second\npartial")
    await node.ask_for_bid(AskForBid(Execution=execution))
    await wait_started(executor, execution.id)

    stream = node.stream_logs(LogStreamRequest(ExecutionID=execution.id, Follow=True))
    first, err = await next_line(stream), await next_line(stream)
    executor.release(execution.id)
    rest = [line async for line in stream]

    assert (first.type, first.line) == (1, "first\n")
    assert (err.type, err.line) == (2, "oops\n")
    # Items are runs of lines (as Bacalhau's are whatever the task wrote at once); the text is what counts.
    assert {log.type for log in rest} == {1} and "".join(log.line for log in rest) == "second\npartial"


async def test_logs_without_follow_return_what_is_written(
    node: ComputeNode, orchestrator: RecordingOrchestrator
) -> None:
    execution = scripted_execution(Stdout="a\nb\n", Stderr="c")
    await node.ask_for_bid(AskForBid(Execution=execution))
    await orchestrator.wait_for(RunResult, execution.id)

    lines = [(log.type, log.line) async for log in node.stream_logs(LogStreamRequest(ExecutionID=execution.id))]

    assert lines == [(1, "a\nb\n"), (2, "c")]


async def test_logs_of_an_unknown_execution_are_not_found(node: ComputeNode) -> None:
    with pytest.raises(NotFoundError, match="e-unknown"):
        node.stream_logs(LogStreamRequest(ExecutionID="e-unknown"))


async def test_node_info_updates_follow_the_queue(
    node: ComputeNode, orchestrator: RecordingOrchestrator, executor: ScriptedExecutor
) -> None:
    execution = scripted_execution(Block=True)
    await node.ask_for_bid(AskForBid(Execution=execution))

    def running(count: int) -> Callable[[NodeInfoUpdate], bool]:
        def check(update: NodeInfoUpdate) -> bool:
            info = update.node_info.compute_node_info
            return info is not None and info.running_executions == count

        return check

    await orchestrator.wait_for(NodeInfoUpdate, where=running(1))
    executor.release(execution.id)
    await orchestrator.wait_for(RunResult, execution.id)
    await orchestrator.wait_for(NodeInfoUpdate, where=running(0))


async def test_an_unreachable_orchestrator_does_not_stop_execution(
    node: ComputeNode, orchestrator: RecordingOrchestrator, config: BacalhauConfig
) -> None:
    orchestrator.fail_calls = True
    execution = scripted_execution()

    await node.ask_for_bid(AskForBid(Execution=execution))
    await orchestrator.wait_for(RunResult, execution.id)

    assert stored_state(config, execution.id) is State.Completed


async def test_ask_for_bid_before_start_is_refused(
    config: BacalhauConfig, executor: ScriptedExecutor, orchestrator: RecordingOrchestrator
) -> None:
    node = ComputeNode(node_id="n", config=config, registry=make_registry(config, executor), orchestrator=orchestrator)

    with pytest.raises(BacalhauError, match="not running") as caught:
        await node.ask_for_bid(AskForBid(Execution=scripted_execution()))
    assert caught.value.code == "ServiceUnavailable"


async def test_cancel_right_after_the_bid_never_starts_the_task(
    node: ComputeNode, orchestrator: RecordingOrchestrator, executor: ScriptedExecutor, config: BacalhauConfig
) -> None:
    execution = scripted_execution()

    await node.ask_for_bid(AskForBid(Execution=execution))
    await node.cancel_execution(CancelExecution(ExecutionID=execution.id, Reason="stopped"))

    assert stored_state(config, execution.id) is State.Cancelled
    assert execution.id not in executor.requests
    assert orchestrator.of(RunResult, execution.id) == []


async def test_built_in_plugins_run_a_wasm_module_end_to_end(
    config: BacalhauConfig, orchestrator: RecordingOrchestrator, wasm_modules: dict[str, Path]
) -> None:
    module = base64.b64encode(wasm_modules["hello"].read_bytes()).decode()
    source = InputSource(
        Source=SpecConfig(Type="inline", Params={"URL": f"data:application/wasm;base64,{module}"}), Target="/main.wasm"
    )
    execution = scripted_execution(
        engine_type="wasm", publisher="local", inputs=[source], EntryModule="/main.wasm", Parameters=["x"]
    )
    node = ComputeNode(
        node_id="n-wasm", config=config, registry=build_registry(config=config), orchestrator=orchestrator
    )
    await node.start()
    try:
        await node.ask_for_bid(AskForBid(Execution=execution))
        result = await orchestrator.wait_for(RunResult, execution.id)
    finally:
        await node.stop()

    assert result.run_output.stdout == "hello from wasm\narg1=x\n"
    assert result.run_output.exit_code == 0
    assert result.published_result is not None and result.published_result.type == "local"


async def test_a_pending_bid_waits_for_the_orchestrators_acceptance(
    node: ComputeNode, orchestrator: RecordingOrchestrator, executor: ScriptedExecutor, config: BacalhauConfig
) -> None:
    # A Go orchestrator asks with DesiredState Pending, then sends BidAccepted (ours offers direct bids).
    execution = scripted_execution(Stdout="after approval\n")
    execution.desired_state = DesiredState(StateType=ExecutionDesiredStateType.Pending)
    await node.ask_for_bid(AskForBid(Execution=execution))
    await orchestrator.wait_for(BidResult, execution.id)
    info = node.node_info().compute_node_info
    assert info is not None and (info.running_executions, info.enqueued_executions) == (0, 0)  # held, not queued
    assert list(executor.requests) == []
    assert stored_state(config, execution.id) is State.BidAccepted

    await node.accept_bid(BidAccepted(ExecutionID=execution.id))
    result = await orchestrator.wait_for(RunResult, execution.id)
    assert result.run_output.stdout == "after approval\n"
    await node.accept_bid(BidAccepted(ExecutionID=execution.id))  # a replay changes nothing
    assert list(executor.requests) == [execution.id]


async def test_a_pending_bid_the_orchestrator_rejects_never_runs(
    node: ComputeNode, orchestrator: RecordingOrchestrator, executor: ScriptedExecutor, config: BacalhauConfig
) -> None:

    execution = scripted_execution()
    execution.desired_state = DesiredState(StateType=ExecutionDesiredStateType.Pending)
    await node.ask_for_bid(AskForBid(Execution=execution))
    await node.cancel_execution(CancelExecution(ExecutionID=execution.id, Reason="bid rejected"))
    await node.accept_bid(BidAccepted(ExecutionID=execution.id))  # too late: nothing starts
    assert stored_state(config, execution.id) is State.Cancelled
    assert list(executor.requests) == []


# ---- drain: a stop on purpose (SIGTERM) ----------------------------------------------------------


async def test_drain_lets_running_work_finish_and_hands_back_what_had_not_started(
    node: ComputeNode, executor: ScriptedExecutor, orchestrator: RecordingOrchestrator, config: BacalhauConfig
) -> None:
    running = scripted_execution(cpu="3", Block=True)
    waiting = scripted_execution(cpu="3")  # does not fit next to `running`: queued on the node
    for execution in (running, waiting):
        await node.ask_for_bid(AskForBid(Execution=execution))
    await wait_started(executor, running.id)

    drain = asyncio.create_task(node.drain(grace_s=WAIT_S))
    await orchestrator.wait_for(ComputeError, waiting.id)
    (handed,) = orchestrator.of(ComputeError, waiting.id)
    assert handed.message == HANDED_BACK_MESSAGE
    assert handed.details["Retryable"] == "true" and handed.details[DETAIL_HANDED_BACK] == "true"
    assert not drain.done()  # still waiting for the running one
    executor.release(running.id)
    assert await drain == (1, 1)
    await orchestrator.wait_for(RunResult, running.id)
    assert waiting.id not in executor.requests  # never started
    assert stored_state(config, waiting.id) is State.Failed
    await node.stop()
    assert orchestrator.of(ComputeError, running.id) == []


async def test_what_outlives_the_grace_is_handed_back_not_failed(
    node: ComputeNode, executor: ScriptedExecutor, orchestrator: RecordingOrchestrator
) -> None:
    execution = scripted_execution(Block=True)
    await node.ask_for_bid(AskForBid(Execution=execution))
    await wait_started(executor, execution.id)

    assert await node.drain(grace_s=0.05) == (0, 0)
    await node.stop()

    (error,) = orchestrator.of(ComputeError, execution.id)
    assert error.message == HANDED_BACK_MESSAGE and error.details[DETAIL_HANDED_BACK] == "true"
    assert execution.id in executor.cancelled


async def test_a_second_signal_ends_the_grace_at_once(node: ComputeNode, executor: ScriptedExecutor) -> None:
    execution = scripted_execution(Block=True)
    await node.ask_for_bid(AskForBid(Execution=execution))
    await wait_started(executor, execution.id)
    abort = asyncio.Event()
    drain = asyncio.create_task(node.drain(grace_s=3600, abort=abort))
    abort.set()
    async with asyncio.timeout(WAIT_S):
        assert await drain == (0, 0)


async def test_an_offer_reaching_a_draining_node_is_handed_straight_back(
    node: ComputeNode, executor: ScriptedExecutor, orchestrator: RecordingOrchestrator
) -> None:
    await node.drain(grace_s=0)
    late = scripted_execution()
    for _ in range(2):  # a redelivered offer is answered once
        await node.ask_for_bid(AskForBid(Execution=late))
    await orchestrator.wait_for(ComputeError, late.id)
    (error,) = orchestrator.of(ComputeError, late.id)
    assert error.details[DETAIL_HANDED_BACK] == "true"
    assert orchestrator.of(BidResult, late.id) == []
    assert late.id not in executor.requests


async def test_node_info_is_sent_at_most_once_per_interval_and_ends_up_current(
    node: ComputeNode, orchestrator: RecordingOrchestrator, executor: ScriptedExecutor
) -> None:
    from bacalhau.compute.service import INFO_MIN_INTERVAL_S

    before = len(orchestrator.of(NodeInfoUpdate))
    executions = [scripted_execution() for _ in range(20)]  # 20 jobs that end at once: 40 changes
    for execution in executions:
        await node.ask_for_bid(AskForBid(Execution=execution))
    for execution in executions:
        await orchestrator.wait_for(RunResult, execution.id)
    await asyncio.sleep(3 * INFO_MIN_INTERVAL_S)
    sent = orchestrator.of(NodeInfoUpdate)[before:]
    assert 1 <= len(sent) < 10, f"{len(sent)} node infos for 40 changes"
    last = sent[-1].node_info.compute_node_info
    assert last is not None and last.running_executions == 0 and last.enqueued_executions == 0
