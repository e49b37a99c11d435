"""A harness for the pure schedulers: build snapshots, run the scheduler, inspect the recorded plans."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import DesiredState, Execution, ExecutionState
from bacalhau.models.job import Job, JobState, SpecConfig, Task, TimeoutConfig
from bacalhau.models.limits import DEFAULT_LIMITS, JobLimits
from bacalhau.models.node import ComputeNodeInfo, ConnectionStatus, Membership, NodeInfo, NodeState
from bacalhau.models.resources import Resources
from bacalhau.models.retry import DEFAULT_RETRY, RetryPolicy
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.orchestrator.scheduler.plan import Plan, Snapshot
from bacalhau.orchestrator.scheduler.schedule import schedule

NOW = 1_800_000_000 * 1_000_000_000
SECOND = 1_000_000_000


def make_job(*, count: int | None = 1, job_type: str = "batch", state: JobStateType = JobStateType.Pending,
             queue_timeout_s: int = 0, engine: str = "wasm", cpu: str = "500m", memory: str = "512mb") -> Job:
    task = Task(
        Name="main",
        Engine=SpecConfig(Type=engine, Params={"EntryModule": "/app/m.wasm"}),
        Timeouts=TimeoutConfig(QueueTimeout=queue_timeout_s),
    )
    task.resources.cpu = cpu
    task.resources.memory = memory
    return Job(ID="j-1", Name="j", Namespace="default", Type=job_type, Count=count, Tasks=[task],
               State=JobState(StateType=state), Version=1, CreateTime=NOW - SECOND)


def make_node(node_id: str, *, cpu: float = 4.0, memory: int = 8 * 1024**3, engines: tuple[str, ...] = ("wasm", "noop"),
              labels: dict[str, str] | None = None, connected: bool = True,
              membership: Membership = Membership.APPROVED) -> NodeState:
    cap = Resources(CPU=cpu, Memory=memory, Disk=10**11)
    info = NodeInfo(
        NodeID=node_id,
        Labels=labels or {},
        ComputeNodeInfo=ComputeNodeInfo(
            ExecutionEngines=list(engines), Publishers=["local", "noop"], StorageSources=["inline", "local"],
            MaxCapacity=cap, AvailableCapacity=cap,
        ),
    )
    state = NodeState(Info=info, Membership=membership)
    if not connected:
        state.connection_state.status = ConnectionStatus.DISCONNECTED
    return state


_ids = itertools.count(1)


def make_execution(job: Job, node_id: str, state: ExecutionStateType, *, partition: int = 0,
                   retryable: bool = False, desired: ExecutionDesiredStateType = ExecutionDesiredStateType.Running,
                   message: str = "", lost: bool = False, handed_back: bool = False,
                   ended_ns: int | None = None) -> Execution:
    """`lost`: failed by the orchestrator for a lost node; `ended_ns`: when it ended (default: a minute ago,
    past any default backoff)."""
    details = {"Retryable": "true"} if retryable or lost else {}
    if lost:
        details["NodeLost"] = "true"
    if handed_back:
        details["HandedBack"] = "true"
    seq = next(_ids)
    ended = NOW - 60 * SECOND if ended_ns is None else ended_ns
    return Execution(
        ID=f"e-{seq}", JobID=job.id, NodeID=node_id, JobVersion=job.version, PartitionIndex=partition,
        ComputeState=ExecutionState(StateType=state, Message=message, Details=details),
        DesiredState=DesiredState(StateType=desired), CreateTime=NOW - 120 * SECOND + seq,
        ModifyTime=ended if state.is_terminal else NOW - 120 * SECOND + seq,
    )


@dataclass
class Harness:
    """Records every plan the scheduler produced, like Nomad's scheduler test harness."""

    plans: list[Plan] = field(default_factory=list)

    def run(self, job: Job, nodes: list[NodeState], executions: list[Execution] | None = None,
            now_ns: int = NOW, awaiting_reconnect: frozenset[str] = frozenset(),
            limits: JobLimits = DEFAULT_LIMITS, draining: frozenset[str] = frozenset(),
            cordoned: dict[str, int | None] | None = None, retry: RetryPolicy = DEFAULT_RETRY) -> Plan:
        # The manager hands the scheduler its nodes in ID order; so does the harness.
        ordered = tuple(sorted(nodes, key=lambda n: n.info.node_id))
        snap = Snapshot(job=job, executions=tuple(executions or ()), nodes=ordered, now_ns=now_ns,
                        queue_backoff_ns=5 * SECOND, awaiting_reconnect=awaiting_reconnect, limits=limits,
                        draining=draining, cordoned=cordoned or {}, retry=retry)
        plan = schedule(Evaluation(ID="ev", JobID=job.id), snap)
        self.plans.append(plan)
        return plan
