"""Properties of the scheduler over random worlds: job types, fleets, executions, drains and retry policies.

Each test states one invariant in its docstring and checks it on every world hypothesis draws. A world
is drawn as small plain specs (NodeSpec, ExecSpec) so that a failing example prints readably, and built
into the models only when the scheduler runs.
"""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from typing import TypeVar

from hypothesis import given, note, settings
from hypothesis import strategies as st
from tests.orchestrator.scheduler.harness import NOW, SECOND, Harness, make_execution, make_job, make_node

from bacalhau.models import constants as c
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import DesiredState, Execution, ExecutionState
from bacalhau.models.job import Job, LabelSelectorRequirement
from bacalhau.models.node import Membership, NodeState
from bacalhau.models.node_rejections import DETAIL_NODE_REJECTIONS, RejectionKind, rejection_groups
from bacalhau.models.retry import RetryPolicy, RetryStrategy
from bacalhau.models.state import EvaluationTrigger, ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.orchestrator.scheduler.executions import REFUSED, counts_as_attempt, failed_on_node, is_active
from bacalhau.orchestrator.scheduler.plan import Plan, Snapshot
from bacalhau.orchestrator.scheduler.schedule import schedule
from bacalhau.orchestrator.selection.feasibility import rejection

PER_NODE = ("ops", "daemon")
PARTITIONED = ("batch", "service")
ALL_TYPES = PARTITIONED + PER_NODE
NOT_ENOUGH = "not enough nodes to run job. requested: "
_REQUESTED = re.compile(r"not enough nodes to run job\. requested: (\d+), available: (\d+)")
EXAMPLES = settings(max_examples=100, deadline=None)


# -- the world, as specs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeSpec:
    id: str
    connected: bool
    membership: Membership
    engines: tuple[str, ...]
    zone: str | None
    cpu: float


@dataclass(frozen=True)
class ExecSpec:
    node: str
    state: ExecutionStateType
    partition: int = 0
    stop_desired: bool = False
    retryable: bool = False
    lost: bool = False
    handed_back: bool = False
    ended_ago_s: float = 60
    old_version: bool = False


@dataclass(frozen=True)
class World:
    job_type: str
    count: int | None
    job_state: JobStateType
    engine: str
    cpu: str
    needs_eu: bool
    queue_timeout_s: int
    meta_attempts: str | None
    nodes: tuple[NodeSpec, ...]
    execs: tuple[ExecSpec, ...]
    awaiting: frozenset[str]
    draining: frozenset[str]
    cordoned: tuple[tuple[str, int | None], ...]
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @cached_property
    def job(self) -> Job:
        job = make_job(count=self.count, job_type=self.job_type, state=self.job_state,
                       queue_timeout_s=self.queue_timeout_s, engine=self.engine, cpu=self.cpu)
        if self.needs_eu:
            job.constraints = [LabelSelectorRequirement(Key="zone", Operator="=", Values=["eu"])]
        if self.meta_attempts is not None:
            job.meta["retry.attempts"] = self.meta_attempts
        return job

    @cached_property
    def fleet(self) -> tuple[NodeState, ...]:
        return tuple(
            make_node(n.id, cpu=n.cpu, engines=n.engines, labels={"zone": n.zone} if n.zone else None,
                      connected=n.connected, membership=n.membership)
            for n in self.nodes
        )

    @cached_property
    def executions(self) -> tuple[Execution, ...]:
        return tuple(_execution(self.job, i, spec) for i, spec in enumerate(self.execs))

    @property
    def policy(self) -> RetryPolicy:
        return self.retry.for_job(self.job.meta)

    @property
    def current(self) -> list[Execution]:
        """The executions of the job's current version."""
        return [e for e in self.executions if e.job_version == self.job.version]

    def run(self, executions: tuple[Execution, ...] | None = None) -> Plan:
        """The scheduler's plan for this world, with new execution IDs from a fresh counter."""
        snap = Snapshot(
            job=self.job, executions=self.executions if executions is None else executions,
            nodes=tuple(sorted(self.fleet, key=lambda n: n.info.node_id)), now_ns=NOW,
            queue_backoff_ns=5 * SECOND, awaiting_reconnect=self.awaiting, draining=self.draining,
            cordoned=dict(self.cordoned), retry=self.retry,
        )
        ids = itertools.count(1)
        return schedule(Evaluation(ID="ev", JobID=self.job.id), snap, make_id=lambda prefix: f"{prefix}new-{next(ids)}")


def _execution(job: Job, seq: int, spec: ExecSpec) -> Execution:
    """`spec` as the store holds it: created in spec order, ended `ended_ago_s` before NOW if terminal."""
    details: dict[str, str] = {}
    if spec.retryable or spec.lost:
        details["Retryable"] = "true"
    if spec.lost:
        details[c.DETAIL_NODE_LOST] = "true"
    if spec.handed_back:
        details[c.DETAIL_HANDED_BACK] = "true"
    created = NOW - 7200 * SECOND + seq
    desired = ExecutionDesiredStateType.Stopped if spec.stop_desired else ExecutionDesiredStateType.Running
    return Execution(
        ID=f"e-{seq}", JobID=job.id, NodeID=spec.node, PartitionIndex=spec.partition,
        JobVersion=job.version - 1 if spec.old_version else job.version,
        ComputeState=ExecutionState(StateType=spec.state, Details=details, Message=f"m{seq}"),
        DesiredState=DesiredState(StateType=desired), CreateTime=created,
        ModifyTime=NOW - int(spec.ended_ago_s * SECOND) if spec.state.is_terminal else created,
    )


_NODE_IDS = tuple(f"n-{i}" for i in range(7))
_T = TypeVar("_T")


def _one_in(n: int) -> st.SearchStrategy[bool]:
    """True one time in `n`: the unusual case stays in every run without drowning the usual one."""
    return st.sampled_from([True] + [False] * (n - 1))


def _weighted(*choices: tuple[int, _T]) -> st.SearchStrategy[_T]:
    """Each value as often as its weight says."""
    return st.sampled_from([value for weight, value in choices for _ in range(weight)])


# Strategies are built once, not per draw: building them was most of the time a run took. The odds lean
# towards nodes that fit and executions that ran, so that placements and retries are common, not rare.
_NodeFields = tuple[bool, Membership, tuple[str, ...], str | None, float]  # NodeSpec's, after its ID
_NODE_FIELDS = st.tuples(
    _one_in(10).map(lambda down: not down),
    _weighted((12, Membership.APPROVED), (1, Membership.PENDING), (1, Membership.REJECTED)),
    _weighted((8, ("wasm", "docker")), (1, ("wasm",)), (1, ("docker",)), (1, ("noop",))),
    _weighted((3, "eu"), (1, "us"), (1, None)),
    _weighted((6, 4.0), (1, 1.0), (1, 0.25)),
)
_STATES = _weighted((3, ExecutionStateType.Running), (2, ExecutionStateType.Completed),
                    (4, ExecutionStateType.Failed), *((1, state) for state in ExecutionStateType))
_HEALTHY: _NodeFields = (True, Membership.APPROVED, ("wasm", "docker"), "eu", 4.0)
_RUNNING_OR_FAILED = st.sampled_from([ExecutionStateType.Running, ExecutionStateType.Failed])
_NODE_COUNT = _weighted((1, 0), (1, 1), *((2, n) for n in range(2, 7)))
_DEADLINE = st.sampled_from([None, NOW - 1, NOW + 5 * SECOND])
_RETRY = st.builds(
    RetryPolicy,
    strategy=st.sampled_from(list(RetryStrategy)),
    attempts=st.integers(1, 4),
    backoff_ns=st.sampled_from([0, SECOND, 10 * SECOND]),
    max_backoff_ns=st.sampled_from([5 * SECOND, 60 * SECOND]),
)


@cache
def _nodes(n: int) -> st.SearchStrategy[list[_NodeFields]]:
    return st.lists(_NODE_FIELDS, min_size=n, max_size=n)


@cache
def _exec_specs(node_count: int, count: int, max_execs: int) -> st.SearchStrategy[list[ExecSpec]]:
    """Executions on the fleet's nodes (or on a node no longer in it), of partitions in [0, count)."""
    spec = st.builds(
        ExecSpec,
        node=st.sampled_from([*_NODE_IDS[:node_count], "n-gone"]),
        state=_STATES,
        partition=st.integers(0, count - 1),
        stop_desired=_one_in(6),
        retryable=_one_in(4).map(lambda jobs_fault: not jobs_fault),
        lost=_one_in(4),
        handed_back=_one_in(6),
        ended_ago_s=st.sampled_from([0, 0.5, 5, 60, 3600]),
        old_version=_one_in(6),
    )
    return st.lists(spec, max_size=max_execs)


@cache
def _flags(n: int) -> st.SearchStrategy[list[bool]]:
    return st.lists(_one_in(8), min_size=n, max_size=n)


@st.composite
def worlds(
    draw: st.DrawFn,
    job_types: tuple[str, ...] = ALL_TYPES,
    *,
    max_execs: int = 6,
    job_states: tuple[JobStateType, ...] = (JobStateType.Pending, JobStateType.Queued, JobStateType.Running),
    crowded: bool = False,
) -> World:
    """A job of one of `job_types`, up to 6 nodes, up to `max_execs` executions, drains and a retry policy.

    `crowded`: more partitions than healthy nodes, the case in which a retry falls back onto a node that
    runs another partition ("distinct when possible"), otherwise rare.
    """
    job_type = draw(st.sampled_from(job_types))
    count = None if job_type in PER_NODE else draw(st.integers(2 if crowded else 1, 4))
    fields = [_HEALTHY] * draw(st.integers(1, (count or 2) - 1)) if crowded else draw(_nodes(draw(_NODE_COUNT)))
    nodes = tuple(NodeSpec(_NODE_IDS[i], *f) for i, f in enumerate(fields))
    execs = tuple(draw(_exec_specs(len(nodes), count or 1, max_execs)))
    if crowded:  # every partition tried once: running, or failed by its node (a retry that may fall back)
        execs += tuple(
            ExecSpec(draw(st.sampled_from(_NODE_IDS[: len(nodes)])), draw(_RUNNING_OR_FAILED), p, retryable=True)
            for p in range(count or 1)
        )

    def subset(of: list[str]) -> frozenset[str]:
        return frozenset(node_id for node_id, chosen in zip(of, draw(_flags(len(of))), strict=True) if chosen)

    ids = [n.id for n in nodes]
    # Awaiting reconnect is a state of disconnected nodes only (NodeManager drops it on the handshake).
    awaiting = subset([n.id for n in nodes if not n.connected])
    draining = frozenset() if crowded else subset(ids)
    cordoned = () if crowded else tuple((node_id, draw(_DEADLINE)) for node_id in sorted(subset(ids)))
    return World(
        job_type=job_type, count=count, job_state=draw(st.sampled_from(job_states)),
        engine=draw(_weighted((3, "wasm"), (1, "docker"))),
        cpu=draw(_weighted((3, "500m"), (1, "2"))),
        needs_eu=draw(_one_in(4)) and not crowded, queue_timeout_s=draw(st.sampled_from([0, 30])),
        meta_attempts=draw(st.sampled_from([None, None, None, "1", "2"])),
        nodes=nodes, execs=execs, awaiting=awaiting, draining=draining, cordoned=cordoned, retry=draw(_RETRY),
    )


# Batch and service worlds, a third of them crowded.
_PARTITIONED_WORLDS = st.one_of(worlds(PARTITIONED), worlds(PARTITIONED), worlds(PARTITIONED, crowded=True))


# -- what the properties read off a plan ------------------------------------------------------------------
def _plan(world: World) -> Plan:
    """The world's plan, the world noted for the failure report (the schemathesis pytest plugin blanks
    hypothesis' own "Failing test case" arguments, so the note is what shows the example)."""
    note(f"{world!r}")
    return world.run()


def _surviving_active(world: World, plan: Plan) -> list[Execution]:
    """The current version's executions still active once the plan's stops are applied."""
    stopped = {s.execution_id for s in plan.stop_executions}
    return [e for e in world.current if is_active(e) and e.id not in stopped]


def _refused_nodes(world: World) -> set[str]:
    """Nodes that refused (BidRejected, AskForBidRejected) the job's current version."""
    return {e.node_id for e in world.current if e.compute_state.state_type in REFUSED}


def _eligible(world: World, node: NodeState) -> bool:
    """May take new work of this job: feasible, not draining, cordoned or awaiting reconnect, and never
    refused this version of the job."""
    node_id = node.info.node_id
    return (
        rejection(world.job, node) is None
        and node_id not in world.draining
        and node_id not in dict(world.cordoned)
        and node_id not in world.awaiting
        and node_id not in _refused_nodes(world)
    )


def _backoff_evaluation_due(world: World, plan: Plan) -> bool:
    """Some backoff evaluation is due after now and no later than the capped backoff."""
    cap = max(world.policy.max_backoff_ns, world.policy.backoff_ns)
    return any(
        ev.triggered_by is EvaluationTrigger.ExecFailure and NOW < ev.wait_until <= NOW + cap
        for ev in plan.new_evaluations
    )


def _decisions(plan: Plan) -> tuple[object, ...]:
    """What a plan decides, without the random IDs of its follow-up evaluations."""
    transition = plan.job_transition
    return (
        sorted((e.id, e.node_id, e.partition_index, e.previous_execution, plan.notes.get(e.id, ""))
               for e in plan.new_executions),
        sorted((s.execution_id, s.reason, s.new_state, sorted(s.details.items())) for s in plan.stop_executions),
        None if transition is None else (transition.new_state, transition.message, sorted(transition.details.items())),
        sorted((ev.triggered_by, ev.wait_until) for ev in plan.new_evaluations),
        plan.comment,
    )


# -- 1. one active execution per partition ----------------------------------------------------------------
@EXAMPLES
@given(_PARTITIONED_WORLDS)
def test_batch_and_service_never_run_a_partition_twice(world: World) -> None:
    """Batch/service: new executions use distinct partitions in [0, Count), never one that still has an
    active execution after the plan's stops (nor, for batch, a completed one); so a world with at most one
    active execution per partition keeps at most one, and at most Count executions in all."""
    plan = _plan(world)
    count = world.job.effective_count
    new = [e.partition_index for e in plan.new_executions]
    assert all(0 <= p < count for p in new), new
    assert len(new) == len(set(new)), new
    survivors = _surviving_active(world, plan)
    assert not set(new) & {e.partition_index for e in survivors}, (new, survivors)
    if world.job_type == "batch":
        completed = {e.partition_index for e in world.current if e.compute_state.state_type is ExecutionStateType.Completed}
        assert not set(new) & completed, (new, completed)
    before = Counter(e.partition_index for e in world.current if is_active(e))
    if all(n <= 1 for n in before.values()):
        after = Counter([e.partition_index for e in survivors] + new)
        assert all(n <= 1 for n in after.values()), after
        assert sum(after.values()) <= count


# -- 2. new work only where it may go ---------------------------------------------------------------------
@EXAMPLES
@given(st.one_of(worlds(), worlds(PARTITIONED, crowded=True)))
def test_new_executions_go_only_to_nodes_that_may_take_them(world: World) -> None:
    """Every new execution's node is in the fleet, passes feasibility (approved, connected, engine, labels,
    capacity), is not draining, cordoned or awaiting reconnect, never refused this job version, and gets
    at most one new execution of the plan."""
    plan = _plan(world)
    fleet = {n.info.node_id: n for n in world.fleet}
    nodes = [e.node_id for e in plan.new_executions]
    assert len(nodes) == len(set(nodes)), nodes
    for node_id in nodes:
        assert node_id in fleet, node_id
        assert _eligible(world, fleet[node_id]), (node_id, rejection(world.job, fleet[node_id]))


@EXAMPLES
@given(worlds())
def test_stops_target_active_executions_once(world: World) -> None:
    """Every stop in a plan names an active execution of the job (any version), and no execution twice."""
    plan = _plan(world)
    stopped = [s.execution_id for s in plan.stop_executions]
    assert len(stopped) == len(set(stopped)), stopped
    assert set(stopped) <= {e.id for e in world.executions if is_active(e)}


# -- 3. every "no" carries its reasons --------------------------------------------------------------------
@EXAMPLES
@given(worlds())
def test_queued_and_failed_jobs_say_why(world: World) -> None:
    """A Queued job is always one without enough nodes ("Job queued. not enough nodes ...") whose
    QueueTimeout lasts or a node of which is expected back (awaiting reconnect, draining), with a retry
    evaluation due before the timeout ends; a Failed one says "not enough nodes" (only once there is no
    time left nor node to wait for, and never for a daemon) or "Job failed because ..."; neither places
    anything."""
    plan = _plan(world)
    transition = plan.job_transition
    if transition is None:
        return
    expected_back = world.awaiting | world.draining
    deadline = world.job.create_time + world.queue_timeout_s * SECOND
    time_left = world.queue_timeout_s > 0 and deadline > NOW
    if transition.new_state is JobStateType.Queued:
        assert transition.message.startswith("Job queued. " + NOT_ENOUGH), transition.message
        # Queued only while the QueueTimeout lasts (then retried before it ends), or for a node expected back.
        assert time_left or expected_back
        retries = [ev.wait_until for ev in plan.new_evaluations if ev.triggered_by is EvaluationTrigger.JobQueue]
        assert retries and all(due > NOW for due in retries)
        assert not time_left or all(due <= deadline for due in retries), (retries, deadline)
    if transition.new_state is JobStateType.Failed:
        assert transition.message.startswith((NOT_ENOUGH, "Job failed because ")), transition.message
    if transition.message.startswith(NOT_ENOUGH):  # failed, not queued: no time left, no node to wait for
        assert world.job_type != "daemon" and not time_left and not expected_back
    if transition.new_state in (JobStateType.Queued, JobStateType.Failed, JobStateType.Completed):
        assert not plan.new_executions


@EXAMPLES
@given(worlds())
def test_a_job_that_fails_or_completes_leaves_nothing_running(world: World) -> None:
    """A plan that moves the job to Failed or Completed stops every active execution of its current
    version (job_state.fail does; so does Bacalhau's handleFailure, markStopped on every non-terminal one)."""
    plan = _plan(world)
    transition = plan.job_transition
    if transition is None or transition.new_state not in (JobStateType.Failed, JobStateType.Completed):
        return
    assert not _surviving_active(world, plan), transition.message


def _expected_kind(world: World, node: NodeState, busy: set[str]) -> RejectionKind | None:
    """The one reason `node` is not a candidate (feasibility's order of checks), None when it is one."""
    node_id = node.info.node_id
    if node_id in _refused_nodes(world):
        return RejectionKind.BID_REJECTED
    if node_id in busy:
        return RejectionKind.ALREADY_RUNS_JOB
    if node_id in world.draining:
        return RejectionKind.SHUTTING_DOWN
    if node_id in dict(world.cordoned):
        return RejectionKind.CORDONED
    found = rejection(world.job, node)
    return None if found is None else found.kind


def _busy(world: World, plan: Plan) -> set[str]:
    """Nodes a partitioned job occupied when the plan placed it: an active execution the plan does not
    stop (a stop because the job itself fails comes after the placement, so it still counts), or
    (batch) one that completed there."""
    failing = {s.execution_id for s in plan.stop_executions if s.reason == "Execution stopped due to job failure"}
    busy = {e.node_id for e in _surviving_active(world, plan)}
    busy |= {e.node_id for e in world.current if e.id in failing and is_active(e)}
    if world.job_type == "batch":
        busy |= {e.node_id for e in world.current if e.compute_state.state_type is ExecutionStateType.Completed}
    return busy


@EXAMPLES
@given(worlds())
def test_not_enough_nodes_accounts_for_every_node(world: World) -> None:
    """When the plan queues or fails the job for lack of nodes ("requested: R, available: A", A < R) or
    starts a daemon that no node matches yet, Details["NodeRejections"] parses, and every node of the fleet
    is either available or listed under exactly one feasibility reason (refused, already runs the job,
    shutting down, cordoned, or feasibility's own) and that reason is the right one; the only extra
    entries are AlreadyFailed ones naming a node that really failed that partition (classified retries)."""
    plan = _plan(world)
    transition = plan.job_transition
    if transition is None:
        return
    daemon_waits = world.job_type == "daemon" and transition.message.startswith("no node matches yet")
    match = _REQUESTED.search(transition.message)
    if not (daemon_waits or (match and transition.new_state in (JobStateType.Queued, JobStateType.Failed))):
        return
    requested, available = (int(match[1]), int(match[2])) if match else (1, 0)
    assert available < requested <= world.job.effective_count, transition.message
    if not world.fleet:
        assert daemon_waits or "No compute nodes are connected" in transition.message
    groups = rejection_groups(transition.details)
    assert bool(groups) == (DETAIL_NODE_REJECTIONS in transition.details)  # present means readable
    counted = sum(g.count for g in groups)
    listed = sum(len(g.nodes) for g in groups)
    by_kind: dict[str, list[str]] = {}
    for g in groups:
        by_kind.setdefault(g.kind, []).extend(g.nodes)
    already_failed = by_kind.pop(RejectionKind.ALREADY_FAILED.value, [])
    other = [n for nodes in by_kind.values() for n in nodes]
    assert len(other) == len(set(other)), by_kind  # at most one feasibility reason per node
    counted_once = counted - sum(g.count for g in groups if g.kind == RejectionKind.ALREADY_FAILED.value)
    assert counted_once + available >= len(world.fleet), (counted, available, by_kind)
    if already_failed:
        assert world.policy.strategy is RetryStrategy.CLASSIFIED
        failed = {e.node_id for e in world.current if failed_on_node(e)}
        assert set(already_failed) <= failed, (already_failed, failed)
    elif world.job_type in PER_NODE or requested > len(world.fleet):
        # Nothing placed and the search saw every node: each one is available or rejected, exactly.
        assert counted_once + available == len(world.fleet), (counted, available, by_kind)
    if listed != counted:  # lists cut at MAX_NODES_PER_GROUP, or groups folded: the per-node check cannot run
        return
    busy = _busy(world, plan) if world.job_type in PARTITIONED else set()
    for node in world.fleet:
        expected = _expected_kind(world, node, busy)
        kinds = sorted(kind for kind, nodes in by_kind.items() if node.info.node_id in nodes)
        assert kinds == ([] if expected is None else [expected.value]), (node.info.node_id, kinds, expected)


# -- 4. daemon and ops cover their nodes ------------------------------------------------------------------
@EXAMPLES
@given(worlds(PER_NODE, max_execs=0))
def test_a_fresh_daemon_or_ops_job_runs_on_exactly_the_eligible_nodes(world: World) -> None:
    """A daemon or ops job without executions gets one new execution (partition 0) on each node that passes
    feasibility and is neither draining nor cordoned, and on no other node."""
    plan = _plan(world)
    eligible = {n.info.node_id for n in world.fleet if _eligible(world, n)}
    assert sorted(e.node_id for e in plan.new_executions) == sorted(eligible)
    assert all(e.partition_index == 0 for e in plan.new_executions)
    if world.job_type == "daemon" or eligible:
        assert plan.job_transition is None or plan.job_transition.new_state is JobStateType.Running


@EXAMPLES
@given(worlds(("daemon",)))
def test_a_daemon_covers_every_eligible_node_unless_a_backoff_delays_it(world: World) -> None:
    """Unless the job fails, after a daemon's plan every eligible node (as in the test above, and never
    refused this version) has exactly one active execution, kept or new, or else a backoff evaluation is
    due within the capped backoff; a new execution never gives a node a second active one."""
    plan = _plan(world)
    if plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Failed:
        return
    per_node = Counter([e.node_id for e in _surviving_active(world, plan)] + [e.node_id for e in plan.new_executions])
    before = Counter(e.node_id for e in world.current if is_active(e))
    assert all(per_node[e.node_id] <= max(1, before[e.node_id]) for e in plan.new_executions), per_node
    for node in world.fleet:
        if _eligible(world, node) and per_node[node.info.node_id] == 0:
            assert _backoff_evaluation_due(world, plan), (node.info.node_id, plan.new_evaluations)
        elif _eligible(world, node) and before[node.info.node_id] <= 1:
            assert per_node[node.info.node_id] == 1, (node.info.node_id, per_node)


@EXAMPLES
@given(worlds(("ops",)))
def test_ops_runs_once_per_node_within_its_attempts(world: World) -> None:
    """Ops: a new execution only on a node with no active execution of the job left, none that completed
    there, and fewer than `attempts` counted failures there."""
    plan = _plan(world)
    survivors = {e.node_id for e in _surviving_active(world, plan)}
    lost = {s.execution_id for s in plan.stop_executions if s.details.get(c.DETAIL_NODE_LOST) == "true"}
    for new in plan.new_executions:
        mine = [e for e in world.current if e.node_id == new.node_id]
        assert new.node_id not in survivors
        assert not any(e.compute_state.state_type is ExecutionStateType.Completed for e in mine)
        assert sum(1 for e in mine if counts_as_attempt(e) or e.id in lost) < world.policy.attempts


# -- 5. a terminal job ------------------------------------------------------------------------------------
@EXAMPLES
@given(worlds(job_states=(JobStateType.Completed, JobStateType.Failed, JobStateType.Stopped)))
def test_a_terminal_job_gets_nothing_new_and_stops_everything_active(world: World) -> None:
    """A Completed, Failed or Stopped job gets no new executions, no state change and no follow-up
    evaluation, and every active execution (of any version) is stopped exactly once."""
    plan = _plan(world)
    assert not plan.new_executions and plan.job_transition is None and not plan.new_evaluations
    stopped = [s.execution_id for s in plan.stop_executions]
    assert sorted(stopped) == sorted(e.id for e in world.executions if is_active(e))


# -- 6. retry bounds --------------------------------------------------------------------------------------
@EXAMPLES
@given(worlds(("batch",)))
def test_batch_never_tries_a_partition_beyond_its_attempts(world: World) -> None:
    """Batch: no new execution of a partition that has `attempts` counted failures (Failed and not handed
    back, or lost in this very plan); and a partition with neither a completed nor a surviving execution
    that has used up its attempts fails the job."""
    plan = _plan(world)
    lost = {s.execution_id for s in plan.stop_executions if s.details.get(c.DETAIL_NODE_LOST) == "true"}

    def failures(p: int) -> int:
        return sum(1 for e in world.current if e.partition_index == p and (counts_as_attempt(e) or e.id in lost))

    attempts = world.policy.attempts
    assert all(failures(e.partition_index) < attempts for e in plan.new_executions)
    settled = {e.partition_index for e in _surviving_active(world, plan)}
    settled |= {e.partition_index for e in world.current if e.compute_state.state_type is ExecutionStateType.Completed}
    if any(failures(p) >= attempts for p in range(world.job.effective_count) if p not in settled):
        assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Failed


@EXAMPLES
@given(_PARTITIONED_WORLDS)
def test_classified_retries_avoid_the_nodes_that_failed_the_partition(world: World) -> None:
    """Strategy "classified" (batch and service): a partition is never placed again on a node that itself
    reported a failure of it (Failed, not handed back, not NodeLost), not even by the "distinct when
    possible" fall-back onto a node running another partition."""
    plan = _plan(world)
    if world.policy.strategy is not RetryStrategy.CLASSIFIED:
        return
    failed = {(e.partition_index, e.node_id) for e in world.current if failed_on_node(e)}
    placed = {(e.partition_index, e.node_id) for e in plan.new_executions}
    assert not placed & failed, placed & failed


# -- 7. determinism ---------------------------------------------------------------------------------------
@EXAMPLES
@given(worlds())
def test_the_same_inputs_give_the_same_plan(world: World) -> None:
    """With the same ID factory, the same world gives the same plan: nodes, partitions, stops, state and
    message (the follow-up evaluations' random IDs aside); and it does not change its inputs (pure)."""
    before = [m.model_dump() for m in (world.job, *world.fleet, *world.executions)]
    first = _decisions(_plan(world))
    assert [m.model_dump() for m in (world.job, *world.fleet, *world.executions)] == before
    assert _decisions(replace(world).run()) == first  # the same specs built again into fresh models


@EXAMPLES
@given(worlds(), st.randoms(use_true_random=False))
def test_the_order_of_executions_changes_nothing(world: World, rnd: random.Random) -> None:
    """The order in which the store lists the job's executions changes nothing in the plan."""
    first = _decisions(_plan(world))
    shuffled = list(world.executions)
    rnd.shuffle(shuffled)
    assert _decisions(world.run(tuple(shuffled))) == first


# -- what the properties above once found (fixed): pinned as examples ------------------------------------
def test_a_job_failed_for_lack_of_nodes_stops_the_partitions_still_running() -> None:
    """Count 2 on one node: partition 0 runs, partition 1 has nowhere to go; the job fails, and its
    running partition must stop with it instead of running on for a Failed job."""
    job = make_job(count=2, state=JobStateType.Running)
    running = make_execution(job, "n-a", ExecutionStateType.Running, partition=0)
    plan = Harness().run(job, [make_node("n-a")], [running])
    assert plan.job_transition is not None and plan.job_transition.new_state is JobStateType.Failed
    assert [s.execution_id for s in plan.stop_executions] == [running.id]


def test_a_node_the_plan_moves_work_off_is_rejected_as_cordoned() -> None:
    """Count 2 on two nodes; an operator drains n-b and its deadline passed: its partition is moved off,
    cannot go anywhere, and the job's reason for n-b says it is cordoned, not that it runs the job."""
    job = make_job(count=2, state=JobStateType.Running)
    on_a = make_execution(job, "n-a", ExecutionStateType.Running, partition=0)
    on_b = make_execution(job, "n-b", ExecutionStateType.Running, partition=1)
    plan = Harness().run(job, [make_node("n-a"), make_node("n-b")], [on_a, on_b], cordoned={"n-b": NOW - 1})
    assert plan.job_transition is not None
    groups = {g.kind: g.nodes for g in rejection_groups(plan.job_transition.details)}
    assert groups == {RejectionKind.ALREADY_RUNS_JOB.value: ["n-a"], RejectionKind.CORDONED.value: ["n-b"]}


def test_which_refusal_a_reason_quotes_does_not_depend_on_order() -> None:
    """A node refused the job twice: the reason quotes the same refusal whatever the listing order."""
    job = make_job(state=JobStateType.Running)
    first = make_execution(job, "n-a", ExecutionStateType.BidRejected, message="busy")
    second = make_execution(job, "n-a", ExecutionStateType.BidRejected, message="out of disk")
    forward = Harness().run(job, [make_node("n-a")], [first, second])
    backward = Harness().run(job, [make_node("n-a")], [second, first])
    assert forward.job_transition is not None and backward.job_transition is not None
    assert forward.job_transition.message == backward.job_transition.message
