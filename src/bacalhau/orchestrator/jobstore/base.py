"""The JobStore protocol and its query types.

Every job and execution state change goes through a conditional update (the caller states the
previous states it expects) and appends a history event in the same transaction: a race cannot
resurrect a finished job, and the history is the complete, permanent audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import DesiredState, Execution, ExecutionState, RunCommandResult
from bacalhau.models.history import JobHistory
from bacalhau.models.job import Job, SpecConfig
from bacalhau.models.state import EvaluationStatus, ExecutionDesiredStateType, ExecutionStateType, JobStateType


@dataclass(frozen=True)
class JobQuery:
    """What `list_jobs` returns: a filter, an order and a page."""

    namespace: str = ""  # "" or "*" = every namespace
    limit: int = 0  # 0 = no limit
    offset: int = 0
    order_by: str = "created_at"  # or "modified_at"
    reverse: bool = False  # False = newest first, as Bacalhau lists
    # Label selector requirements already parsed: (key, operator, values)
    labels: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    # Ours (the web UI's filters): JobStateType values, any of them; a job type (batch, service, ...).
    states: tuple[int, ...] = ()
    job_type: str = ""


@dataclass(frozen=True)
class HistoryQuery:
    """Which of a job's history events `list_history` returns, in which order, and which page."""

    job_version: int = 0  # 0 = current version
    all_versions: bool = False
    since_unix_s: int = 0
    after_seq: int = 0  # only events with a higher SeqNum (0: from the first)
    event_type: str = "all"  # all | job | execution
    execution_id: str = ""
    node_id: str = ""
    reverse: bool = False  # False = oldest first (SeqNum order)
    limit: int = 0
    offset: int = 0


@dataclass(frozen=True)
class ExecutionQuery:
    """Which of a job's executions `list_executions` returns, in which order, and which page."""

    job_version: int = 0  # 0 = every version unless all_versions is False and a version is given
    all_versions: bool = True
    order_by: str = "created_at"
    reverse: bool = False
    limit: int = 0
    offset: int = 0
    # False: each execution's copy of its job is left out (Job None), not parsed: for a caller that
    # has the job already (the scheduler), which would otherwise parse it once per execution.
    with_job: bool = True


@dataclass(frozen=True)
class JobBrief:
    """What an evaluation of a job needs to know of it, from the store's columns and two JSON fields,
    without parsing the stored job (which carries its whole spec, inline modules too)."""

    id: str
    namespace: str
    type: str
    priority: int
    state: JobStateType
    version: int


@dataclass(frozen=True)
class ExecutionBrief:
    """Where an execution is and what it is for, from the store's columns, without its stored JSON
    (which carries its whole job): what a compute node's report is checked against."""

    id: str
    job_id: str
    job_version: int
    node_id: str
    compute_state: ExecutionStateType
    desired_state: ExecutionDesiredStateType
    modify_time_ns: int = 0  # its last change (the steps a report carries are not dated before it)


@dataclass
class ExecutionUpdate:
    """A conditional update of one execution. Only the fields that are set change."""

    execution_id: str
    expected_states: frozenset[ExecutionStateType] = frozenset()  # empty = no check
    # The desired states the execution must be in (empty = no check): a result is recorded only while
    # the orchestrator still wants the execution (Pending/Running), whatever the compute state says.
    expected_desired_states: frozenset[ExecutionDesiredStateType] = frozenset()
    compute_state: ExecutionState | None = None
    desired_state: DesiredState | None = None
    run_output: RunCommandResult | None = None
    published_result: SpecConfig | None = None
    events: list[JobHistory] = field(default_factory=list)


class JobStore(Protocol):
    """Durable storage for the orchestrator. All methods raise DatastoreError on storage failure."""

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Group the calls made inside into one atomic transaction (nesting joins the outer one).

        A call refused inside (a conflict, an unknown job) leaves nothing of itself, and the transaction
        may go on; a storage failure partway through a call rolls the whole transaction back."""
        ...

    async def create_job(self, job: Job, events: list[JobHistory]) -> None:
        """Store a new job (version 1) and its history events. ConflictError if the ID exists."""
        ...

    async def update_job_spec(self, job: Job, events: list[JobHistory]) -> None:
        """Store a new version of an existing job (job.version already incremented); keep old versions."""
        ...

    async def get_job(self, job_id: str, version: int = 0) -> Job:
        """The job by exact ID (current version when version is 0). NotFoundError if absent."""
        ...

    async def resolve_job(self, id_or_name: str, namespace: str = "") -> Job:
        """Find a job by full ID, unique ID prefix, or Name within the namespace.

        NotFoundError if nothing matches; BadRequestError listing the candidates if a prefix is ambiguous.
        """
        ...

    async def get_job_by_name(self, name: str, namespace: str) -> Job | None:
        """The job with this exact Name in the namespace ("" = `default`), or None."""
        ...

    async def job_brief(self, job_id: str) -> JobBrief | None:
        """The job's namespace, type, priority, state and version, by exact ID, without reading it whole;
        None if no job has this exact ID."""
        ...

    async def job_progress(self, job_id: str) -> tuple[JobStateType, int] | None:
        """The job's state and the SeqNum of its newest history event, by exact ID, without reading the
        job itself (what a waiting client polls); None if no job has this exact ID."""
        ...

    async def list_jobs(self, query: JobQuery) -> tuple[list[Job], bool]:
        """Matching jobs and whether more exist after this page."""
        ...

    async def job_counts(self, completed_since_ns: int, bucket_ns: int) -> tuple[dict[int, int], dict[int, int]]:
        """Jobs by JobStateType value, and the jobs that completed since `completed_since_ns` by bucket
        (bucket i: ModifyTime in [since + i * bucket_ns, since + (i + 1) * bucket_ns))."""
        ...

    async def list_job_versions(self, job_id: str) -> list[Job]:
        """Every version of the job, oldest first. NotFoundError if the job does not exist."""
        ...

    async def update_job_state(
        self,
        job_id: str,
        new_state: JobStateType,
        message: str,
        *,
        expected: frozenset[JobStateType],
        events: list[JobHistory],
        details: dict[str, str] | None = None,
    ) -> None:
        """Move the job to new_state only if it is currently in one of `expected`.

        Bumps Revision and ModifyTime, appends `events`. ConflictError (with the actual state in the
        message) if the job is not in an expected state. Returns nothing: nobody on the hot path needs
        the job read back (get_job does).
        """
        ...

    async def create_execution(self, execution: Execution, events: list[JobHistory]) -> Execution:
        """Store a new execution and its events; returns it as stored (defaults filled in)."""
        ...

    async def update_execution(self, update: ExecutionUpdate) -> None:
        """Apply a conditional execution update (see ExecutionUpdate). ConflictError if the current
        compute state is not in `expected_states`, or the desired state not in `expected_desired_states`
        (each when given). Bumps Revision and ModifyTime."""
        ...

    async def get_execution(self, execution_id: str) -> Execution:
        """NotFoundError if absent."""
        ...

    async def execution_brief(self, execution_id: str) -> ExecutionBrief | None:
        """The execution's IDs and states, by exact ID, without reading it whole; None if absent."""
        ...

    async def list_executions(self, job_id: str, query: ExecutionQuery | None = None) -> list[Execution]:
        """A job's executions as the query selects them. NotFoundError if the job does not exist."""
        ...

    async def execution_counts(self, job_ids: list[str]) -> dict[str, dict[int, int]]:
        """For each job, its current version's executions counted by ComputeState value (the web UI's
        done/total column). Unknown jobs are left out."""
        ...

    async def recent_executions_on_node(self, node_id: str, limit: int) -> list[Execution]:
        """The node's newest `limit` executions, any state, newest first (the web UI's node page)."""
        ...

    async def list_executions_on_node(self, node_id: str, *, active_only: bool = True) -> list[Execution]:
        """Executions placed on a node; with active_only, only those not in a terminal compute state."""
        ...

    async def active_job_ids(self, job_type: str) -> list[str]:
        """IDs of the jobs of `job_type` not in a terminal state (e.g. the daemon jobs a joining node runs)."""
        ...

    async def active_jobs_by_node(self) -> dict[str, set[str]]:
        """Node ID -> IDs of the jobs with an execution in a non-terminal compute state on that node.

        The level-triggered backstop of node loss asks this every sweep, so it must stay cheap with a
        long execution history: its cost follows the number of active executions, not of all executions.
        """
        ...

    async def remember_result(self, fingerprint: str, job_id: str, execution_id: str) -> None:
        """Record that the completed `execution_id` (of `job_id`) is the result of jobs with `fingerprint`
        (orchestrator/result_reuse.py); replaces an earlier one."""
        ...

    async def find_result(self, fingerprint: str) -> Execution | None:
        """The completed execution remembered for `fingerprint`, if it is still stored and Completed."""
        ...

    def add_history_listener(self, listener: Callable[[str, bool], None]) -> None:
        """Call `listener(job_id, ended)` once new events of that job are committed (on the event loop);
        `ended`: one of them moved the job to a terminal state."""
        ...

    async def add_history(self, events: list[JobHistory]) -> None:
        """Append events; the store assigns SeqNum (increasing per job)."""
        ...

    async def list_history(self, job_id: str, query: HistoryQuery | None = None) -> list[JobHistory]:
        """Events in SeqNum order, filtered by the query."""
        ...

    async def create_evaluation(self, evaluation: Evaluation) -> None:
        """Store a new evaluation (zero times become now). ConflictError if the ID exists."""
        ...

    async def get_evaluation(self, evaluation_id: str) -> Evaluation:
        """The evaluation by exact ID; NotFoundError if absent."""
        ...

    async def update_evaluation_status(self, evaluation_id: str, status: EvaluationStatus, comment: str = "") -> None:
        """Set the status (and the comment, when one is given); NotFoundError if absent."""
        ...

    async def list_evaluations(self, *, statuses: frozenset[EvaluationStatus]) -> list[Evaluation]:
        """Evaluations in the given statuses, oldest first (used to re-enqueue after a restart)."""
        ...

    async def close(self) -> None:
        """Release the store once any transaction in progress has ended. Idempotent."""
        ...
