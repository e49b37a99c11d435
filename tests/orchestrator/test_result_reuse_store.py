"""The result cache through the store and a real worker: remember_result/find_result on every JobStore
backend (the conformance suite's BACKENDS), then two identical opted-in jobs end to end: the first runs on
a node, the second completes at once with a copy of the first's result and nothing offered to any node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.conformance.test_jobstore import BACKENDS, Backend, BackendFactory
from tests.orchestrator.node_harness import RecordingDirectory

from bacalhau.models import constants as c
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import DesiredState, Execution, ExecutionState, RunCommandResult
from bacalhau.models.job import Job, SpecConfig
from bacalhau.models.state import EvaluationStatus, ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.compute_events import ComputeEventHandler
from bacalhau.orchestrator.jobstore.base import HistoryQuery, JobStore
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.planner import Planner
from bacalhau.orchestrator.result_reuse import DETAIL_REUSED_FROM, check
from bacalhau.orchestrator.worker import Worker
from bacalhau.transport.messages import BidResult, RunResult
from factories import FakeClock, make_evaluation, make_event, make_execution, make_job, make_node_info, make_task

S = ExecutionStateType
FP = "a" * 64
OTHER_FP = "b" * 64

# ---- the store contract -------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    factory: BackendFactory = request.param
    return factory(tmp_path, FakeClock())


@pytest.fixture
async def job_store(backend: Backend) -> AsyncIterator[JobStore]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.close()


async def stored(store: JobStore, state: ExecutionStateType = S.Completed) -> Execution:
    job = make_job()
    await store.create_job(job, [make_event(job)])
    execution = make_execution(
        job,
        compute_state=ExecutionState(StateType=state),
        desired_state=DesiredState(StateType=ExecutionDesiredStateType.Stopped),
        run_output=RunCommandResult(Stdout="out\n", ExitCode=0),
    )
    await store.create_execution(execution, [])
    return await store.get_execution(execution.id)


async def test_a_remembered_result_is_found(job_store: JobStore) -> None:
    execution = await stored(job_store)
    await job_store.remember_result(FP, execution.job_id, execution.id)
    assert await job_store.find_result(FP) == execution


async def test_an_unknown_fingerprint_finds_nothing(job_store: JobStore) -> None:
    execution = await stored(job_store)
    await job_store.remember_result(FP, execution.job_id, execution.id)
    assert await job_store.find_result(OTHER_FP) is None
    assert await job_store.find_result("") is None


@pytest.mark.parametrize("state", [S.Failed, S.Cancelled, S.Running, S.BidAccepted])
async def test_an_execution_that_is_not_completed_is_not_a_result(job_store: JobStore, state: ExecutionStateType) -> None:
    execution = await stored(job_store, state)
    await job_store.remember_result(FP, execution.job_id, execution.id)
    assert await job_store.find_result(FP) is None


async def test_remembering_again_replaces(job_store: JobStore) -> None:
    first, second = await stored(job_store), await stored(job_store)
    await job_store.remember_result(FP, first.job_id, first.id)
    await job_store.remember_result(OTHER_FP, first.job_id, first.id)
    await job_store.remember_result(FP, second.job_id, second.id)
    assert await job_store.find_result(FP) == second
    assert await job_store.find_result(OTHER_FP) == first  # only that fingerprint's entry moved


async def test_a_replacement_that_is_not_completed_hides_the_older_result(job_store: JobStore) -> None:
    # The newest entry is the one looked at: an older completed one is not a fallback.
    done, failed = await stored(job_store), await stored(job_store, S.Failed)
    await job_store.remember_result(FP, done.job_id, done.id)
    await job_store.remember_result(FP, failed.job_id, failed.id)
    assert await job_store.find_result(FP) is None


async def test_a_remembered_result_survives_reopening(backend: Backend, job_store: JobStore) -> None:
    execution = await stored(job_store)
    await job_store.remember_result(FP, execution.job_id, execution.id)
    again = await backend.open()
    try:
        assert await again.find_result(FP) == execution
    finally:
        await again.close()


async def test_remembering_inside_a_rolled_back_transaction_is_forgotten(job_store: JobStore) -> None:
    execution = await stored(job_store)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with job_store.transaction():
            await job_store.remember_result(FP, execution.job_id, execution.id)
            raise Abort
    assert await job_store.find_result(FP) is None


# ---- end to end through a real worker ------------------------------------------------------------

PINNED_IMAGE = "ubuntu@sha256:" + "ab" * 32


def opted_in_job() -> Job:
    """An eligible job: docker pinned by digest, no inputs, no network; names differ from call to call."""
    return make_job(
        meta={c.META_RESULTS_REUSE: "true"},
        tasks=[make_task(engine=SpecConfig(Type="docker", Params={"Image": PINNED_IMAGE, "Parameters": ["date"]}))],
    )


class Cluster:
    """A real SQLite store, node manager, broker, planner, worker and compute event handler; the compute
    node is a RecordingDirectory (it records offers; the test answers for it through the handler)."""

    def __init__(self, store: SQLiteJobStore, nodes: NodeManager) -> None:
        self.store = store
        self.directory = RecordingDirectory()
        self.broker = EvaluationBroker()
        planner = Planner(store=store, directory=self.directory, enqueue=self.broker.enqueue)
        self.worker = Worker(broker=self.broker, store=store, nodes=nodes, planner=planner, queue_backoff_ns=10**9)
        self.handler = ComputeEventHandler(store=store, nodes=nodes, planner=planner, enqueue=self.broker.enqueue)

    async def submit(self, job: Job) -> Evaluation:
        await self.store.create_job(job, [make_event(job)])
        evaluation = make_evaluation(job)
        await self.store.create_evaluation(evaluation)
        return evaluation

    async def pending_evaluation(self, job_id: str) -> Evaluation:
        pending = await self.store.list_evaluations(statuses=frozenset({EvaluationStatus.Pending}))
        [evaluation] = [e for e in pending if e.job_id == job_id]
        return evaluation

    def offers(self) -> list[str]:
        return [o.execution.id for node in self.directory.nodes.values() for o in node.offers]


async def test_an_identical_opted_in_job_reuses_the_first_ones_result(store: SQLiteJobStore, nodes: NodeManager) -> None:
    info = make_node_info()
    assert nodes.handshake(info).accepted
    cluster = Cluster(store, nodes)
    first, second = opted_in_job(), opted_in_job()
    fingerprint = check(first).fingerprint
    assert fingerprint and check(second).fingerprint == fingerprint

    # The first job runs: an execution offered to the node.
    await cluster.worker.process(await cluster.submit(first))
    [ran] = await store.list_executions(first.id)
    assert cluster.offers() == [ran.id] and ran.node_id == info.node_id
    assert await store.find_result(fingerprint) is None  # not completed yet: nothing to reuse

    # The node runs it and reports the result; the job's next evaluation completes it and remembers it.
    await cluster.handler.on_bid_result(BidResult(execution_id=ran.id, job_id=first.id, accepted=True))
    await cluster.handler.on_run_result(
        RunResult(execution_id=ran.id, job_id=first.id, run_output=RunCommandResult(Stdout="Tue\n", ExitCode=0))
    )
    await cluster.worker.process(await cluster.pending_evaluation(first.id))
    assert (await store.get_job(first.id)).state.state_type is JobStateType.Completed
    remembered = await store.find_result(fingerprint)
    assert remembered is not None and remembered.id == ran.id

    # The second, identical job completes at its first evaluation, without running anywhere.
    evaluation = await cluster.submit(second)
    await cluster.worker.process(evaluation)
    assert cluster.offers() == [ran.id]  # nothing new offered to any node
    assert (await store.get_evaluation(evaluation.id)).status is EvaluationStatus.Complete
    state = (await store.get_job(second.id)).state
    reason = f"result reused from execution {ran.id} of job {first.id} (Meta results.reuse)"
    assert (state.state_type, state.message) == (JobStateType.Completed, reason)
    [copy] = await store.list_executions(second.id)
    assert copy.id != ran.id and copy.job_id == second.id and copy.node_id == ran.node_id
    assert copy.compute_state.state_type is S.Completed
    assert copy.compute_state.details == {DETAIL_REUSED_FROM: ran.id}
    assert copy.run_output is not None and copy.run_output.stdout == "Tue\n"
    # Its history says where the result came from; the cache still points at the original.
    events = await store.list_history(second.id, HistoryQuery(execution_id=copy.id))
    assert [e.event.message for e in events] == [reason]
    remembered = await store.find_result(fingerprint)
    assert remembered is not None and remembered.id == ran.id
    # Nothing is left to evaluate for either job.
    pending = await store.list_evaluations(statuses=frozenset({EvaluationStatus.Pending}))
    assert [e for e in pending if e.job_id in (first.id, second.id)] == []


async def test_a_job_that_did_not_opt_in_runs_even_when_an_identical_result_exists(
    store: SQLiteJobStore, nodes: NodeManager
) -> None:
    info = make_node_info()
    assert nodes.handshake(info).accepted
    cluster = Cluster(store, nodes)
    original = await stored(store)
    await store.remember_result(check(opted_in_job()).fingerprint, original.job_id, original.id)
    plain = opted_in_job()
    plain.meta.clear()
    await cluster.worker.process(await cluster.submit(plain))
    [execution] = await store.list_executions(plain.id)
    assert execution.compute_state.state_type is S.AskForBid
    assert cluster.offers() == [execution.id]
    assert (await store.get_job(plain.id)).state.state_type is JobStateType.Running


async def test_an_opted_in_job_that_may_not_be_reused_runs_and_says_why(store: SQLiteJobStore, nodes: NodeManager) -> None:
    assert nodes.handshake(make_node_info()).accepted
    cluster = Cluster(store, nodes)
    job = opted_in_job()
    job.task.engine.params["Image"] = "ubuntu:24.04"
    await cluster.worker.process(await cluster.submit(job))
    state = (await store.get_job(job.id)).state
    assert state.state_type is JobStateType.Running
    assert state.message == (
        "result not reused: the image 'ubuntu:24.04' is a tag, which can move: pin it by digest (image@sha256:...)"
    )
    assert len(cluster.offers()) == 1
