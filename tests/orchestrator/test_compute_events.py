"""ComputeEventHandler: admission, reconciliation on handshake, and exactly-once result recording."""

from __future__ import annotations

import pytest
from tests.orchestrator.node_harness import RecordingDirectory

from bacalhau.models.clock import rfc3339_nano
from bacalhau.models.execution import DesiredState, Execution, ExecutionState, RunCommandResult
from bacalhau.models.job import Job
from bacalhau.models.node import NODE_TYPE_REQUESTER, ConnectionStatus, NodeInfo
from bacalhau.models.resources import Resources
from bacalhau.models.state import EvaluationStatus, EvaluationTrigger, ExecutionDesiredStateType, ExecutionStateType
from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.compute_events import NOT_HELD_MESSAGE, RESTART_MESSAGE, ComputeEventHandler
from bacalhau.orchestrator.jobstore.base import ExecutionUpdate, HistoryQuery
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.planner import Planner
from bacalhau.orchestrator.scheduler.executions import NODE_LOST_MESSAGE
from bacalhau.transport.messages import (
    BidResult,
    ComputeError,
    ExecutionProgress,
    ExecutionStep,
    Handshake,
    Heartbeat,
    NodeInfoUpdate,
    RunResult,
    ShutdownNotice,
)
from factories import make_event, make_execution, make_job, make_node_info

S = ExecutionStateType
D = ExecutionDesiredStateType


@pytest.fixture
def handler(store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker) -> ComputeEventHandler:
    planner = Planner(store=store, directory=RecordingDirectory(), enqueue=broker.enqueue)
    return ComputeEventHandler(store=store, nodes=nodes, planner=planner, enqueue=broker.enqueue)


@pytest.fixture
async def job(store: SQLiteJobStore) -> Job:
    job = make_job()
    await store.create_job(job, [make_event(job)])
    return job


async def placed(
    store: SQLiteJobStore, job: Job, node_id: str, state: ExecutionStateType, desired: D = D.Running, message: str = ""
) -> Execution:
    execution = make_execution(
        job,
        node_id=node_id,
        compute_state=ExecutionState(StateType=state, Message=message),
        desired_state=DesiredState(StateType=desired),
    )
    await store.create_execution(execution, [])
    return execution


async def history(store: SQLiteJobStore, execution: Execution) -> list[str]:
    events = await store.list_history(execution.job_id, HistoryQuery(execution_id=execution.id))
    return [e.event.message for e in events]


async def evaluations(store: SQLiteJobStore) -> list[EvaluationTrigger]:
    return [e.triggered_by for e in await store.list_evaluations(statuses=frozenset({EvaluationStatus.Pending}))]


def done(execution: Execution) -> RunResult:
    return RunResult(
        execution_id=execution.id, job_id=execution.job_id, run_output=RunCommandResult(stdout="hello\n", exit_code=0)
    )


# ---- admission ----------------------------------------------------------------------------------


async def test_a_rejected_node_is_refused_with_bacalhaus_reason(handler: ComputeEventHandler, nodes: NodeManager) -> None:
    info = make_node_info()
    assert (await handler.handshake(Handshake(node_info=info))).reason == "node registered"
    nodes.reject(info.node_id)
    outcome = await handler.handshake(Handshake(node_info=info, active_execution_ids=[]))
    assert (outcome.accepted, outcome.reason, outcome.cancel_execution_ids) == (False, "node has been rejected", [])


async def test_a_node_that_is_not_a_compute_node_is_refused(handler: ComputeEventHandler) -> None:
    outcome = await handler.handshake(Handshake(node_info=make_node_info(node_type=NODE_TYPE_REQUESTER)))
    assert (outcome.accepted, outcome.reason) == (False, "node is not a compute node")


async def test_a_reconnect_is_accepted_as_such(handler: ComputeEventHandler) -> None:
    info = make_node_info()
    await handler.handshake(Handshake(node_info=info))
    outcome = await handler.handshake(Handshake(node_info=info))
    assert (outcome.accepted, outcome.reason) == (True, "node reconnected")


async def test_heartbeats_need_a_handshake_first(handler: ComputeEventHandler, nodes: NodeManager) -> None:
    info = make_node_info()
    beat = Heartbeat(node_id=info.node_id, available_capacity=Resources(CPU=3))
    assert await handler.heartbeat(beat) is False
    await handler.handshake(Handshake(node_info=info))
    assert await handler.heartbeat(beat) is True
    compute = nodes.get(info.node_id).info.compute_node_info
    assert compute is not None and compute.available_capacity.cpu == 3


async def test_a_shutdown_notice_disconnects_the_node_at_once(handler: ComputeEventHandler, nodes: NodeManager) -> None:
    info = make_node_info()
    await handler.handshake(Handshake(node_info=info))
    await handler.shutdown_notice(ShutdownNotice(node_id=info.node_id, reason="upgrade"))
    state = nodes.get(info.node_id).connection_state
    assert (state.status, state.last_error) == (ConnectionStatus.DISCONNECTED, "graceful shutdown")
    assert await handler.heartbeat(Heartbeat(node_id=info.node_id)) is False


async def test_node_info_of_a_rejected_node_is_ignored(handler: ComputeEventHandler, nodes: NodeManager) -> None:
    info = make_node_info(labels={"v": "1"})
    await handler.handshake(Handshake(node_info=info))
    nodes.reject(info.node_id)
    await handler.update_node_info(NodeInfoUpdate(node_info=info.model_copy(update={"labels": {"v": "2"}})))
    assert nodes.get(info.node_id).info.labels == {"v": "1"}


# ---- reconciliation on handshake ----------------------------------------------------------------


async def reconnect(handler: ComputeEventHandler, info: NodeInfo, held: list[str] | None, *, restarted: bool = False) -> list[str]:
    outcome = await handler.handshake(Handshake(node_info=info, active_execution_ids=held, restarted=restarted))
    assert outcome.accepted
    return outcome.cancel_execution_ids


async def test_reconciliation_fails_what_the_node_lost_and_cancels_what_is_not_wanted(
    handler: ComputeEventHandler, store: SQLiteJobStore, job: Job
) -> None:
    info = make_node_info()
    node = info.node_id
    running = await placed(store, job, node, S.Running)
    lost = await placed(store, job, node, S.BidAccepted)
    finished = await placed(store, job, node, S.Completed, D.Stopped)
    stopping = await placed(store, job, node, S.Running, D.Stopped)
    elsewhere = await placed(store, job, "n-other", S.Running)
    held = [running.id, finished.id, stopping.id, elsewhere.id, "e-unknown"]

    cancel = await reconnect(handler, info, held)

    assert cancel == [finished.id, stopping.id, elsewhere.id, "e-unknown"]
    got = await store.get_execution(lost.id)
    assert got.compute_state.state_type is S.Failed
    assert got.compute_state.message == NOT_HELD_MESSAGE.format(node=node)
    assert got.compute_state.details["Retryable"] == "true"
    assert (await store.get_execution(running.id)).compute_state.state_type is S.Running
    assert await evaluations(store) == [EvaluationTrigger.ExecFailure]

    # Idempotent: the same handshake again fails nothing new and asks for the same cancellations.
    before = [await history(store, e) for e in (running, lost, finished, stopping)]
    assert await reconnect(handler, info, held) == cancel
    assert [await history(store, e) for e in (running, lost, finished, stopping)] == before
    assert await evaluations(store) == [EvaluationTrigger.ExecFailure]


async def test_a_restarted_node_that_lost_executions_says_so(
    handler: ComputeEventHandler, store: SQLiteJobStore, job: Job
) -> None:
    info = make_node_info()
    lost = await placed(store, job, info.node_id, S.Running)
    assert await reconnect(handler, info, [], restarted=True) == []
    assert (await store.get_execution(lost.id)).compute_state.message == RESTART_MESSAGE.format(node=info.node_id)


async def test_a_node_that_does_not_list_its_executions_is_not_reconciled(
    handler: ComputeEventHandler, store: SQLiteJobStore, job: Job
) -> None:
    info = make_node_info()
    running = await placed(store, job, info.node_id, S.Running)
    assert await reconnect(handler, info, None) == []
    assert (await store.get_execution(running.id)).compute_state.state_type is S.Running
    assert await evaluations(store) == []


# ---- exactly-once result recording --------------------------------------------------------------


async def test_a_duplicate_run_result_is_recorded_once(handler: ComputeEventHandler, store: SQLiteJobStore, job: Job) -> None:
    execution = await placed(store, job, "n-1", S.Running)
    await handler.on_run_result(done(execution))
    await handler.on_run_result(done(execution))
    got = await store.get_execution(execution.id)
    assert (got.compute_state.state_type, got.desired_state.state_type) == (S.Completed, D.Stopped)
    assert got.run_output is not None and got.run_output.stdout == "hello\n"
    assert await history(store, execution) == ["Completed successfully"]
    assert await evaluations(store) == [EvaluationTrigger.ExecUpdate]


async def test_the_evaluation_of_a_result_is_of_the_jobs_namespace_type_and_priority(
    handler: ComputeEventHandler, store: SQLiteJobStore
) -> None:
    job = make_job(namespace="team-a", type="ops", priority=5)
    await store.create_job(job, [make_event(job)])
    execution = await placed(store, job, "n-1", S.Running)
    await handler.on_run_result(done(execution))
    (evaluation,) = await store.list_evaluations(statuses=frozenset({EvaluationStatus.Pending}))
    assert (evaluation.job_id, evaluation.namespace, evaluation.type, evaluation.priority) == (job.id, "team-a", "ops", 5)


async def test_a_late_run_result_for_a_failed_execution_is_discarded_and_noted_once(
    handler: ComputeEventHandler, store: SQLiteJobStore, job: Job
) -> None:
    execution = await placed(store, job, "n-1", S.Failed, D.Stopped, message=NODE_LOST_MESSAGE)
    await handler.on_run_result(done(execution))
    await handler.on_run_result(done(execution))  # replayed after a reconnect
    got = await store.get_execution(execution.id)
    assert got.compute_state.state_type is S.Failed and got.run_output is None
    assert await history(store, execution) == [
        "late result discarded: execution already Failed (Execution stop requested because node has disappeared)"
    ]
    assert await evaluations(store) == []


async def test_a_run_result_for_an_execution_no_longer_wanted_is_discarded(
    handler: ComputeEventHandler, store: SQLiteJobStore, job: Job
) -> None:
    execution = await placed(store, job, "n-1", S.Running)
    await store.update_execution(
        ExecutionUpdate(execution_id=execution.id, desired_state=DesiredState(StateType=D.Stopped, Message="job stopped"))
    )
    await handler.on_run_result(done(execution))
    assert (await store.get_execution(execution.id)).compute_state.state_type is S.Running
    assert await history(store, execution) == [
        "late result discarded: execution no longer wanted, desired Stopped (job stopped)"
    ]


async def test_a_replayed_bid_result_does_not_move_a_running_execution_back(
    handler: ComputeEventHandler, store: SQLiteJobStore, job: Job
) -> None:
    execution = await placed(store, job, "n-1", S.AskForBid)
    bid = BidResult(execution_id=execution.id, job_id=job.id, accepted=True)
    await handler.on_bid_result(bid)
    await handler.on_execution_progress(ExecutionProgress(execution_id=execution.id, job_id=job.id, state=S.Running))
    await handler.on_bid_result(bid)
    await handler.on_execution_progress(ExecutionProgress(execution_id=execution.id, job_id=job.id, state=S.Publishing))
    await handler.on_execution_progress(ExecutionProgress(execution_id=execution.id, job_id=job.id, state=S.Running))
    assert (await store.get_execution(execution.id)).compute_state.state_type is S.Publishing
    assert await history(store, execution) == ["Bid accepted", "Running", "Publishing"]


async def test_reports_for_an_ended_execution_change_nothing(
    handler: ComputeEventHandler, store: SQLiteJobStore, job: Job
) -> None:
    execution = await placed(store, job, "n-1", S.Completed, D.Stopped)
    await handler.on_compute_error(ComputeError(execution_id=execution.id, job_id=job.id, message="boom"))
    await handler.on_bid_result(BidResult(execution_id=execution.id, job_id=job.id, accepted=False, reason="busy"))
    await handler.on_execution_progress(ExecutionProgress(execution_id=execution.id, job_id=job.id, state=S.Running))
    assert (await store.get_execution(execution.id)).compute_state.state_type is S.Completed
    assert await history(store, execution) == []
    assert await evaluations(store) == []


async def test_a_bid_for_an_execution_that_was_stopped_is_ignored(
    handler: ComputeEventHandler, store: SQLiteJobStore, job: Job
) -> None:
    execution = await placed(store, job, "n-1", S.AskForBid, D.Stopped)
    await handler.on_bid_result(BidResult(execution_id=execution.id, job_id=job.id, accepted=True))
    assert (await store.get_execution(execution.id)).compute_state.state_type is S.AskForBid


async def test_reports_for_unknown_executions_are_acknowledged(handler: ComputeEventHandler) -> None:
    await handler.on_run_result(RunResult(execution_id="e-unknown", job_id="j-unknown"))
    await handler.on_compute_error(ComputeError(execution_id="e-unknown", job_id="j-unknown"))


async def test_a_node_cannot_report_on_an_execution_placed_on_another(
    handler: ComputeEventHandler, store: SQLiteJobStore, job: Job
) -> None:
    execution = await placed(store, job, "n-1", S.Running)
    forged = done(execution).model_copy(update={"node_id": "n-2"})
    await handler.on_run_result(forged)
    await handler.on_compute_error(
        ComputeError(execution_id=execution.id, job_id=job.id, message="boom", node_id="n-2")
    )
    assert (await store.get_execution(execution.id)).compute_state.state_type is S.Running
    assert await history(store, execution) == []
    await handler.on_run_result(done(execution).model_copy(update={"node_id": "n-1"}))
    assert (await store.get_execution(execution.id)).compute_state.state_type is S.Completed


# ---- steps carried by a final report --------------------------------------------------------------


def step(state: ExecutionStateType, message: str, time_ns: int) -> ExecutionStep:
    return ExecutionStep(state=state, message=message, time_ns=time_ns)


async def execution_events(store: SQLiteJobStore, execution: Execution) -> list[tuple[str, str, str, str]]:
    """(previous state, new state, message, time) of each of the execution's state changes, in order."""
    events = await store.list_history(execution.job_id, HistoryQuery(execution_id=execution.id))
    return [
        (e.execution_state.previous.name, e.execution_state.new.name, e.event.message, e.time)
        for e in events
        if e.execution_state is not None
    ]


async def test_a_result_carrying_its_steps_records_each_as_its_own_event_at_the_compute_time(
    handler: ComputeEventHandler, store: SQLiteJobStore, job: Job
) -> None:
    execution = await placed(store, job, "n-1", S.AskForBid)
    asked_ns = (await store.get_execution(execution.id)).modify_time
    accepted_ns, running_ns = asked_ns + 1_000, asked_ns + 2_000
    result = done(execution).model_copy(
        update={"steps": [step(S.BidAccepted, "Bid accepted", accepted_ns), step(S.Running, "Running", running_ns)]}
    )

    await handler.on_run_result(result)

    events = await execution_events(store, execution)
    assert events[:2] == [
        ("AskForBid", "BidAccepted", "Bid accepted", rfc3339_nano(accepted_ns)),
        ("BidAccepted", "Running", "Running", rfc3339_nano(running_ns)),
    ]
    assert [event[:3] for event in events[2:]] == [("Running", "Completed", "Completed successfully")]
    stored = await store.get_execution(execution.id)
    assert (stored.compute_state.state_type, stored.run_output.stdout if stored.run_output else "") == (S.Completed, "hello\n")
    assert await evaluations(store) == [EvaluationTrigger.ExecUpdate]  # one evaluation, as for any result


async def test_steps_already_recorded_or_out_of_order_are_not_recorded_again(
    handler: ComputeEventHandler, store: SQLiteJobStore, job: Job
) -> None:
    execution = await placed(store, job, "n-1", S.Running)
    now = 1_796_000_000_000_000_000
    failure = ComputeError(
        execution_id=execution.id, job_id=execution.job_id, message="exit 3",
        steps=[step(S.Running, "Running", now), step(S.BidAccepted, "Bid accepted", now), step(S.Publishing, "Publishing", now)],
    )

    await handler.on_compute_error(failure)

    events = await execution_events(store, execution)
    assert [(prev, new, message) for prev, new, message, _ in events] == [
        ("Running", "Publishing", "Publishing"),
        ("Publishing", "Failed", "exit 3"),
    ]


async def test_a_step_time_ahead_of_the_orchestrators_clock_is_recorded_as_now(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker, job: Job
) -> None:
    now = 1_796_000_000_000_000_000
    planner = Planner(store=store, directory=RecordingDirectory(), enqueue=broker.enqueue)
    handler = ComputeEventHandler(store=store, nodes=nodes, planner=planner, enqueue=broker.enqueue, clock_ns=lambda: now)
    execution = await placed(store, job, "n-1", S.AskForBid)

    await handler.on_run_result(done(execution).model_copy(update={"steps": [step(S.BidAccepted, "Bid accepted", now + 10**12)]}))

    first = (await execution_events(store, execution))[0]
    assert (first[1], first[3]) == ("BidAccepted", rfc3339_nano(now))


async def test_steps_of_a_result_no_longer_wanted_are_not_recorded(
    handler: ComputeEventHandler, store: SQLiteJobStore, job: Job
) -> None:
    execution = await placed(store, job, "n-1", S.AskForBid, desired=D.Stopped)
    result = done(execution).model_copy(update={"steps": [step(S.BidAccepted, "Bid accepted", 1), step(S.Running, "Running", 2)]})

    await handler.on_run_result(result)

    assert [new for _, new, _, _ in await execution_events(store, execution)] == []
    assert (await store.get_execution(execution.id)).compute_state.state_type is S.AskForBid


async def test_step_times_stay_between_the_last_change_and_now_and_never_go_back(
    store: SQLiteJobStore, nodes: NodeManager, broker: EvaluationBroker, job: Job
) -> None:
    """A node whose clock runs behind (or ahead) cannot date a step before the offer or after now."""
    execution = await placed(store, job, "n-1", S.AskForBid)
    asked_ns = (await store.get_execution(execution.id)).modify_time
    now = asked_ns + 10_000_000
    planner = Planner(store=store, directory=RecordingDirectory(), enqueue=broker.enqueue)
    handler = ComputeEventHandler(store=store, nodes=nodes, planner=planner, enqueue=broker.enqueue, clock_ns=lambda: now)
    steps = [
        step(S.BidAccepted, "Bid accepted", asked_ns - 60 * 10**9),  # a minute before the offer
        step(S.Running, "Running", asked_ns - 30 * 10**9),
        step(S.Publishing, "Publishing", now + 10**12),  # later than now
    ]

    await handler.on_run_result(done(execution).model_copy(update={"steps": steps}))

    times = [t for _, _, _, t in await execution_events(store, execution)][:3]
    assert times == [rfc3339_nano(asked_ns), rfc3339_nano(asked_ns), rfc3339_nano(now)]


async def test_only_a_compute_nodes_own_states_count_as_steps(
    handler: ComputeEventHandler, store: SQLiteJobStore, job: Job
) -> None:
    execution = await placed(store, job, "n-1", S.AskForBid)
    result = done(execution).model_copy(update={"steps": [step(S.AskForBidAccepted, "not the node's to say", 1)]})

    await handler.on_run_result(result)

    assert [(prev, new) for prev, new, _, _ in await execution_events(store, execution)] == [("AskForBid", "Completed")]
