"""Losing a node, end to end through a real orchestrator (SQLite stores, broker, workers, scheduler,
planner): its executions are failed and placed on another node, late results are discarded, and a
node that comes back within its grace after an orchestrator restart keeps its work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.orchestrator.node_harness import (
    DISCONNECT_TIMEOUT_S,
    FakeMonotonic,
    RecordingDirectory,
    make_orchestrator,
    stop,
    wait_for,
)

from bacalhau.models.execution import Execution, RunCommandResult
from bacalhau.models.job import Job, TimeoutConfig
from bacalhau.models.node import ConnectionStatus, NodeInfo
from bacalhau.models.state import EvaluationStatus, EvaluationTrigger, ExecutionStateType, JobStateType
from bacalhau.orchestrator.evaluations import new_evaluation
from bacalhau.orchestrator.jobstore.base import HistoryQuery
from bacalhau.orchestrator.scheduler.executions import NODE_LOST_MESSAGE
from bacalhau.orchestrator.service import Orchestrator
from bacalhau.transport.messages import (
    BidResult,
    ExecutionProgress,
    Handshake,
    Heartbeat,
    RunResult,
    ShutdownNotice,
)
from factories import make_job, make_node_info, make_task

S = ExecutionStateType


@pytest.fixture
async def orchestrator(tmp_path: Path, mono: FakeMonotonic) -> AsyncIterator[Orchestrator]:
    started = make_orchestrator(tmp_path, monotonic=mono)
    started.start_workers()
    try:
        yield started
    finally:
        await stop(started)


async def join(orchestrator: Orchestrator, info: NodeInfo | None = None, held: list[str] | None = None) -> NodeInfo:
    info = info or make_node_info()
    outcome = await orchestrator.compute_events.handshake(Handshake(node_info=info, active_execution_ids=held))
    assert outcome.accepted and outcome.cancel_execution_ids == []
    return info


async def submit(orchestrator: Orchestrator, job: Job | None = None) -> str:
    return (await orchestrator.endpoint.submit(job or make_job())).job_id


async def execution_on(orchestrator: Orchestrator, job_id: str, node_id: str) -> Execution:
    async def probe() -> Execution | None:
        found = [e for e in await orchestrator.store.list_executions(job_id) if e.node_id == node_id]
        return found[0] if found else None

    return await wait_for(probe, what=f"an execution of {job_id} on {node_id}")


async def job_state(orchestrator: Orchestrator, job_id: str, state: JobStateType) -> None:
    async def probe() -> bool:
        return (await orchestrator.store.get_job(job_id)).state.state_type is state

    await wait_for(probe, what=f"job {job_id} to be {state.name}")


async def start_running(orchestrator: Orchestrator, execution: Execution) -> None:
    events = orchestrator.compute_events
    await events.on_bid_result(BidResult(execution_id=execution.id, job_id=execution.job_id, accepted=True))
    await events.on_execution_progress(ExecutionProgress(execution_id=execution.id, job_id=execution.job_id))


def result(execution: Execution, stdout: str) -> RunResult:
    return RunResult(execution_id=execution.id, job_id=execution.job_id, run_output=RunCommandResult(stdout=stdout))


async def test_a_silent_node_loses_its_execution_to_a_connected_node_and_its_late_result_is_discarded(
    orchestrator: Orchestrator, mono: FakeMonotonic
) -> None:
    lost_node = await join(orchestrator)
    job_id = await submit(orchestrator)
    first = await execution_on(orchestrator, job_id, lost_node.node_id)
    await start_running(orchestrator, first)
    other = await join(orchestrator)

    mono.advance(DISCONNECT_TIMEOUT_S + 1)  # the first node went silent; the other one did not
    assert await orchestrator.compute_events.heartbeat(Heartbeat(node_id=other.node_id))
    assert orchestrator.node_health.check().disconnected == (lost_node.node_id,)

    replacement = await execution_on(orchestrator, job_id, other.node_id)
    failed = await orchestrator.store.get_execution(first.id)
    assert failed.compute_state.state_type is S.Failed
    assert failed.compute_state.message == NODE_LOST_MESSAGE
    assert replacement.previous_execution == first.id
    shown = orchestrator.nodes.get(lost_node.node_id).connection_state
    assert (shown.status, shown.last_error) == (ConnectionStatus.DISCONNECTED, "heartbeat timeout")
    triggers = {e.triggered_by for e in await orchestrator.store.list_evaluations(statuses=frozenset())}
    assert EvaluationTrigger.NodeLeave in triggers

    await start_running(orchestrator, replacement)
    await orchestrator.compute_events.on_run_result(result(replacement, "from the replacement\n"))
    await job_state(orchestrator, job_id, JobStateType.Completed)

    # The lost node was only partitioned: its result arrives after all.
    await orchestrator.compute_events.on_run_result(result(first, "from the lost node\n"))
    executions = await orchestrator.store.list_executions(job_id)
    completed = [e for e in executions if e.compute_state.state_type is S.Completed]
    assert [e.id for e in completed] == [replacement.id]
    assert completed[0].run_output is not None and completed[0].run_output.stdout == "from the replacement\n"
    assert (await orchestrator.store.get_execution(first.id)).compute_state.state_type is S.Failed
    notes = await orchestrator.store.list_history(job_id, HistoryQuery(execution_id=first.id))
    assert notes[-1].event.message == (
        "late result discarded: execution already Failed (Execution stop requested because node has disappeared)"
    )
    assert (await orchestrator.store.get_job(job_id)).state.state_type is JobStateType.Completed


async def test_rejecting_a_connected_node_places_its_executions_again(orchestrator: Orchestrator) -> None:
    rejected = await join(orchestrator)
    job_id = await submit(orchestrator)
    first = await execution_on(orchestrator, job_id, rejected.node_id)
    await start_running(orchestrator, first)
    other = await join(orchestrator)

    orchestrator.nodes.reject(rejected.node_id)

    replacement = await execution_on(orchestrator, job_id, other.node_id)
    assert replacement.compute_state.state_type is S.AskForBid
    failed = await orchestrator.store.get_execution(first.id)
    assert (failed.compute_state.state_type, failed.compute_state.message) == (S.Failed, NODE_LOST_MESSAGE)
    outcome = await orchestrator.compute_events.handshake(Handshake(node_info=rejected, active_execution_ids=[first.id]))
    assert (outcome.accepted, outcome.reason) == (False, "node has been rejected")


async def test_a_graceful_shutdown_places_the_nodes_executions_again(orchestrator: Orchestrator) -> None:
    leaving = await join(orchestrator)
    job_id = await submit(orchestrator)
    first = await execution_on(orchestrator, job_id, leaving.node_id)
    other = await join(orchestrator)
    await orchestrator.compute_events.shutdown_notice(ShutdownNotice(node_id=leaving.node_id))
    await execution_on(orchestrator, job_id, other.node_id)
    assert (await orchestrator.store.get_execution(first.id)).compute_state.state_type is S.Failed


async def test_a_queued_job_starts_as_soon_as_a_node_joins(orchestrator: Orchestrator) -> None:
    # QueueBackoff is a minute: without the join, the next try would be a minute away.
    job = make_job(tasks=[make_task(timeouts=TimeoutConfig(QueueTimeout=600))])
    job_id = await submit(orchestrator, job)
    await job_state(orchestrator, job_id, JobStateType.Queued)
    node = await join(orchestrator)
    await execution_on(orchestrator, job_id, node.node_id)
    await job_state(orchestrator, job_id, JobStateType.Running)


# ---- orchestrator restart -----------------------------------------------------------------------


async def running_job_on(tmp_path: Path, mono: FakeMonotonic) -> tuple[NodeInfo, Execution]:
    """A first orchestrator run: a node runs a job's execution; then the orchestrator stops, leaving an
    evaluation of that job pending (it runs first thing after the restart)."""
    first_run = make_orchestrator(tmp_path, monotonic=mono)
    first_run.start_workers()
    try:
        node = await join(first_run)
        job_id = await submit(first_run)
        execution = await execution_on(first_run, job_id, node.node_id)
        await start_running(first_run, execution)
        await first_run.store.create_evaluation(
            new_evaluation(await first_run.store.get_job(job_id), EvaluationTrigger.ExecUpdate, 1)
        )
    finally:
        await stop(first_run)
    return node, execution


async def test_a_node_back_within_its_grace_after_a_restart_keeps_its_execution(
    tmp_path: Path, mono: FakeMonotonic
) -> None:
    node, execution = await running_job_on(tmp_path, mono)
    restarted = make_orchestrator(tmp_path, monotonic=mono)
    try:
        await restarted.recover()
        restarted.start_workers()
        shown = restarted.nodes.get(node.node_id).connection_state
        assert shown.status is ConnectionStatus.DISCONNECTED

        async def evaluated() -> bool:
            pending = await restarted.store.list_evaluations(statuses=frozenset({EvaluationStatus.Pending}))
            return not pending

        await wait_for(evaluated, what="the pending evaluation to run")
        assert await restarted.node_events.sweep() == []  # not lost: awaiting reconnect
        mono.advance(DISCONNECT_TIMEOUT_S - 1)
        assert restarted.node_health.check().disconnected == ()
        await join(restarted, node, held=[execution.id])
        assert restarted.nodes.is_connected(node.node_id)
        mono.advance(DISCONNECT_TIMEOUT_S / 2)
        assert restarted.node_health.check().disconnected == ()
        kept = await restarted.store.get_execution(execution.id)
        assert kept.compute_state.state_type is S.Running
    finally:
        await stop(restarted)


async def test_a_node_not_back_when_its_grace_ends_loses_its_execution(tmp_path: Path, mono: FakeMonotonic) -> None:
    node, execution = await running_job_on(tmp_path, mono)
    restarted = make_orchestrator(tmp_path, monotonic=mono, directory=RecordingDirectory())
    try:
        await restarted.recover()
        restarted.start_workers()
        other = await join(restarted)
        mono.advance(DISCONNECT_TIMEOUT_S + 1)
        assert await restarted.compute_events.heartbeat(Heartbeat(node_id=other.node_id))
        assert restarted.node_health.check().disconnected == (node.node_id,)
        replacement = await execution_on(restarted, execution.job_id, other.node_id)
        assert replacement.previous_execution == execution.id
        lost = await restarted.store.get_execution(execution.id)
        assert (lost.compute_state.state_type, lost.compute_state.message) == (S.Failed, NODE_LOST_MESSAGE)
        shown = restarted.nodes.get(node.node_id).connection_state
        assert shown.last_error == "did not reconnect after the orchestrator restarted"
    finally:
        await stop(restarted)
