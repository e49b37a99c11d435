"""The batch/ops scheduler as a pure function: decisions and the reasons users read."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.orchestrator.scheduler.harness import NOW, SECOND, Harness, make_execution, make_job, make_node

from bacalhau.models.constants import DETAIL_HANDED_BACK
from bacalhau.models.job import LabelSelectorRequirement
from bacalhau.models.limits import INT64_MAX, JobLimits
from bacalhau.models.node import Membership
from bacalhau.models.state import ExecutionStateType, JobStateType
from bacalhau.orchestrator.scheduler.plan import Plan


def test_new_job_is_placed_on_a_feasible_node_and_becomes_running() -> None:
    plan = Harness().run(make_job(), [make_node("n-a")])
    assert [e.node_id for e in plan.new_executions] == ["n-a"]
    assert plan.new_executions[0].compute_state.state_type is ExecutionStateType.New
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Running


def test_count_needs_distinct_nodes_and_fails_fast_without_queue_timeout() -> None:
    plan = Harness().run(make_job(count=2), [make_node("n-a")])
    assert not plan.new_executions
    assert plan.job_transition is not None
    assert plan.job_transition.new_state is JobStateType.Failed
    assert "not enough nodes to run job. requested: 2, available: 1" in plan.job_transition.message


def test_count_with_queue_timeout_queues_and_schedules_a_delayed_retry() -> None:
    plan = Harness().run(make_job(count=2, queue_timeout_s=30), [make_node("n-a")])
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Queued
    assert plan.job_transition.message.startswith("Job queued. not enough nodes")
    [retry] = plan.new_evaluations
    assert NOW < retry.wait_until <= NOW + 5 * SECOND


def test_queue_timeout_exceeded_fails_with_reason() -> None:
    job = make_job(count=2, queue_timeout_s=1, state=JobStateType.Queued)
    plan = Harness().run(job, [make_node("n-a")], now_ns=NOW + 10 * SECOND)
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Failed
    assert "queue timeout of 1s" in plan.job_transition.message


def test_rejection_reasons_name_each_node() -> None:
    nodes = [make_node("n-a", engines=("noop",)), make_node("n-b", cpu=0.1), make_node("n-c", connected=False),
             make_node("n-d", membership=Membership.PENDING)]
    plan = Harness().run(make_job(), nodes)
    assert plan.job_transition is not None
    message = plan.job_transition.message
    for reason in ("has no wasm engine", "too little CPU", "is disconnected", "not approved"):
        assert reason in message, message
    # Every node, by reason, for `job describe` and tools.
    groups = json.loads(plan.job_transition.details["NodeRejections"])
    assert sorted(n for g in groups for n in g["Nodes"]) == ["n-a", "n-b", "n-c", "n-d"]


def test_no_nodes_at_all_says_so() -> None:
    plan = Harness().run(make_job(), [])
    assert plan.job_transition is not None and "No compute nodes are connected" in plan.job_transition.message


def test_all_partitions_completed_completes_the_job() -> None:
    job = make_job(state=JobStateType.Running)
    done = make_execution(job, "n-a", ExecutionStateType.Completed)
    plan = Harness().run(job, [make_node("n-a")], [done])
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Completed
    assert not plan.new_executions


def test_running_execution_means_nothing_to_do() -> None:
    job = make_job(state=JobStateType.Running)
    running = make_execution(job, "n-a", ExecutionStateType.Running)
    plan = Harness().run(job, [make_node("n-a")], [running])
    assert plan.is_empty()


def test_task_failure_fails_the_job_with_the_execution_reason() -> None:
    job = make_job(state=JobStateType.Running)
    failed = make_execution(job, "n-a", ExecutionStateType.Failed, message="wasm trap: unreachable")
    plan = Harness().run(job, [make_node("n-a")], [failed])
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Failed
    assert plan.job_transition.message.endswith("wasm trap: unreachable")


def test_an_execution_lost_with_its_node_is_placed_again_on_that_node_once_it_is_back() -> None:
    job = make_job(state=JobStateType.Running)
    lost = make_execution(job, "n-a", ExecutionStateType.Failed, lost=True)
    plan = Harness().run(job, [make_node("n-a")], [lost])
    [again] = plan.new_executions
    assert again.node_id == "n-a" and again.previous_execution == lost.id
    assert "retry 2 of 3 of partition 0" in plan.notes[again.id]


def test_a_failure_the_node_reported_is_never_retried_on_that_node() -> None:
    job = make_job(state=JobStateType.Running)
    failed = make_execution(job, "n-a", ExecutionStateType.Failed, retryable=True, message="registry unreachable")
    plan = Harness().run(job, [make_node("n-a"), make_node("n-b")], [failed])
    [again] = plan.new_executions
    assert again.node_id == "n-b" and again.partition_index == 0
    alone = Harness().run(job, [make_node("n-a")], [failed])
    assert not alone.new_executions
    assert alone.job_transition is not None and alone.job_transition.new_state is JobStateType.Failed
    assert "1 node already failed partition 0 of this job" in alone.job_transition.message
    # What the user can act on is the failure itself: it ends the message.
    assert alone.job_transition.message.endswith(f"The last attempt at partition 0: {failed.id[:10]} failed on n-a: "
                                                 "registry unreachable"), alone.job_transition.message


def test_retryable_failures_stop_after_max_attempts() -> None:
    job = make_job(state=JobStateType.Running)
    failures = [make_execution(job, f"n-{i}", ExecutionStateType.Failed, retryable=True, message=f"boom {i}")
                for i in range(3)]
    plan = Harness().run(job, [make_node("n-9")], failures)
    assert plan.job_transition is not None
    message = plan.job_transition.message
    assert message.startswith("Job failed because it has been retried too many times: partition 0 failed 3 times")
    assert message.endswith("failed on n-2: boom 2"), message


def test_stopped_job_stops_active_executions() -> None:
    job = make_job(state=JobStateType.Stopped)
    running = make_execution(job, "n-a", ExecutionStateType.Running)
    plan = Harness().run(job, [make_node("n-a")], [running])
    assert [s.execution_id for s in plan.stop_executions] == [running.id]
    assert "job has been stopped" in plan.stop_executions[0].reason


def test_execution_on_vanished_node_is_failed_and_replaced() -> None:
    job = make_job(state=JobStateType.Running)
    running = make_execution(job, "n-gone", ExecutionStateType.Running)
    plan = Harness().run(job, [make_node("n-b")], [running])
    assert plan.stop_executions[0].new_state is ExecutionStateType.Failed
    assert [e.node_id for e in plan.new_executions] == ["n-b"]


def test_bid_rejection_excludes_that_node_and_reports_its_reason() -> None:
    job = make_job(state=JobStateType.Running)
    rejected = make_execution(job, "n-a", ExecutionStateType.BidRejected, message="node is full")
    plan = Harness().run(job, [make_node("n-a")], [rejected])
    assert plan.job_transition is not None and "refused the job: node is full" in plan.job_transition.message


def test_ops_job_runs_on_every_matching_node() -> None:
    job = make_job(job_type="ops", count=0)
    plan = Harness().run(job, [make_node("n-a"), make_node("n-b"), make_node("n-c", engines=("noop",))])
    assert sorted(e.node_id for e in plan.new_executions) == ["n-a", "n-b"]


def test_constraints_filter_nodes() -> None:
    job = make_job()
    job.constraints = [LabelSelectorRequirement(Key="zone", Operator="=", Values=["eu"])]
    plan = Harness().run(job, [make_node("n-a", labels={"zone": "us"}), make_node("n-b", labels={"zone": "eu"})])
    assert [e.node_id for e in plan.new_executions] == ["n-b"]


_states = st.sampled_from(list(ExecutionStateType))


@settings(max_examples=200, deadline=None)
@given(
    job_state=st.sampled_from([JobStateType.Completed, JobStateType.Failed, JobStateType.Stopped]),
    exec_states=st.lists(_states, max_size=5),
)
def test_terminal_job_never_gets_new_executions_or_a_state_change(
    job_state: JobStateType, exec_states: list[ExecutionStateType]
) -> None:
    job = make_job(state=job_state, count=3)
    executions = [make_execution(job, f"n-{i}", s, partition=i % 3) for i, s in enumerate(exec_states)]
    plan = Harness().run(job, [make_node(f"n-{i}") for i in range(6)], executions)
    assert not plan.new_executions
    assert plan.job_transition is None
    stopped = {s.execution_id for s in plan.stop_executions}
    assert stopped == {e.id for e in executions if not e.compute_state.state_type.is_terminal}


_REFUSED = (ExecutionStateType.BidRejected, ExecutionStateType.AskForBidRejected)


@settings(max_examples=200, deadline=None)
@given(count=st.integers(1, 6), node_count=st.integers(0, 6), exec_states=st.lists(_states, max_size=6))
def test_batch_places_on_distinct_nodes_when_possible(
    count: int, node_count: int, exec_states: list[ExecutionStateType]
) -> None:
    job = make_job(state=JobStateType.Running, count=count)
    executions = [make_execution(job, f"n-{i % max(node_count, 1)}", s, partition=i % count)
                  for i, s in enumerate(exec_states)]
    plan = Harness().run(job, [make_node(f"n-{i}") for i in range(node_count)], executions)
    live_nodes = [e.node_id for e in executions if not e.compute_state.state_type.is_terminal
                  and e.id not in {s.execution_id for s in plan.stop_executions}]
    new_nodes = [e.node_id for e in plan.new_executions]
    assert len(new_nodes) == len(set(new_nodes))
    # Distinct "when possible": only a retry no other node can take shares a node with a live execution.
    tried = {e.partition_index for e in executions}
    shared = [e for e in plan.new_executions if e.node_id in set(live_nodes)]
    assert all(e.partition_index in tried for e in shared)
    refused = {e.node_id for e in executions if e.compute_state.state_type in _REFUSED}
    free = {f"n-{i}" for i in range(node_count)} - set(live_nodes) - refused - set(new_nodes)
    assert not shared or not free, (shared, free)
    partitions = [e.partition_index for e in plan.new_executions]
    assert all(0 <= p < count for p in partitions) and len(partitions) == len(set(partitions))


def test_an_execution_on_a_lost_node_fails_retryably_and_its_partition_moves() -> None:
    job = make_job(state=JobStateType.Running)
    running = make_execution(job, "n-lost", ExecutionStateType.Running)
    plan = Harness().run(job, [make_node("n-lost", connected=False), make_node("n-b")], [running])
    [stop] = plan.stop_executions
    assert (stop.execution_id, stop.new_state) == (running.id, ExecutionStateType.Failed)
    assert stop.reason == "Execution stop requested because node has disappeared"
    assert stop.details == {"Retryable": "true", "NodeLost": "true"}
    assert [e.node_id for e in plan.new_executions] == ["n-b"]
    assert plan.new_executions[0].previous_execution == running.id


def test_an_execution_lost_earlier_does_not_fail_the_job_once_its_replacement_completes() -> None:
    job = make_job(state=JobStateType.Running)
    lost = make_execution(job, "n-lost", ExecutionStateType.Failed, retryable=True,
                          message="Execution stop requested because node has disappeared")
    done = make_execution(job, "n-b", ExecutionStateType.Completed)
    plan = Harness().run(job, [make_node("n-b")], [lost, done])
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Completed


def test_a_node_awaiting_reconnect_after_a_restart_keeps_its_execution_and_gets_no_new_one() -> None:
    job = make_job(count=2, state=JobStateType.Running)
    running = make_execution(job, "n-away", ExecutionStateType.Running)
    plan = Harness().run(job, [make_node("n-away", connected=False), make_node("n-b")], [running],
                         awaiting_reconnect=frozenset({"n-away"}))
    assert plan.stop_executions == []
    assert [(e.node_id, e.partition_index) for e in plan.new_executions] == [("n-b", 1)]


def test_a_burst_of_jobs_spreads_over_equally_free_nodes() -> None:
    # Between heartbeats every node looks the same; the jobs must not all go to the first node ID.


    nodes = [make_node(f"n-{i}") for i in range(10)]
    harness = Harness()
    chosen = []
    for i in range(200):
        job = make_job()
        job.id = f"j-{i}"
        plan = harness.run(job, nodes)
        chosen.append(plan.new_executions[0].node_id)
    counts = {node: chosen.count(node) for node in set(chosen)}
    assert len(counts) == 10, counts
    assert max(counts.values()) < 45, counts  # roughly 20 each, never one node taking the burst


def test_the_same_job_always_gets_the_same_node_among_equals() -> None:


    nodes = [make_node(f"n-{i}") for i in range(10)]
    first = Harness().run(make_job(), nodes).new_executions[0].node_id
    again = Harness().run(make_job(), [make_node(f"n-{i}") for i in range(10)]).new_executions[0].node_id
    assert first == again  # the scheduler stays a pure function of its inputs


# ---- bounded candidate search (a placement costs O(sample), not O(fleet)) ----------------------


def test_rare_matching_nodes_are_found_in_a_large_fleet() -> None:
    # Only 3 of 500 nodes match the constraint: the search goes on past the sample until it has them.
    nodes = [make_node(f"n-{i:03d}", labels={"zone": "b" if i in (7, 250, 499) else "a"}) for i in range(500)]
    job = make_job(count=3)
    job.constraints = [LabelSelectorRequirement(Key="zone", Operator="=", Values=["b"])]
    plan = Harness().run(job, nodes)
    assert sorted(e.node_id for e in plan.new_executions) == ["n-007", "n-250", "n-499"]


def test_not_enough_nodes_in_a_large_fleet_still_gives_every_nodes_reason() -> None:
    nodes = [make_node(f"n-{i:03d}", engines=("docker",)) for i in range(100)]
    nodes.append(make_node("n-wasm"))
    plan = Harness().run(make_job(count=2), nodes)
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Failed
    message = plan.job_transition.message
    assert "requested: 2, available: 1" in message
    assert "100 nodes have no wasm engine" in message
    [group] = json.loads(plan.job_transition.details["NodeRejections"])
    assert (group["Kind"], group["Count"], len(group["Nodes"])) == ("EngineUnsupported", 100, 10)


def test_many_partitions_get_distinct_nodes_from_a_large_fleet() -> None:
    nodes = [make_node(f"n-{i:03d}") for i in range(300)]
    plan = Harness().run(make_job(count=40), nodes)
    placed = [e.node_id for e in plan.new_executions]
    assert len(placed) == 40 and len(set(placed)) == 40


def test_a_burst_over_a_large_fleet_reaches_most_nodes_and_overloads_none() -> None:
    nodes = [make_node(f"n-{i:03d}") for i in range(100)]
    harness = Harness()
    chosen: list[str] = []
    for i in range(1000):
        job = make_job()
        job.id = f"j-{i}"
        chosen.append(harness.run(job, nodes).new_executions[0].node_id)
    counts = {node: chosen.count(node) for node in set(chosen)}
    assert len(counts) >= 90, len(counts)
    assert max(counts.values()) <= 40, max(counts.values())  # ~10 each on average


def test_the_sample_is_ranked_the_least_queued_node_of_it_wins() -> None:
    # 8 nodes (no more than one sample): the one with nothing queued is chosen, whatever the job.
    nodes = [make_node(f"n-{i}") for i in range(8)]
    for node in nodes:
        assert node.info.compute_node_info is not None
        node.info.compute_node_info.enqueued_executions = 0 if node.info.node_id == "n-5" else 3
    for i in range(20):
        job = make_job()
        job.id = f"j-{i}"
        assert Harness().run(job, nodes).new_executions[0].node_id == "n-5"


# -- work bounded by nodes and executions, never by Count -------------------------------------------------
HUGE_COUNT = 10**12
# Generous enough that the scheduler's own limit check lets the job through: what is measured is placement.
NO_COUNT_LIMIT = JobLimits(max_count=INT64_MAX)


def _peak_bytes(run: Callable[[], Plan]) -> tuple[Plan, int]:
    tracemalloc.start()
    try:
        plan = run()
        return plan, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_huge_count_plans_in_bounded_memory_and_fails_for_lack_of_nodes() -> None:
    nodes = [make_node(f"n-{i}") for i in range(3)]
    plan, peak = _peak_bytes(lambda: Harness().run(make_job(count=HUGE_COUNT), nodes, limits=NO_COUNT_LIMIT))
    assert not plan.new_executions
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Failed
    assert f"not enough nodes to run job. requested: {HUGE_COUNT}, available: 3" in plan.job_transition.message
    # range(10**12) as a list would be terabytes; the plan costs what three nodes cost.
    assert peak < 2_000_000, peak


def test_a_huge_count_with_a_queue_timeout_queues_without_enumerating_partitions() -> None:
    job = make_job(count=HUGE_COUNT, queue_timeout_s=30)
    done = [make_execution(job, f"n-{i}", ExecutionStateType.Completed, partition=i) for i in range(2)]
    nodes = [make_node(f"n-{i}") for i in range(4)]
    plan, peak = _peak_bytes(lambda: Harness().run(job, nodes, done, limits=NO_COUNT_LIMIT))
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Queued
    assert f"requested: {HUGE_COUNT - 2}, available: 2" in plan.job_transition.message
    assert len(plan.new_evaluations) == 1
    assert peak < 2_000_000, peak


def test_missing_partitions_are_the_lowest_not_placed_ones() -> None:
    job = make_job(count=4)
    executions = [
        make_execution(job, "n-a", ExecutionStateType.Completed, partition=0),
        make_execution(job, "n-b", ExecutionStateType.Running, partition=2),
    ]
    plan = Harness().run(job, [make_node(n) for n in ("n-a", "n-b", "n-c", "n-d")], executions)
    assert sorted(e.partition_index for e in plan.new_executions) == [1, 3]
    assert {e.node_id for e in plan.new_executions} == {"n-c", "n-d"}


def test_a_stored_job_beyond_the_limits_is_failed_with_each_reason_and_its_executions_stopped() -> None:
    job = make_job(count=10**30, state=JobStateType.Running)
    job.task.timeouts.execution_timeout = 10**20
    job.priority = 10**30
    running = make_execution(job, "n-a", ExecutionStateType.Running)
    plan = Harness().run(job, [make_node("n-a")], [running])
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Failed
    message = plan.job_transition.message
    assert message.startswith("Job failed because it exceeds this orchestrator's job limits: ")
    assert f"Count: {10**30} exceeds the limit of 1000 (JobAdmissionControl.Limits.MaxCount)" in message
    assert "Tasks[0].Timeouts.ExecutionTimeout: 100000000000000000000s exceeds the limit of 315360000s" in message
    assert "Priority: " in message
    assert [s.execution_id for s in plan.stop_executions] == [running.id]
    assert not plan.new_executions


def test_configured_limits_apply_to_stored_jobs() -> None:
    plan = Harness().run(make_job(count=3), [make_node(n) for n in ("n-a", "n-b", "n-c")], limits=JobLimits(max_count=2))
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Failed
    assert "Count: 3 exceeds the limit of 2 (JobAdmissionControl.Limits.MaxCount)" in plan.job_transition.message


# ---- draining and restarting nodes -------------------------------------------------------------


def test_a_draining_node_gets_no_new_execution_and_says_why() -> None:
    plan = Harness().run(make_job(), [make_node("n-a")], draining=frozenset({"n-a"}))
    assert plan.new_executions == []
    # It is stopping on purpose, most likely to come back: the job waits for it (bounded) instead of failing.
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Queued
    assert "1 node is shutting down; waiting for node(s) n-a to reconnect" in plan.job_transition.message, (
        plan.job_transition.message
    )
    plan = Harness().run(make_job(), [make_node("n-a"), make_node("n-b")], draining=frozenset({"n-a"}))
    assert [e.node_id for e in plan.new_executions] == ["n-b"]


def test_handed_back_executions_do_not_use_up_the_jobs_retries() -> None:
    job = make_job(state=JobStateType.Running)
    handed = [make_execution(job, "n-a", ExecutionStateType.Failed, retryable=True) for _ in range(5)]
    for e in handed:
        e.compute_state.details[DETAIL_HANDED_BACK] = "true"
    plan = Harness().run(job, [make_node("n-a")], handed)
    assert [e.node_id for e in plan.new_executions] == ["n-a"]
    # Real failures still count.
    failed = [make_execution(job, "n-a", ExecutionStateType.Failed, retryable=True) for _ in range(3)]
    plan = Harness().run(job, [make_node("n-a")], [*handed, *failed])
    assert plan.job_transition is not None and "retried too many times" in plan.job_transition.message


def test_with_nowhere_to_go_a_job_waits_for_a_node_expected_back() -> None:
    plan = Harness().run(make_job(), [make_node("n-away", connected=False)], awaiting_reconnect=frozenset({"n-away"}))
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Queued
    assert "waiting for node(s) n-away to reconnect" in plan.job_transition.message
    [retry] = plan.new_evaluations
    assert retry.wait_until == NOW + 5 * SECOND
    # Once it is no longer expected, the job fails with the reason as before.
    plan = Harness().run(make_job(), [make_node("n-away", connected=False)])
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Failed
