"""The result cache in the pure scheduler: a fresh job reuses an identical job's completed execution, and
a job that completes becomes the one identical jobs reuse."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from tests.orchestrator.scheduler.harness import NOW, make_execution, make_job, make_node

from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import Execution, ExecutionState, RunCommandResult
from bacalhau.models.job import Job, SpecConfig
from bacalhau.models.node import NodeState
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.orchestrator.result_reuse import DETAIL_REUSED_FROM, NOT_ASKED, ReuseCheck, check
from bacalhau.orchestrator.scheduler.plan import Plan, Snapshot
from bacalhau.orchestrator.scheduler.schedule import schedule

FP = "f" * 64
S = ExecutionStateType


def ids() -> Callable[[str], str]:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}new-{next(counter)}"


def run(
    job: Job,
    *,
    executions: list[Execution] | None = None,
    nodes: list[NodeState] | None = None,
    reuse: ReuseCheck = NOT_ASKED,
    reusable: Execution | None = None,
) -> Plan:
    snap = Snapshot(
        job=job,
        executions=tuple(executions or ()),
        nodes=tuple(nodes if nodes is not None else [make_node("n-a")]),
        now_ns=NOW,
        reuse=reuse,
        reusable=reusable,
    )
    return schedule(Evaluation(ID="ev-1", JobID=job.id), snap, ids())


def completed_elsewhere() -> Execution:
    """The Completed execution of another, identical job: its outputs are what a reuse copies."""
    other = make_job().model_copy(update={"id": "j-original", "name": "original"})
    done = make_execution(other, "n-ran-it", S.Completed, desired=ExecutionDesiredStateType.Stopped,
                          message="Completed successfully")
    done.run_output = RunCommandResult(Stdout="42\n", ExitCode=0)
    done.published_result = SpecConfig(Type="local", Params={"URL": "http://n-ran-it/results/e.tgz"})
    done.eval_id = "ev-original"
    return done


def fresh_job() -> Job:
    job = make_job()
    job.version = 3  # not the source's version: the copy must take this job's
    job.namespace = "team-a"
    return job


# ---- a fresh job reuses -------------------------------------------------------------------------


def test_a_fresh_job_completes_with_a_copy_of_the_identical_jobs_execution() -> None:
    job = fresh_job()
    source = completed_elsewhere()
    plan = run(job, reuse=ReuseCheck(fingerprint=FP), reusable=source)

    assert plan.new_executions == [] and plan.stop_executions == [] and plan.new_evaluations == []
    assert not plan.is_empty()
    [copy] = plan.reused_executions
    assert copy.id == "e-new-1" and copy.id != source.id
    assert (copy.job_id, copy.job_version, copy.namespace, copy.name) == (job.id, 3, "team-a", job.name)
    assert copy.job is not None and copy.job.id == job.id
    assert copy.eval_id == "ev-1"
    assert copy.node_id == source.node_id
    assert copy.run_output == source.run_output and copy.published_result == source.published_result
    assert copy.compute_state.state_type is S.Completed
    assert copy.compute_state.details == {DETAIL_REUSED_FROM: source.id}
    assert copy.desired_state.state_type is ExecutionDesiredStateType.Stopped
    assert (copy.create_time, copy.modify_time, copy.revision) == (NOW, NOW, 0)

    reason = f"result reused from execution {source.id} of job j-original (Meta results.reuse)"
    assert plan.job_transition is not None
    assert (plan.job_transition.new_state, plan.job_transition.message) == (JobStateType.Completed, reason)
    assert copy.compute_state.message == reason == plan.notes[copy.id] == plan.comment
    # A reused result is not remembered again: the original stays the source.
    assert plan.remember_result is None


def test_the_source_execution_is_not_changed_by_the_copy() -> None:
    source = completed_elsewhere()
    before = source.model_copy(deep=True)
    plan = run(fresh_job(), reuse=ReuseCheck(fingerprint=FP), reusable=source)
    [copy] = plan.reused_executions
    copy.run_output.stdout = "changed"  # type: ignore[union-attr]
    copy.compute_state.details["x"] = "y"
    assert source == before


def test_a_queued_job_reuses_too_and_needs_no_node() -> None:
    job = make_job(state=JobStateType.Queued)
    plan = run(job, nodes=[], reuse=ReuseCheck(fingerprint=FP), reusable=completed_elsewhere())
    assert len(plan.reused_executions) == 1
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Completed


def test_a_job_with_executions_already_does_not_reuse() -> None:
    job = make_job(state=JobStateType.Running)
    running = make_execution(job, "n-a", S.Running)
    plan = run(job, executions=[running], reuse=ReuseCheck(fingerprint=FP), reusable=completed_elsewhere())
    assert plan.reused_executions == []
    assert plan.is_empty()


def test_a_job_whose_attempt_failed_is_retried_not_reused() -> None:
    job = make_job(state=JobStateType.Running)
    failed = make_execution(job, "n-a", S.Failed, lost=True)
    plan = run(job, executions=[failed], reuse=ReuseCheck(fingerprint=FP), reusable=completed_elsewhere())
    assert plan.reused_executions == []
    assert [e.node_id for e in plan.new_executions] == ["n-a"]


def test_without_a_fingerprint_nothing_is_reused() -> None:
    refused = ReuseCheck(refusal="result not reused: only batch jobs with Count 1 are reused")
    for reuse in (NOT_ASKED, refused):
        plan = run(make_job(), reuse=reuse, reusable=completed_elsewhere())
        assert plan.reused_executions == []
        assert [e.node_id for e in plan.new_executions] == ["n-a"]
        assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Running


def test_a_fingerprint_with_nothing_to_reuse_places_the_job() -> None:
    plan = run(make_job(), reuse=ReuseCheck(fingerprint=FP), reusable=None)
    assert plan.reused_executions == [] and len(plan.new_executions) == 1
    assert plan.job_transition is not None
    assert (plan.job_transition.new_state, plan.job_transition.message) == (JobStateType.Running, "")


def test_a_service_job_is_never_completed_by_a_reuse() -> None:
    job = make_job(job_type="service")
    plan = run(job, reuse=ReuseCheck(fingerprint=FP), reusable=completed_elsewhere())
    assert plan.reused_executions == []
    assert len(plan.new_executions) == 1


def test_a_terminal_job_is_not_reused() -> None:
    job = make_job(state=JobStateType.Stopped)
    plan = run(job, reuse=ReuseCheck(fingerprint=FP), reusable=completed_elsewhere())
    assert plan.reused_executions == [] and plan.is_empty()


# ---- a completing job is remembered ---------------------------------------------------------------


def test_a_job_completing_with_a_fingerprint_is_remembered() -> None:
    job = make_job(state=JobStateType.Running)
    done = make_execution(job, "n-a", S.Completed, desired=ExecutionDesiredStateType.Stopped)
    plan = run(job, executions=[done], reuse=ReuseCheck(fingerprint=FP))
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Completed
    assert plan.remember_result == (FP, done.id)


def test_a_job_completing_without_a_fingerprint_is_not_remembered() -> None:
    job = make_job(state=JobStateType.Running)
    done = make_execution(job, "n-a", S.Completed, desired=ExecutionDesiredStateType.Stopped)
    for reuse in (NOT_ASKED, ReuseCheck(refusal="result not reused: ...")):
        plan = run(job, executions=[done], reuse=reuse)
        assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Completed
        assert plan.remember_result is None


def test_the_completed_execution_of_the_current_version_is_remembered() -> None:
    job = make_job(state=JobStateType.Running)
    job.version = 2
    old = make_execution(job, "n-a", S.Completed, desired=ExecutionDesiredStateType.Stopped)
    old.job_version = 1
    new = make_execution(job, "n-b", S.Completed, desired=ExecutionDesiredStateType.Stopped)
    plan = run(job, executions=[old, new], nodes=[make_node("n-a"), make_node("n-b")],
               reuse=ReuseCheck(fingerprint=FP))
    assert plan.remember_result == (FP, new.id)


def test_a_job_completed_by_a_reuse_does_not_remember_its_copy() -> None:
    job = make_job(state=JobStateType.Running)
    copy = make_execution(job, "n-a", S.Completed, desired=ExecutionDesiredStateType.Stopped)
    copy.compute_state = ExecutionState(StateType=S.Completed, Details={DETAIL_REUSED_FROM: "e-original"})
    plan = run(job, executions=[copy], reuse=ReuseCheck(fingerprint=FP))
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Completed
    assert plan.remember_result is None


def test_a_job_already_completed_is_not_remembered_again() -> None:
    job = make_job(state=JobStateType.Completed)
    done = make_execution(job, "n-a", S.Completed, desired=ExecutionDesiredStateType.Stopped)
    plan = run(job, executions=[done], reuse=ReuseCheck(fingerprint=FP))
    assert plan.remember_result is None and plan.is_empty()


# ---- an opted-in job that may not be reused says why ------------------------------------------------


def test_a_refused_job_says_why_when_it_is_placed() -> None:
    job = make_job()
    job.meta["results.reuse"] = "true"
    job.task.env["TOKEN"] = "env:TOKEN"
    reuse = check(job)
    assert reuse.refusal
    plan = run(job, reuse=reuse)
    assert len(plan.new_executions) == 1
    assert plan.job_transition is not None
    assert plan.job_transition.new_state is JobStateType.Running
    assert plan.job_transition.message == (
        "result not reused: Env TOKEN is forwarded from the node (env:), not part of the spec"
    )
