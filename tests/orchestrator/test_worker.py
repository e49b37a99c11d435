"""Worker: a batch of evaluations planned one by one and stored in one transaction, each plan on its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.orchestrator.node_harness import RecordingDirectory

from bacalhau.models.evaluation import Evaluation
from bacalhau.models.job import Job
from bacalhau.models.state import EvaluationStatus, ExecutionStateType, JobStateType
from bacalhau.orchestrator import worker as worker_module
from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.jobstore.base import ExecutionQuery
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.planner import Planner
from bacalhau.orchestrator.scheduler.plan import Plan, Snapshot
from bacalhau.orchestrator.worker import Worker
from factories import make_evaluation, make_event, make_job, make_node_info


class StoppedWhilePlanning(SQLiteJobStore):
    """A real store where one job is stopped (by another task) right after the worker read it."""

    stop_job_id = ""

    async def list_executions(self, job_id: str, query: ExecutionQuery | None = None) -> list:  # type: ignore[type-arg]
        found = await super().list_executions(job_id, query)
        if job_id == self.stop_job_id:
            self.stop_job_id = ""  # once
            await self.update_job_state(
                job_id, JobStateType.Stopped, "stopped by the user", expected=frozenset({JobStateType.Pending}), events=[]
            )
        return found


async def submitted(store: SQLiteJobStore, count: int) -> list[tuple[Job, Evaluation]]:
    out = []
    for _ in range(count):
        job = make_job()
        await store.create_job(job, [make_event(job)])
        evaluation = make_evaluation(job)
        await store.create_evaluation(evaluation)
        out.append((job, evaluation))
    return out


def worker(store: SQLiteJobStore, nodes: NodeManager, directory: RecordingDirectory) -> Worker:
    broker = EvaluationBroker()
    planner = Planner(store=store, directory=directory, enqueue=broker.enqueue)
    return Worker(broker=broker, store=store, nodes=nodes, planner=planner, queue_backoff_ns=10**9)


async def status_of(store: SQLiteJobStore, evaluation: Evaluation) -> EvaluationStatus:
    return (await store.get_evaluation(evaluation.id)).status


async def test_a_batch_places_every_job_and_offers_each_execution_once(store: SQLiteJobStore, nodes: NodeManager) -> None:
    info = make_node_info()
    assert nodes.handshake(info).accepted
    directory = RecordingDirectory()
    work = await submitted(store, 5)
    await worker(store, nodes, directory).process_batch([e for _, e in work])
    for job, evaluation in work:
        assert await status_of(store, evaluation) is EvaluationStatus.Complete
        assert (await store.get_job(job.id)).state.state_type is JobStateType.Running
        [execution] = await store.list_executions(job.id)
        assert execution.compute_state.state_type is ExecutionStateType.AskForBid
    offers = directory.nodes[info.node_id].offers
    assert sorted(o.execution.job_id for o in offers) == sorted(job.id for job, _ in work)
    # What is offered is the execution as stored (namespace, revision and times filled in).
    assert all(o.execution.revision == 1 and o.execution.create_time > 0 for o in offers)


async def test_a_job_stopped_while_its_plan_was_made_drops_that_plan_only(tmp_path: Path, nodes: NodeManager) -> None:
    store = StoppedWhilePlanning(path=tmp_path / "jobs.db")
    try:
        info = make_node_info()
        assert nodes.handshake(info).accepted
        directory = RecordingDirectory()
        work = await submitted(store, 3)
        stopped_job, stopped_eval = work[1]
        store.stop_job_id = stopped_job.id
        await worker(store, nodes, directory).process_batch([e for _, e in work])
        assert await status_of(store, stopped_eval) is EvaluationStatus.Canceled
        assert await store.list_executions(stopped_job.id) == []  # nothing of the dropped plan was written
        assert (await store.get_job(stopped_job.id)).state.state_type is JobStateType.Stopped
        for job, evaluation in (work[0], work[2]):
            assert await status_of(store, evaluation) is EvaluationStatus.Complete
            assert len(await store.list_executions(job.id)) == 1
        offered = {o.execution.job_id for o in directory.nodes[info.node_id].offers}
        assert offered == {work[0][0].id, work[2][0].id}
    finally:
        await store.close()


async def test_an_evaluation_of_a_deleted_job_is_canceled_and_the_rest_of_the_batch_goes_on(
    store: SQLiteJobStore, nodes: NodeManager
) -> None:
    assert nodes.handshake(make_node_info()).accepted
    work = await submitted(store, 2)
    ghost = make_evaluation(make_job())  # its job was never stored
    await store.create_evaluation(ghost)
    await worker(store, nodes, RecordingDirectory()).process_batch([work[0][1], ghost, work[1][1]])
    assert await status_of(store, ghost) is EvaluationStatus.Canceled
    assert await status_of(store, work[0][1]) is EvaluationStatus.Complete
    assert await status_of(store, work[1][1]) is EvaluationStatus.Complete


async def test_without_nodes_each_job_of_the_batch_fails_with_its_reason(store: SQLiteJobStore, nodes: NodeManager) -> None:
    work = await submitted(store, 3)
    await worker(store, nodes, RecordingDirectory()).process_batch([e for _, e in work])
    for job, evaluation in work:
        assert await status_of(store, evaluation) is EvaluationStatus.Complete
        state = (await store.get_job(job.id)).state
        assert state.state_type is JobStateType.Failed
        assert "No compute nodes are connected" in state.message


async def test_an_evaluation_that_breaks_the_scheduler_fails_its_job_with_the_reason(
    store: SQLiteJobStore, nodes: NodeManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    [(broken_job, broken), (fine_job, fine)] = await submitted(store, 2)
    real = worker_module.schedule

    def breaks_on_one_job(evaluation: Evaluation, snapshot: Snapshot) -> Plan:
        if snapshot.job.id == broken_job.id:
            raise ZeroDivisionError("division by zero in the placement")
        return real(evaluation, snapshot)

    monkeypatch.setattr(worker_module, "schedule", breaks_on_one_job)
    await worker(store, nodes, RecordingDirectory()).process_batch([broken, fine])

    evaluation = await store.get_evaluation(broken.id)
    assert evaluation.status is EvaluationStatus.Failed
    state = (await store.get_job(broken_job.id)).state
    assert state.state_type is JobStateType.Failed
    assert state.message == "internal error while scheduling: ZeroDivisionError: division by zero in the placement"
    # The rest of the batch is planned as usual (no nodes: failed with its own reason).
    assert await status_of(store, fine) is EvaluationStatus.Complete
    assert "No compute nodes are connected" in (await store.get_job(fine_job.id)).state.message
