"""A poisoned job already in the store (beyond JobAdmissionControl.Limits, written around the API) never
crashes or stalls the orchestrator: it is failed with the reason at start-up while the node works on."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.orchestrator.node_harness import FakeMonotonic, make_orchestrator, stop, wait_for

from bacalhau.models.errors import ValidationFailed
from bacalhau.models.job import Job, TimeoutConfig
from bacalhau.models.node import NodeInfo
from bacalhau.models.state import EvaluationStatus, EvaluationTrigger, JobStateType
from bacalhau.orchestrator.evaluations import new_evaluation
from bacalhau.orchestrator.jobstore.base import HistoryQuery
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from bacalhau.orchestrator.service import Orchestrator
from bacalhau.transport.messages import Handshake
from factories import make_event, make_execution, make_job, make_node_info, make_task

POISON_COUNT = 10**30
POISON_TIMEOUT_S = 10**20


async def store_poisoned_jobs(data_dir: Path, running_on: NodeInfo) -> tuple[Job, Job]:
    """Write two jobs straight into jobs.db, as an older version or a hand-edited store could leave
    them: a Pending one (Count 10**30, a pending evaluation) and a Running one (ExecutionTimeout and
    TotalTimeout 10**20 s, an execution on a node), then close the store: the node is 'down'."""
    store = SQLiteJobStore(path=data_dir / "orchestrator" / "jobs.db")
    try:
        pending = make_job(count=POISON_COUNT, priority=POISON_COUNT)
        await store.create_job(pending, [make_event(pending)])
        await store.create_evaluation(new_evaluation(pending, EvaluationTrigger.JobRegister, 1))
        timeouts = TimeoutConfig(ExecutionTimeout=POISON_TIMEOUT_S, TotalTimeout=POISON_TIMEOUT_S)
        running = make_job(tasks=[make_task(timeouts=timeouts)], state={"StateType": JobStateType.Running})
        await store.create_job(running, [make_event(running)])
        await store.create_execution(make_execution(running, node_id=running_on.node_id), [])
    finally:
        await store.close()
    return pending, running


async def job_message(orchestrator: Orchestrator, job_id: str, state: JobStateType) -> str:
    async def probe() -> str | None:
        job = await orchestrator.store.get_job(job_id)
        return job.state.message if job.state.state_type is state else None

    return await wait_for(probe, what=f"job {job_id} to be {state.name}")


async def test_poisoned_jobs_in_the_store_are_failed_at_start_up_and_the_node_works_on(
    tmp_path: Path, mono: FakeMonotonic
) -> None:
    node = make_node_info()
    pending, running = await store_poisoned_jobs(tmp_path, node)
    orchestrator = make_orchestrator(tmp_path, monotonic=mono)
    try:
        await orchestrator.recover()
        orchestrator.start_workers()

        message = await job_message(orchestrator, pending.id, JobStateType.Failed)
        assert message.startswith("Job failed because it exceeds this orchestrator's job limits: ")
        assert f"Count: {POISON_COUNT} exceeds the limit of 1000 (JobAdmissionControl.Limits.MaxCount)" in message
        assert "Priority: " in message and "JobAdmissionControl.Limits.MaxPriority" in message
        message = await job_message(orchestrator, running.id, JobStateType.Failed)
        assert f"Tasks[0].Timeouts.ExecutionTimeout: {POISON_TIMEOUT_S}s exceeds the limit of 315360000s" in message
        assert "Tasks[0].Timeouts.TotalTimeout" in message
        history = await orchestrator.store.list_history(running.id, HistoryQuery())
        assert any(h.event.message == f"Failed. {message}" for h in history)
        assert running.id not in orchestrator.timeouts._timers  # never armed: no timer of 10**20 s

        # Its execution is stopped once its node is back; no evaluation is left pending.
        outcome = await orchestrator.compute_events.handshake(Handshake(node_info=node, active_execution_ids=[]))
        assert outcome.accepted

        async def evaluated() -> bool:
            return not await orchestrator.store.list_evaluations(statuses=frozenset({EvaluationStatus.Pending}))

        await wait_for(evaluated, what="every evaluation to be processed")
        [execution] = await orchestrator.store.list_executions(running.id)
        assert execution.compute_state.state_type.is_terminal

        # The node works on: a normal job is placed on the node.
        fine = (await orchestrator.endpoint.submit(make_job())).job_id

        async def placed() -> bool:
            return [e.node_id for e in await orchestrator.store.list_executions(fine)] == [node.node_id]

        await wait_for(placed, what="the new job to be placed")
        # And submit refuses the same spec with every reason.
        with pytest.raises(ValidationFailed) as refused:
            await orchestrator.endpoint.submit(make_job(count=POISON_COUNT))
        assert f"Count: {POISON_COUNT} exceeds the limit of 1000" in refused.value.message
    finally:
        await stop(orchestrator)
