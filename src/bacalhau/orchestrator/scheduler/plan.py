"""What a scheduler decides, as data. The planner applies it: store first, then transport."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from bacalhau.locality.held import NO_HOLDINGS, JobHoldings
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import Execution
from bacalhau.models.job import Job
from bacalhau.models.limits import DEFAULT_LIMITS, JobLimits
from bacalhau.models.node import NodeState
from bacalhau.models.resources import Resources
from bacalhau.models.retry import DEFAULT_RETRY, RetryPolicy
from bacalhau.models.state import ExecutionStateType, JobStateType
from bacalhau.orchestrator.result_reuse import NOT_ASKED, ReuseCheck
from bacalhau.orchestrator.selection.feasibility import task_resources


@dataclass(frozen=True)
class Snapshot:
    """The read-only world a scheduler sees: the job, its executions, the nodes, the time."""

    job: Job
    executions: tuple[Execution, ...]
    # In node-ID order (NodeManager.list's order): where a job's candidate search starts depends on it.
    nodes: tuple[NodeState, ...]
    now_ns: int
    # Retry delay for queued jobs (Orchestrator.Scheduler.QueueBackoff), in nanoseconds.
    queue_backoff_ns: int = 60 * 1_000_000_000
    # Nodes not connected since the orchestrator restarted but still within their grace to reconnect:
    # their executions are not lost yet, and nothing new is placed on them.
    awaiting_reconnect: frozenset[str] = frozenset()
    # Nodes that announced they are stopping: they keep their executions but get nothing new.
    draining: frozenset[str] = frozenset()
    # JobAdmissionControl.Limits: a job beyond them (stored before they applied) is failed, not placed.
    limits: JobLimits = DEFAULT_LIMITS
    # Nodes an operator drained (`node drain`): no new work; node ID -> when the work still running
    # there is moved (Unix ns; None: it may finish there). Daemon executions there stop at once.
    cordoned: Mapping[str, int | None] = field(default_factory=dict)
    # Orchestrator.Scheduler.Retry; the job's retry.* Meta keys override it.
    retry: RetryPolicy = DEFAULT_RETRY
    # Which nodes hold the job's input data (locality/index.py); empty when ranking by data is off.
    holdings: JobHoldings = NO_HOLDINGS
    # The result cache (orchestrator/result_reuse.py): the job's fingerprint or why it has none, and the
    # completed execution of an identical job it may reuse (looked up only for a fresh job).
    reuse: ReuseCheck = NOT_ASKED
    reusable: Execution | None = None

    # The nodes by ID as NodeManager.by_id keeps them (a view, free to get); None: built from `nodes`.
    nodes_by_id: Mapping[str, NodeState] | None = None

    @functools.cached_property
    def node_by_id(self) -> Mapping[str, NodeState]:
        """The nodes by ID: `nodes_by_id`, else built once per evaluation on first use."""
        if self.nodes_by_id is not None:
            return self.nodes_by_id
        return {n.info.node_id: n for n in self.nodes}

    @functools.cached_property
    def task_resources(self) -> Resources:
        """The job's task resources as numbers, parsed once per evaluation."""
        return task_resources(self.job)


@dataclass(frozen=True)
class StopExecution:
    execution_id: str
    reason: str
    # The observed state to record; Cancelled for a stop, Failed when the node is gone.
    new_state: ExecutionStateType = ExecutionStateType.Cancelled
    # ComputeState.Details to record (e.g. Retryable for a lost node).
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobTransition:
    new_state: JobStateType
    message: str
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    """Changes for one evaluation. An empty plan means nothing to do."""

    evaluation: Evaluation
    job: Job
    new_executions: list[Execution] = field(default_factory=list)
    stop_executions: list[StopExecution] = field(default_factory=list)
    job_transition: JobTransition | None = None
    # Follow-up evaluations (e.g. a delayed retry of a queued job).
    new_evaluations: list[Evaluation] = field(default_factory=list)
    # Why the scheduler decided what it did, for the evaluation comment and logs.
    comment: str = ""
    # Why a new execution was created (a retry, a replacement), by execution ID: its history says so.
    notes: dict[str, str] = field(default_factory=dict)
    # Executions stored as Completed without running (a reused result), and the (fingerprint, execution
    # ID) identical jobs will reuse from now on.
    reused_executions: list[Execution] = field(default_factory=list)
    remember_result: tuple[str, str] | None = None

    def is_empty(self) -> bool:
        return not (
            self.new_executions or self.stop_executions or self.job_transition or self.new_evaluations
            or self.reused_executions
        )
