"""Use cases behind the API: submit, diff, stop, rerun, describe, list. HTTP-free.

Submit stores the job, its first history events and its evaluation in one transaction, then hands
the evaluation to the broker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from bacalhau.models import constants as c
from bacalhau.models.api import (
    DiffJobResponse,
    GetJobResponse,
    ListExecutionsResponse,
    ListHistoryResponse,
    PutJobResponse,
    RerunJobResponse,
    StopJobResponse,
)
from bacalhau.models.errors import BacalhauError, BadRequestError, ErrorCode, NotFoundError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import Execution, ExecutionLog
from bacalhau.models.history import TOPIC_SUBMISSION
from bacalhau.models.job import Job, SpecConfig
from bacalhau.models.limits import DEFAULT_LIMITS, JobLimits
from bacalhau.models.normalize import JobDefaults, normalize_job
from bacalhau.models.secrets import masked
from bacalhau.models.state import EvaluationTrigger, ExecutionStateType, JobStateType
from bacalhau.models.validation import ensure_valid
from bacalhau.orchestrator.evaluations import new_evaluation
from bacalhau.orchestrator.events import job_event, job_state_event
from bacalhau.orchestrator.job_diff import diff_jobs, spec_key
from bacalhau.orchestrator.jobstore.base import ExecutionQuery, HistoryQuery, JobStore
from bacalhau.orchestrator.result_reuse import DETAIL_REUSED_FROM
from bacalhau.orchestrator.results import LocalResultTransformer, ResultTransformer
from bacalhau.transport.base import ComputeDirectory
from bacalhau.transport.messages import LogStreamRequest

_ACTIVE_JOB_STATES = frozenset({JobStateType.Pending, JobStateType.Queued, JobStateType.Running})


class Endpoint:
    def __init__(
        self,
        *,
        store: JobStore,
        directory: ComputeDirectory,
        enqueue: Callable[[Evaluation], None],
        defaults: Callable[[str], JobDefaults],
        orchestrator_id: str,
        installation_id: str = "",
        instance_id: str = "",
        clock_ns: Callable[[], int] = time.time_ns,
        results: ResultTransformer | None = None,
        limits: JobLimits = DEFAULT_LIMITS,
        arm_timeout: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """`limits`: JobAdmissionControl.Limits, the bounds a spec's numbers must keep (models/limits.py).
        `arm_timeout(job_id, create_time_ns, total_timeout_s)`: called once a submitted, updated or rerun
        job is stored (pending again), to start its TotalTimeout timer."""
        self._limits = limits
        self._arm_timeout = arm_timeout or _no_timer
        self._installation_id = installation_id
        self._results = results or LocalResultTransformer()
        self._instance_id = instance_id
        self._store = store
        self._directory = directory
        self._enqueue = enqueue
        self._defaults = defaults
        self._orchestrator_id = orchestrator_id
        self._clock_ns = clock_ns

    async def submit(
        self,
        job: Job,
        *,
        force: bool = False,
        client_meta: dict[str, str] | None = None,
        reveal_env: bool = True,
        owned: bool = False,
    ) -> PutJobResponse:
        """Normalise, validate and store a job; an existing Name in the namespace means an update.

        `reveal_env=False` (a caller without reveal:env): an update giving secret values is never
        answered "no changes", whatever the values, or the answer would confirm a guessed secret.
        `owned`: the caller hands `job` over (parsed for this call): it is normalised in place, not copied."""
        normalized = normalize_job(job, self._defaults(job.type.strip().lower()), copy=not owned)
        job = normalized.job
        warnings = list(normalized.warnings)
        ensure_valid(job, self._limits)
        now = self._clock_ns()
        job.meta[c.META_ORCHESTRATOR_ID] = self._orchestrator_id
        job.meta[c.META_REQUESTER_ID] = self._orchestrator_id
        job.meta[c.META_ORCHESTRATOR_PROTOCOL] = "ncl/v1"
        job.meta[c.META_SERVER_INSTALLATION_ID] = self._installation_id
        job.meta[c.META_SERVER_INSTANCE_ID] = self._instance_id
        job.meta.update(client_meta or {})

        existing = await self._store.get_job_by_name(job.name, job.namespace) if job.name else None
        if existing is not None:
            force = force or (not reveal_env and _gives_secret_values(job))  # before masks are restored
            _keep_masked_secrets(job, existing)
            return await self._update(existing, job, force=force, warnings=warnings, now=now)

        job.id = f"j-{uuid.uuid4()}"
        job.name = job.name or job.id
        job.version = 1
        job.revision = 1
        job.create_time = now
        job.modify_time = now
        job.state.state_type = JobStateType.Pending
        evaluation = new_evaluation(job, EvaluationTrigger.JobRegister, now)
        async with self._store.transaction():
            await self._store.create_job(
                job,
                [
                    job_event(job, "Job submitted", TOPIC_SUBMISSION),
                    job_state_event(job, JobStateType.Undefined, JobStateType.Pending),
                ],
            )
            await self._store.create_evaluation(evaluation)
        self._enqueue(evaluation)
        self._arm_timeout(job.id, job.create_time, _total_timeout_s(job))
        return PutJobResponse(JobID=job.id, EvaluationID=evaluation.id, Warnings=warnings)

    async def diff(self, job: Job, *, mask_env: bool = False) -> DiffJobResponse:
        """Compare a spec with the stored job of the same Name and Namespace; stores nothing.

        As Bacalhau's DiffJob: the name is required (ValidationError), the spec is normalised and
        validated as submit would, and a name with no stored job is NotFound. `Diff` is "" when the
        spec would be refused by submit as unchanged.
        """
        if not job.name.strip():
            raise BacalhauError(
                "invalid job spec: name is missing",
                code=ErrorCode.ValidationError,
                hint="Job name must be provided in the job spec for diff operations",
            )
        normalized = normalize_job(job, self._defaults(job.type.strip().lower()))
        proposed = normalized.job
        ensure_valid(proposed, self._limits)
        existing = await self._store.get_job_by_name(proposed.name, proposed.namespace)
        gives_values = _gives_secret_values(proposed)  # before masks are restored from the stored job
        if existing is not None:
            _keep_masked_secrets(proposed, existing)
        if existing is None:
            raise NotFoundError(
                f"job name index not found: {proposed.name}:{proposed.namespace}",
                component="JobStore",
                hint="no job has this name yet: running the spec creates a new job",
            )
        diff = diff_jobs(existing, proposed)
        if mask_env:
            # A caller who may not see Env values must not read them in a diff, nor learn whether the
            # values they gave equal the stored ones (that would confirm a guessed secret): the values
            # are said to be given, changed or not.
            diff = diff_jobs(_env_masked(existing), _env_masked(proposed))
            if gives_values:
                diff += "~ Env: values given (hidden and not compared: the caller lacks the reveal:env capability)\n"
        return DiffJobResponse(Diff=diff, Warnings=list(normalized.warnings))

    async def _update(self, existing: Job, job: Job, *, force: bool, warnings: list[str], now: int) -> PutJobResponse:
        if not force and spec_key(existing) == spec_key(job):
            raise BadRequestError(
                f"no changes detected for new job spec. Job Name: '{existing.name}', Job Id: '{existing.id}'",
                hint="Use the --force flag to override this warning",
            )
        if job.type != existing.type:
            raise BadRequestError(f"job type cannot change from {existing.type} to {job.type} on update")
        job.id = existing.id
        job.version = existing.version + 1
        job.revision = existing.revision + 1
        job.create_time = existing.create_time
        job.modify_time = now
        job.state.state_type = existing.state.state_type
        trigger = EvaluationTrigger.JobUpdate
        return await self._new_version(existing, job, trigger, "Job update requested by user", "Job updated", warnings)

    async def _new_version(
        self, existing: Job, job: Job, trigger: EvaluationTrigger, state_message: str, event: str, warnings: list[str]
    ) -> PutJobResponse:
        now = self._clock_ns()
        previous = existing.state.state_type
        evaluation = new_evaluation(job, trigger, now)
        async with self._store.transaction():
            await self._store.update_job_spec(job, [job_event(job, event, TOPIC_SUBMISSION)])
            await self._store.update_job_state(
                job.id,
                JobStateType.Pending,
                state_message,
                expected=frozenset({previous}),
                events=[job_state_event(job, previous, JobStateType.Pending, state_message)],
            )
            await self._store.create_evaluation(evaluation)
        self._enqueue(evaluation)
        # The job keeps its first CreateTime; its timeout is the new spec's.
        self._arm_timeout(job.id, existing.create_time, _total_timeout_s(job))
        return PutJobResponse(JobID=job.id, EvaluationID=evaluation.id, Warnings=warnings)

    async def stop(self, id_or_name: str, reason: str, *, namespace: str = "") -> StopJobResponse:
        job = await self._store.resolve_job(id_or_name, namespace)
        state = job.state.state_type
        if state is JobStateType.Stopped:
            return StopJobResponse(EvaluationID="")
        if state.is_terminal:
            raise BadRequestError(
                f"cannot stop job in state {state.name}", hint="only pending, queued or running jobs can be stopped"
            )
        message = reason or "Job requested to stop before completion"
        evaluation = new_evaluation(job, EvaluationTrigger.JobCancel, self._clock_ns())
        async with self._store.transaction():
            await self._store.update_job_state(
                job.id,
                JobStateType.Stopped,
                message,
                expected=_ACTIVE_JOB_STATES,
                events=[job_state_event(job, state, JobStateType.Stopped, message)],
            )
            await self._store.create_evaluation(evaluation)
        self._enqueue(evaluation)
        return StopJobResponse(EvaluationID=evaluation.id)

    async def rerun(self, id_or_name: str, *, version: int = 0, reason: str = "", namespace: str = "") -> RerunJobResponse:
        current = await self._store.resolve_job(id_or_name, namespace)
        if not current.state.state_type.is_rerunnable:
            raise BadRequestError(
                f"cannot rerun job in state {current.state.state_type.name}",
                hint="wait until the job has started or finished",
            )
        base = await self._store.get_job(current.id, version) if version else current
        job = base.model_copy(deep=True)
        job.version = current.version + 1
        job.revision = current.revision + 1
        job.modify_time = self._clock_ns()
        job.state = current.state.model_copy()
        response = await self._new_version(
            current, job, EvaluationTrigger.JobRerun, reason or "job rerun", "Job rerun requested", []
        )
        return RerunJobResponse(EvaluationID=response.evaluation_id, JobID=job.id, JobVersion=job.version, Warnings=[])

    async def describe(
        self, id_or_name: str, *, namespace: str = "", include: set[str] | None = None, history_after: int = 0
    ) -> GetJobResponse:
        """The job, with its history (only the events after SeqNum `history_after`) and executions if asked."""
        job = await self._store.resolve_job(id_or_name, namespace)
        response = GetJobResponse(Job=job)
        include = include or set()
        if "history" in include:
            query = HistoryQuery(all_versions=True, after_seq=history_after)
            response.history = ListHistoryResponse(Items=await self._store.list_history(job.id, query))
        if "executions" in include:
            response.executions = ListExecutionsResponse(Items=await self._store.list_executions(job.id))
        return response

    async def resolve(self, id_or_name: str, namespace: str = "") -> Job:
        return await self._store.resolve_job(id_or_name, namespace)

    async def results(self, id_or_name: str, *, namespace: str = "") -> list[SpecConfig]:
        job = await self._store.resolve_job(id_or_name, namespace)
        if job.type not in (c.JOB_TYPE_BATCH, c.JOB_TYPE_OPS):
            raise BadRequestError(f"job type {job.type} does not support results")
        out: list[SpecConfig] = []
        for execution in await self._store.list_executions(job.id, ExecutionQuery(all_versions=False, job_version=job.version)):
            published = execution.published_result
            # A noop publisher published nothing: Bacalhau returns no item for it.
            if (
                execution.compute_state.state_type is ExecutionStateType.Completed
                and published is not None
                and published.type
                and not published.is_type(c.PUBLISHER_NOOP)
            ):
                out.append(await self._results.transform(published))
        return out

    async def stream_logs(
        self, job: Job, *, execution_id: str = "", follow: bool = False, tail: bool = False
    ) -> AsyncIterator[ExecutionLog]:
        """The log items of the given execution of `job`, else of its latest execution not discarded.

        Raises NotFoundError here (not while iterating) if there is no such execution or its node is
        not connected. The caller iterates at its own pace (the node reads no further ahead than a
        flow-control window) and closes the iterator (`aclose`) when it stops early.
        """
        execution = await self._pick_execution(job, execution_id)
        ran = execution.compute_state.details.get(DETAIL_REUSED_FROM, "")
        if ran:  # a reused result: the logs are those of the execution that produced it
            execution = await self._store.get_execution(ran)
        service = self._directory.compute(execution.node_id)
        if service is None:
            raise NotFoundError(
                f"compute node {execution.node_id} holding execution {execution.id} is not connected",
                hint="logs are read from the node that ran the execution",
            )
        return service.stream_logs(LogStreamRequest(execution_id=execution.id, follow=follow, tail=tail))

    async def _pick_execution(self, job: Job, execution_id: str) -> Execution:
        executions = await self._store.list_executions(job.id)
        if execution_id:
            for e in executions:
                if e.id == execution_id or e.id.startswith(execution_id):
                    return e
            raise NotFoundError(f"execution not found: {execution_id} (job {job.id})")
        candidates = [e for e in executions if not e.compute_state.state_type.is_discarded]
        if not candidates:
            candidates = executions
        if not candidates:
            raise NotFoundError(
                f"job {job.id} has no executions yet", hint="wait until the job is scheduled, then ask again"
            )
        return max(candidates, key=lambda e: e.create_time)



def _env_masked(job: Job) -> Job:
    """A copy of `job` with its tasks' secrets masked (models/secrets.py)."""
    return Job.model_validate(masked(job.to_wire()))


def _gives_secret_values(job: Job) -> bool:
    """True when some task of `job` states a secret value in clear (not the mask, not an `env:` forward)."""
    return any(value != c.REDACTED_MASK for value in _secret_values(job))


def _secret_values(job: Job) -> list[str]:
    values: list[str] = []
    for task in job.tasks:
        values += [v for v in task.env.values() if not v.startswith(c.ENV_FORWARD_PREFIX)]
        for name, param in task.engine.params.items():
            if name.lower() != "environmentvariables":
                continue
            items = param.values() if isinstance(param, dict) else param if isinstance(param, list) else []
            for item in items:
                value = str(item) if isinstance(param, dict) else str(item).partition("=")[2]
                if not value.startswith(c.ENV_FORWARD_PREFIX):
                    values.append(value)
    return values


def _keep_masked_secrets(job: Job, existing: Job) -> None:
    """A spec edited from a masked answer (a caller without reveal:env) carries `********` where a secret
    was. Those values are the stored job's only when the task is otherwise the stored one: a caller who
    changes the command must not get the secret into a task of their own (it would print it). Then a
    masked value of a key the stored job has is a BadRequestError saying so, never stored as the mask."""
    for task, before in zip(job.tasks, existing.tasks, strict=False):
        masked = [k for k, v in task.env.items() if v == c.REDACTED_MASK and k in before.env]
        masked_vars = _masked_assignments(task.engine.params, before.engine.params)
        if not masked and not masked_vars:
            continue
        restored = task.model_copy(deep=True)
        for key in masked:
            restored.env[key] = before.env[key]
        for name, values in masked_vars.items():
            restored.engine.params[name] = values
        if _without_env(restored) != _without_env(before):
            names = ", ".join(sorted(masked) + [f"{n} (masked entries)" for n in masked_vars])
            raise BadRequestError(
                f"Tasks[{task.name}]: {names} read ******** (masked for you) but the task changed: the stored "
                "secrets are kept only for an otherwise unchanged task",
                component="Orchestrator",
                hint="give the real values, or change only the job's other fields; masked values come from a "
                "caller without the reveal:env capability",
            )
        task.env = restored.env
        task.engine.params = restored.engine.params


def _masked_assignments(params: dict[str, object], stored: dict[str, object]) -> dict[str, list[object]]:
    """A docker engine's EnvironmentVariables with masked entries restored from `stored` (by name)."""
    out: dict[str, list[object]] = {}
    for name, value in params.items():
        before = stored.get(name)
        if name.lower() != "environmentvariables" or not isinstance(value, list) or not isinstance(before, list):
            continue
        previous = {k: v for k, sep, v in (str(i).partition("=") for i in before) if sep}
        restored = [
            f"{k}={previous[k]}" if sep and v == c.REDACTED_MASK and k in previous else item
            for item in value for k, sep, v in [str(item).partition("=")]
        ]
        if restored != value:
            out[name] = restored
    return out


def _without_env(task: Any) -> dict[str, Any]:
    wire: dict[str, Any] = task.to_wire()
    wire.pop("Env", None)
    return wire


def _no_timer(_job_id: str, _create_time_ns: int, _total_s: int) -> None:
    return None


def _total_timeout_s(job: Job) -> int:
    return job.task.timeouts.total_timeout if job.tasks else 0
