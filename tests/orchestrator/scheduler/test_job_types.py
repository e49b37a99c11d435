"""The schedulers by job type (service, daemon, ops), the retry policy and drained nodes."""

from __future__ import annotations

from tests.orchestrator.scheduler.harness import NOW, SECOND, Harness, make_execution, make_job, make_node

from bacalhau.models.job import LabelSelectorRequirement
from bacalhau.models.retry import DEFAULT_RETRY, RetryPolicy, RetryStrategy
from bacalhau.models.state import EvaluationTrigger, ExecutionStateType, JobStateType

Completed, Failed, Running = ExecutionStateType.Completed, ExecutionStateType.Failed, ExecutionStateType.Running


# -- service --------------------------------------------------------------------------------------------
def test_a_service_places_count_replicas_on_distinct_nodes_and_stays_running() -> None:
    job = make_job(job_type="service", count=2)
    plan = Harness().run(job, [make_node("n-a"), make_node("n-b"), make_node("n-c")])
    assert sorted(e.partition_index for e in plan.new_executions) == [0, 1]
    assert len({e.node_id for e in plan.new_executions}) == 2
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Running


def test_a_service_replica_that_exits_is_replaced_and_the_job_never_completes() -> None:
    job = make_job(job_type="service", count=1, state=JobStateType.Running)
    exited = make_execution(job, "n-a", Completed)
    plan = Harness().run(job, [make_node("n-a"), make_node("n-b")], [exited])
    [replacement] = plan.new_executions
    assert replacement.partition_index == 0 and replacement.previous_execution == exited.id
    assert plan.notes[replacement.id].startswith("replacing replica 0 after")
    assert plan.job_transition is None or plan.job_transition.new_state is not JobStateType.Completed


def test_a_replica_that_just_exited_waits_for_its_backoff() -> None:
    job = make_job(job_type="service", count=1, state=JobStateType.Running)
    exited = make_execution(job, "n-a", Completed, ended_ns=NOW - SECOND // 2)
    plan = Harness().run(job, [make_node("n-a")], [exited])
    assert not plan.new_executions
    [later] = plan.new_evaluations
    assert later.triggered_by is EvaluationTrigger.ExecFailure
    assert later.wait_until == exited.modify_time + DEFAULT_RETRY.backoff_ns


def test_a_crash_looping_replica_backs_off_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(backoff_ns=SECOND, max_backoff_ns=8 * SECOND)
    job = make_job(job_type="service", count=1, state=JobStateType.Running)
    ends = [make_execution(job, "n-a", Completed, ended_ns=NOW - 100 * SECOND + i) for i in range(5)]
    last = ends[-1]
    plan = Harness().run(job, [make_node("n-a")], ends, now_ns=last.modify_time + 1, retry=policy)
    [later] = plan.new_evaluations
    assert later.wait_until == last.modify_time + 8 * SECOND  # 1, 2, 4, 8 (capped) after 5 ends
    assert policy.delay_ns(3) == 4 * SECOND and policy.delay_ns(10) == 8 * SECOND


def test_a_service_replica_failing_by_the_jobs_own_fault_fails_the_job() -> None:
    job = make_job(job_type="service", count=2, state=JobStateType.Running)
    bad = make_execution(job, "n-a", Failed, message="image x:nope not found")
    running = make_execution(job, "n-b", Running, partition=1)
    plan = Harness().run(job, [make_node("n-a"), make_node("n-b")], [bad, running])
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Failed
    assert "image x:nope not found" in plan.job_transition.message
    assert "not retried" in plan.job_transition.details["Hint"]
    assert [s.execution_id for s in plan.stop_executions] == [running.id]


def test_a_service_is_never_failed_for_retries_however_many_its_node_lost() -> None:
    job = make_job(job_type="service", count=1, state=JobStateType.Running)
    lost = [make_execution(job, "n-a", Failed, lost=True) for _ in range(10)]
    plan = Harness().run(job, [make_node("n-a")], lost)
    assert len(plan.new_executions) == 1


# -- daemon ---------------------------------------------------------------------------------------------
def test_a_daemon_runs_on_every_matching_node() -> None:
    job = make_job(job_type="daemon", count=None)
    nodes = [make_node("n-a"), make_node("n-b"), make_node("n-c", engines=("docker",)), make_node("n-d", connected=False)]
    plan = Harness().run(job, nodes)
    assert sorted(e.node_id for e in plan.new_executions) == ["n-a", "n-b"]
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Running


def test_a_daemon_joins_a_late_node_and_keeps_the_others() -> None:
    job = make_job(job_type="daemon", count=None, state=JobStateType.Running)
    on_a = make_execution(job, "n-a", Running)
    plan = Harness().run(job, [make_node("n-a"), make_node("n-late")], [on_a])
    assert [e.node_id for e in plan.new_executions] == ["n-late"]
    assert not plan.stop_executions and plan.job_transition is None


def test_a_daemon_with_no_matching_node_waits_running_and_says_why() -> None:
    job = make_job(job_type="daemon", count=None)
    plan = Harness().run(job, [make_node("n-a", engines=("docker",))])
    assert not plan.new_executions
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Running
    assert "no node matches yet" in plan.job_transition.message
    assert "1 node has no wasm engine" in plan.job_transition.message
    assert "n-a" in plan.job_transition.details["NodeRejections"]


def test_a_daemon_never_completes_its_exited_execution_restarts_on_its_node() -> None:
    job = make_job(job_type="daemon", count=None, state=JobStateType.Running)
    exited = make_execution(job, "n-a", Completed)
    plan = Harness().run(job, [make_node("n-a")], [exited])
    [again] = plan.new_executions
    assert again.node_id == "n-a" and plan.notes[again.id].startswith("restarting on its node")
    assert plan.job_transition is None


def test_a_daemon_execution_on_a_lost_node_fails_and_is_not_moved() -> None:
    job = make_job(job_type="daemon", count=None, state=JobStateType.Running)
    on_gone = make_execution(job, "n-gone", Running)
    on_b = make_execution(job, "n-b", Running)
    plan = Harness().run(job, [make_node("n-gone", connected=False), make_node("n-b")], [on_gone, on_b])
    assert [(s.execution_id, s.new_state) for s in plan.stop_executions] == [(on_gone.id, Failed)]
    assert not plan.new_executions


# -- ops ------------------------------------------------------------------------------------------------
def test_ops_completes_when_every_node_completed() -> None:
    job = make_job(job_type="ops", count=None, state=JobStateType.Running)
    done = [make_execution(job, n, Completed) for n in ("n-a", "n-b")]
    plan = Harness().run(job, [make_node("n-a"), make_node("n-b")], done)
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Completed


def test_ops_retries_a_node_side_failure_on_that_same_node() -> None:
    job = make_job(job_type="ops", count=None, state=JobStateType.Running)
    done = make_execution(job, "n-a", Completed)
    failed = make_execution(job, "n-b", Failed, retryable=True, message="publisher unreachable")
    plan = Harness().run(job, [make_node("n-a"), make_node("n-b")], [done, failed])
    [again] = plan.new_executions
    assert again.node_id == "n-b" and "retry 2 of 3 on its node" in plan.notes[again.id]


def test_ops_fails_when_a_node_it_ran_on_left_before_finishing() -> None:
    job = make_job(job_type="ops", count=None, state=JobStateType.Running)
    done = make_execution(job, "n-a", Completed)
    lost = make_execution(job, "n-gone", Failed, lost=True)
    plan = Harness().run(job, [make_node("n-a")], [done, lost])
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Failed


# -- retry policy ---------------------------------------------------------------------------------------
def test_the_always_strategy_retries_the_jobs_own_failures_as_bacalhau_does() -> None:
    job = make_job(state=JobStateType.Running)
    bad = make_execution(job, "n-a", Failed, message="exit: no such module")
    classified = Harness().run(job, [make_node("n-a"), make_node("n-b")], [bad])
    assert classified.job_transition is not None and classified.job_transition.new_state is JobStateType.Failed
    always = Harness().run(job, [make_node("n-a")], [bad], retry=RetryPolicy(strategy=RetryStrategy.ALWAYS))
    assert [e.node_id for e in always.new_executions] == ["n-a"]  # "always" does not avoid the failed node


def test_a_jobs_meta_overrides_the_node_default_attempts() -> None:
    job = make_job(state=JobStateType.Running)
    job.meta["retry.attempts"] = "1"
    failed = make_execution(job, "n-a", Failed, retryable=True)
    plan = Harness().run(job, [make_node("n-b")], [failed])
    assert plan.job_transition is not None and "retried too many times" in plan.job_transition.message
    job.meta["retry.attempts"] = "5"
    failures = [make_execution(job, f"n-{i}", Failed, retryable=True) for i in range(4)]
    assert len(Harness().run(job, [make_node("n-9")], failures).new_executions) == 1


def test_a_batch_retry_waits_for_its_backoff() -> None:
    job = make_job(state=JobStateType.Running)
    failed = make_execution(job, "n-a", Failed, retryable=True, ended_ns=NOW - SECOND // 10)
    plan = Harness().run(job, [make_node("n-b")], [failed])
    assert not plan.new_executions
    assert [e.wait_until for e in plan.new_evaluations] == [failed.modify_time + DEFAULT_RETRY.backoff_ns]


def test_a_handed_back_execution_uses_no_attempt_and_no_backoff() -> None:
    job = make_job(state=JobStateType.Running)
    handed = [make_execution(job, "n-a", Failed, retryable=True, handed_back=True, ended_ns=NOW) for _ in range(5)]
    plan = Harness().run(job, [make_node("n-a")], handed)
    assert [e.node_id for e in plan.new_executions] == ["n-a"]


# -- drained (cordoned) nodes ----------------------------------------------------------------------------
def test_a_drained_node_gets_no_new_work_and_says_so() -> None:
    job = make_job(queue_timeout_s=0)
    plan = Harness().run(job, [make_node("n-a")], cordoned={"n-a": None})
    assert not plan.new_executions
    assert plan.job_transition is not None and "drained" in plan.job_transition.message


def test_batch_work_on_a_drained_node_moves_once_the_deadline_passed() -> None:
    job = make_job(state=JobStateType.Running)
    running = make_execution(job, "n-a", Running)
    before = Harness().run(job, [make_node("n-a"), make_node("n-b")], [running], cordoned={"n-a": NOW + 5 * SECOND})
    assert not before.stop_executions and not before.new_executions
    assert [e.wait_until for e in before.new_evaluations] == [NOW + 5 * SECOND]
    after = Harness().run(job, [make_node("n-a"), make_node("n-b")], [running], cordoned={"n-a": NOW - 1})
    [stop] = after.stop_executions
    assert stop.new_state is ExecutionStateType.Cancelled and stop.details["HandedBack"] == "true"
    moved = after.new_executions  # placed in the next evaluation, once the stop is recorded
    assert not moved or moved[0].node_id == "n-b"


def test_daemon_executions_on_a_drained_node_stop_at_once() -> None:
    job = make_job(job_type="daemon", count=None, state=JobStateType.Running)
    on_a = make_execution(job, "n-a", Running)
    plan = Harness().run(job, [make_node("n-a")], [on_a], cordoned={"n-a": None})
    assert [s.execution_id for s in plan.stop_executions] == [on_a.id]
    assert not plan.new_executions


def test_a_daemon_follows_its_nodes_labels() -> None:
    """A node whose labels no longer match stops its daemon execution; one that now matches gets one."""
    job = make_job(job_type="daemon", count=None, state=JobStateType.Running)
    job.constraints = [LabelSelectorRequirement(Key="role", Operator="=", Values=["edge"])]
    on_a = make_execution(job, "n-a", Running)
    nodes = [make_node("n-a", labels={"role": "core"}), make_node("n-b", labels={"role": "edge"})]
    plan = Harness().run(job, nodes, [on_a])
    [stop] = plan.stop_executions
    assert stop.execution_id == on_a.id and "no longer matches the job" in stop.reason
    assert [e.node_id for e in plan.new_executions] == ["n-b"]
    # A node only waited for (restarting, or shutting down) keeps its execution.
    waiting = Harness().run(job, [make_node("n-a", connected=False)], [on_a], awaiting_reconnect=frozenset({"n-a"}))
    assert not waiting.stop_executions


def test_a_running_service_waits_for_a_node_instead_of_failing() -> None:
    """A replica with nowhere to go (its node drained or lost, no other fits) does not fail a service
    that is under way: it stays Running, says why once, and tries again after QueueBackoff."""
    job = make_job(job_type="service", count=1, state=JobStateType.Running)
    moved = make_execution(job, "n-a", ExecutionStateType.Cancelled, handed_back=True)
    plan = Harness().run(job, [make_node("n-a")], [moved], cordoned={"n-a": None})
    assert not plan.new_executions
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Running
    assert plan.job_transition.message.startswith("waiting for a node: not enough nodes")
    assert "1 node is cordoned" in plan.job_transition.message
    [retry] = plan.new_evaluations
    assert retry.triggered_by is EvaluationTrigger.JobQueue and retry.wait_until > NOW
    job.state.message = plan.job_transition.message
    again = Harness().run(job, [make_node("n-a")], [moved], cordoned={"n-a": None})
    assert again.job_transition is None and len(again.new_evaluations) == 1  # no new event for the same reason
    # A service that never ran is queued or failed as any job is.
    fresh = make_job(job_type="service", count=1)
    assert Harness().run(fresh, [make_node("n-a")], cordoned={"n-a": None}).job_transition.new_state is JobStateType.Failed
