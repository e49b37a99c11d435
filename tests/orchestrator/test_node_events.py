"""NodeReEvaluator: node joins and leaves become evaluations of the affected jobs, batched, never dropped."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bacalhau.models.errors import DatastoreError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import Execution, ExecutionState
from bacalhau.models.job import Job
from bacalhau.models.state import EvaluationStatus, EvaluationTrigger, ExecutionStateType
from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from bacalhau.orchestrator.node_events import NodeReEvaluator
from bacalhau.orchestrator.node_store import SQLiteNodeStore
from bacalhau.orchestrator.nodes import NodeChange, NodeEvent, NodeManager
from factories import make_evaluation, make_event, make_execution, make_job, make_node_info

S = ExecutionStateType


def reevaluator(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker, **timing: float
) -> NodeReEvaluator:
    return NodeReEvaluator(
        store=store,
        nodes=nodes,
        enqueue=broker.enqueue,
        wake_queued=lambda: broker.wake_delayed(EvaluationTrigger.JobQueue),
        **timing,  # type: ignore[arg-type]
    )


async def job_with(store: SQLiteJobStore, *placements: tuple[str, ExecutionStateType]) -> tuple[Job, list[Execution]]:
    job = make_job()
    await store.create_job(job, [make_event(job)])
    executions = [make_execution(job, node_id=n, compute_state=ExecutionState(StateType=s)) for n, s in placements]
    for execution in executions:
        await store.create_execution(execution, [])
    return job, executions


def leave(node_id: str) -> NodeEvent:
    return NodeEvent(node_id, NodeChange.LEAVE, "heartbeat timeout")


async def drain(broker: EvaluationBroker) -> list[Evaluation]:
    """Everything ready in the broker now."""
    ready: list[Evaluation] = []
    while True:
        try:
            evaluation = await asyncio.wait_for(broker.dequeue(), 0.05)
        except TimeoutError:
            return ready
        assert evaluation is not None
        ready.append(evaluation)
        broker.ack(evaluation)


async def test_a_leaving_node_gets_one_node_leave_evaluation_per_affected_job(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    two_there, _ = await job_with(store, ("n-lost", S.Running), ("n-lost", S.BidAccepted), ("n-ok", S.Running))
    one_there, _ = await job_with(store, ("n-lost", S.AskForBid))
    finished_there, _ = await job_with(store, ("n-lost", S.Completed), ("n-ok", S.Running))
    elsewhere, _ = await job_with(store, ("n-ok", S.Running))
    events = reevaluator(store, nodes, broker)
    events.handle(leave("n-lost"))
    created = await events.flush()
    assert sorted(e.job_id for e in created) == sorted([two_there.id, one_there.id])
    assert {e.triggered_by for e in created} == {EvaluationTrigger.NodeLeave}
    stored = await store.list_evaluations(statuses=frozenset({EvaluationStatus.Pending}))
    assert sorted(e.id for e in stored) == sorted(e.id for e in created)
    assert sorted(e.job_id for e in await drain(broker)) == sorted([two_there.id, one_there.id])
    assert finished_there.id not in {e.job_id for e in created} and elsewhere.id not in {e.job_id for e in created}
    assert await events.flush() == []  # nothing pending any more


async def test_a_join_alone_evaluates_nothing_and_a_leave_wins_over_an_earlier_join(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    job, _ = await job_with(store, ("n-a", S.Running), ("n-b", S.Running))
    events = reevaluator(store, nodes, broker)
    events.handle(NodeEvent("n-a", NodeChange.JOIN))
    assert await events.flush() == []  # its executions are reconciled by its handshake
    events.handle(NodeEvent("n-b", NodeChange.JOIN))
    events.handle(leave("n-b"))
    [evaluation] = await events.flush()
    assert (evaluation.job_id, evaluation.triggered_by) == (job.id, EvaluationTrigger.NodeLeave)


async def test_a_burst_of_events_is_flushed_within_the_maximum_wait(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    job, _ = await job_with(store, ("n-first", S.Running))
    events = reevaluator(store, nodes, broker, quiet_s=0.05, max_delay_s=0.2, sweep_interval_s=3600)
    events.start()
    try:
        started = time.monotonic()
        events.handle(leave("n-first"))
        # Keep the churn going for much longer than the maximum wait: the first batch must not wait for it.
        while time.monotonic() - started < 1.5 and not await store.list_evaluations(statuses=frozenset()):
            events.handle(leave(f"n-churn-{time.monotonic()}"))
            await asyncio.sleep(0.01)
        [evaluation] = await store.list_evaluations(statuses=frozenset())
        assert evaluation.job_id == job.id
        assert time.monotonic() - started < 1.0
    finally:
        await events.stop()


async def test_no_event_is_dropped_however_many_arrive(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    jobs = [(await job_with(store, (f"n-{i}", S.Running)))[0] for i in range(1500)]
    events = reevaluator(store, nodes, broker)
    for i in range(1500):
        events.handle(leave(f"n-{i}"))
    created = await events.flush()
    assert sorted(e.job_id for e in created) == sorted(j.id for j in jobs)


async def test_events_survive_a_store_failure_and_are_evaluated_later(
    tmp_path: Path, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    class FailingOnce(SQLiteJobStore):
        failures = 1

        async def list_executions_on_node(self, node_id: str, *, active_only: bool = True) -> list[Execution]:
            if self.failures:
                self.failures -= 1
                raise DatastoreError("disk full", retryable=True)
            return await super().list_executions_on_node(node_id, active_only=active_only)

    store = FailingOnce(path=tmp_path / "jobs.db")
    try:
        job, _ = await job_with(store, ("n-lost", S.Running))
        events = reevaluator(store, nodes, broker)
        events.handle(leave("n-lost"))
        with pytest.raises(DatastoreError):
            await events.flush()
        [evaluation] = await events.flush()
        assert evaluation.job_id == job.id
    finally:
        await store.close()


async def test_stop_evaluates_what_is_still_pending(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    job, _ = await job_with(store, ("n-lost", S.Running))
    events = reevaluator(store, nodes, broker, quiet_s=3600, max_delay_s=3600)
    events.start()
    events.handle(leave("n-lost"))
    await events.stop()
    [evaluation] = await store.list_evaluations(statuses=frozenset({EvaluationStatus.Pending}))
    assert evaluation.job_id == job.id


async def test_a_schedulable_node_joining_runs_queued_jobs_retries_now(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    queued = make_job()
    retry = make_evaluation(
        queued, triggered_by=EvaluationTrigger.JobQueue, wait_until=time.time_ns() + 3600 * 1_000_000_000
    )
    broker.enqueue(retry)
    assert await drain(broker) == []  # due in an hour
    info = make_node_info()
    assert nodes.handshake(info).accepted
    events = reevaluator(store, nodes, broker)
    events.handle(NodeEvent(info.node_id, NodeChange.JOIN))
    await events.flush()
    assert [e.id for e in await drain(broker)] == [retry.id]


async def test_a_pending_node_joining_does_not_wake_queued_jobs(
    tmp_path: Path, store: SQLiteJobStore, broker: EvaluationBroker
) -> None:
    node_store = SQLiteNodeStore(path=tmp_path / "pending-nodes.db")
    try:
        nodes = NodeManager(store=node_store, manual_approval=True)
        queued = make_job()
        broker.enqueue(
            make_evaluation(queued, triggered_by=EvaluationTrigger.JobQueue, wait_until=time.time_ns() + 3600 * 10**9)
        )
        info = make_node_info()
        nodes.handshake(info)
        events = reevaluator(store, nodes, broker)
        events.handle(NodeEvent(info.node_id, NodeChange.JOIN))
        await events.flush()
        assert await drain(broker) == []
    finally:
        node_store.close()


async def test_the_sweep_finds_executions_on_nodes_that_are_not_connected(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    connected, disconnected = make_node_info(), make_node_info()
    for info in (connected, disconnected):
        nodes.handshake(info)
    nodes.shutdown(disconnected.node_id)
    on_connected, _ = await job_with(store, (connected.node_id, S.Running))
    on_disconnected, _ = await job_with(store, (disconnected.node_id, S.Running), (connected.node_id, S.Running))
    on_unknown, _ = await job_with(store, ("n-deleted-long-ago", S.BidAccepted))
    finished, _ = await job_with(store, ("n-deleted-long-ago", S.Completed))
    events = reevaluator(store, nodes, broker)
    created = await events.sweep()
    assert sorted(e.job_id for e in created) == sorted([on_disconnected.id, on_unknown.id])
    assert {e.triggered_by for e in created} == {EvaluationTrigger.NodeLeave}
    assert on_connected.id not in {e.job_id for e in created} and finished.id not in {e.job_id for e in created}


async def test_a_cordoned_node_gets_one_evaluation_per_job_with_work_on_it(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    info = make_node_info()
    nodes.handshake(info)
    running_there, _ = await job_with(store, (info.node_id, S.Running), (info.node_id, S.BidAccepted))
    await job_with(store, (info.node_id, S.Completed))
    await job_with(store, ("n-other", S.Running))
    events = reevaluator(store, nodes, broker)
    nodes.on_change(events.handle)
    nodes.cordon(info.node_id, deadline_ns=None)
    created = await events.flush()
    assert [e.job_id for e in created] == [running_there.id]
    assert {e.triggered_by for e in created} == {EvaluationTrigger.NodeLeave}
    assert [e.job_id for e in await drain(broker)] == [running_there.id]  # not finished_there, not elsewhere


async def test_a_cordon_is_not_displaced_by_a_later_join_of_the_same_node(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    job, _ = await job_with(store, ("n-a", S.Running))
    events = reevaluator(store, nodes, broker)
    events.handle(NodeEvent("n-a", NodeChange.CORDONED))
    events.handle(NodeEvent("n-a", NodeChange.JOIN))
    [evaluation] = await events.flush()
    assert evaluation.job_id == job.id


async def test_an_uncordon_does_not_displace_a_pending_leave(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    job, _ = await job_with(store, ("n-a", S.Running))
    events = reevaluator(store, nodes, broker)
    events.handle(leave("n-a"))
    events.handle(NodeEvent("n-a", NodeChange.UNCORDONED))
    [evaluation] = await events.flush()
    assert evaluation.job_id == job.id


async def test_uncordoning_a_schedulable_node_runs_queued_jobs_retries_now(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    retry = make_evaluation(make_job(), triggered_by=EvaluationTrigger.JobQueue, wait_until=time.time_ns() + 3600 * 10**9)
    broker.enqueue(retry)
    info = make_node_info()
    nodes.handshake(info)
    nodes.cordon(info.node_id, deadline_ns=None)
    events = reevaluator(store, nodes, broker)
    nodes.on_change(events.handle)
    nodes.handshake(info)  # a cordoned node joining is no reason to retry anything
    assert await events.flush() == []
    assert await drain(broker) == []
    nodes.uncordon(info.node_id)
    assert await events.flush() == []  # nothing to evaluate, but the queued job is retried now
    assert [e.id for e in await drain(broker)] == [retry.id]


async def test_uncordoning_a_disconnected_node_does_not_wake_queued_jobs(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    broker.enqueue(
        make_evaluation(make_job(), triggered_by=EvaluationTrigger.JobQueue, wait_until=time.time_ns() + 3600 * 10**9)
    )
    info = make_node_info()
    nodes.handshake(info)
    nodes.cordon(info.node_id, deadline_ns=None)
    nodes.shutdown(info.node_id)
    events = reevaluator(store, nodes, broker)
    nodes.on_change(events.handle)
    nodes.uncordon(info.node_id)
    await events.flush()
    assert await drain(broker) == []


async def test_start_evaluates_the_jobs_on_every_cordoned_node(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    # After a restart: the evaluation a crash lost between the cordon and its flush is made again.
    cordoned, free = make_node_info(), make_node_info()
    for info in (cordoned, free):
        nodes.handshake(info)
    nodes.cordon(cordoned.node_id, deadline_ns=None)
    on_cordoned, _ = await job_with(store, (cordoned.node_id, S.Running))
    await job_with(store, (free.node_id, S.Running))
    events = reevaluator(store, nodes, broker, quiet_s=3600, max_delay_s=3600, sweep_interval_s=3600)
    events.start()
    await events.stop()
    [evaluation] = await store.list_evaluations(statuses=frozenset({EvaluationStatus.Pending}))
    assert evaluation.job_id == on_cordoned.id


async def test_a_schedulable_node_joining_evaluates_every_active_daemon_job_once(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    daemon = make_job(type="daemon", count=0)
    await store.create_job(daemon, [make_event(daemon)])
    batch, _ = await job_with(store, ("n-a", S.Running))
    first, second = make_node_info(), make_node_info()
    assert nodes.handshake(first).accepted and nodes.handshake(second).accepted
    events = reevaluator(store, nodes, broker)
    events.handle(NodeEvent(first.node_id, NodeChange.JOIN))
    events.handle(NodeEvent(second.node_id, NodeChange.JOIN))
    created = await events.flush()
    assert [(e.job_id, e.triggered_by) for e in created] == [(daemon.id, EvaluationTrigger.NodeJoin)]
    assert batch.id not in {e.job_id for e in created}


async def test_changed_labels_evaluate_the_jobs_there_and_the_daemon_jobs(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker
) -> None:
    daemon = make_job(type="daemon", count=0)
    await store.create_job(daemon, [make_event(daemon)])
    info = make_node_info()
    assert nodes.handshake(info).accepted
    there, _ = await job_with(store, (info.node_id, S.Running))
    seen: list[NodeEvent] = []
    nodes.on_change(seen.append)
    nodes.update_info(info.model_copy(update={"labels": {"zone": "eu"}}))
    nodes.update_info(info.model_copy(update={"labels": {"zone": "eu"}}))  # no change: no event
    assert [e.change for e in seen] == [NodeChange.UPDATED]
    events = reevaluator(store, nodes, broker)
    events.handle(seen[0])
    created = await events.flush()
    assert sorted(e.job_id for e in created) == sorted([daemon.id, there.id])
    assert {e.triggered_by for e in created} == {EvaluationTrigger.NodeJoin}


async def test_a_node_back_with_other_labels_is_reported_as_updated(nodes: NodeManager) -> None:
    info = make_node_info()
    assert nodes.handshake(info).accepted
    seen: list[NodeChange] = []
    nodes.on_change(lambda event: seen.append(event.change))
    assert nodes.handshake(info).accepted
    assert nodes.handshake(info.model_copy(update={"labels": {"zone": "us"}})).accepted
    assert seen == [NodeChange.JOIN, NodeChange.JOIN, NodeChange.UPDATED]
