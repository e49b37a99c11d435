"""Normalisation of a submitted job: defaults filled and legacy forms converted, as Bacalhau does.

`normalize_job` never raises for a bad value: validation reports problems afterwards, all at once.
It returns the user-visible warnings Bacalhau returns in PutJobResponse.Warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bacalhau.models import constants as c
from bacalhau.models.job import InputSource, Job, SpecConfig, Task, TimeoutConfig
from bacalhau.models.resources import normalize_resource_string
from bacalhau.models.state import JobStateType
from bacalhau.models.validation import (
    KNOWN_ENGINES,
    KNOWN_PUBLISHERS,
    KNOWN_STORAGES,
    NETWORK_TYPES,
    canonical_type,
)

LEGACY_WASM_ENTRY_TARGET = "/wasm/entry.wasm"


@dataclass(frozen=True)
class JobDefaults:
    """Per-job-type defaults from the node's `JobDefaults` config."""

    cpu: str = c.DEFAULT_CPU
    memory: str = c.DEFAULT_MEMORY
    disk: str = ""
    gpu: str = ""
    publisher: SpecConfig | None = None
    execution_timeout_s: int = 0
    total_timeout_s: int = 0
    queue_timeout_s: int = 0
    priority: int = 0


@dataclass
class Normalized:
    job: Job
    warnings: list[str] = field(default_factory=list)


def normalize_job(
    job: Job, defaults: JobDefaults | None = None, *, submission: bool = True, copy: bool = True
) -> Normalized:
    """Return a normalised copy of `job` and the warnings a submitter should see.

    `copy=False`: normalise `job` itself, for a caller that owns it (a request's freshly parsed body;
    a deep copy of a job is 60 us, a twentieth of what accepting a submission costs)."""
    d = defaults or JobDefaults()
    if copy:
        job = job.model_copy(deep=True)
    warnings: list[str] = []

    job.type = job.type.strip().lower()
    job.namespace = job.namespace.strip() or c.DEFAULT_NAMESPACE
    job.name = job.name.strip()
    if job.count is None:
        job.count = 1 if job.type in (c.JOB_TYPE_BATCH, c.JOB_TYPE_SERVICE, "") else 0
    elif job.type in (c.JOB_TYPE_OPS, c.JOB_TYPE_DAEMON) and job.count in (0, 1):
        job.count = 0
    if job.priority == 0:
        job.priority = d.priority

    if submission:
        if job.id:
            warnings.append(f"job ID is ignored when submitting a {job.type or 'new'} job")
            job.id = ""
        if job.state.state_type is not JobStateType.Undefined:
            warnings.append("job state is ignored when submitting a job")
        job.state.state_type = JobStateType.Undefined
        job.state.message = ""
        reserved = [k for k in job.meta if k.startswith(c.META_PREFIX)]
        for key in reserved:
            del job.meta[key]
        if reserved:
            warnings.append(f"meta keys starting with {c.META_PREFIX} are reserved and were removed: {', '.join(reserved)}")
        job.version = 0
        job.revision = 0
        job.create_time = 0
        job.modify_time = 0

    if len(job.tasks) > 1:
        warnings.append("only one task is supported per job; tasks after the first were dropped")
        job.tasks = job.tasks[:1]
    for task in job.tasks:
        _normalize_task(task, d)
    return Normalized(job=job, warnings=warnings)


def _normalize_task(task: Task, d: JobDefaults) -> None:
    task.name = task.name.strip()
    task.engine.type = canonical_type(task.engine.type, KNOWN_ENGINES) or task.engine.type.strip()
    if not task.publisher.type and d.publisher is not None:
        task.publisher = d.publisher.model_copy(deep=True)
    task.publisher.type = canonical_type(task.publisher.type, KNOWN_PUBLISHERS) or task.publisher.type.strip()
    for src in task.input_sources:
        src.alias = src.alias.strip()
        src.target = src.target.strip()
        src.source.type = canonical_type(src.source.type, KNOWN_STORAGES) or src.source.type.strip()
    for rp in task.result_paths:
        rp.name = rp.name.strip()
        rp.path = rp.path.strip()

    res = task.resources
    res.cpu = normalize_resource_string(res.cpu) or normalize_resource_string(d.cpu)
    res.memory = normalize_resource_string(res.memory) or normalize_resource_string(d.memory)
    res.disk = normalize_resource_string(res.disk) or normalize_resource_string(d.disk)
    res.gpu = normalize_resource_string(res.gpu) or normalize_resource_string(d.gpu)

    task.network.type = canonical_type(task.network.type or "Default", NETWORK_TYPES) or task.network.type
    t: TimeoutConfig = task.timeouts
    if t.execution_timeout == 0 and t.total_timeout == 0:
        t.execution_timeout = d.execution_timeout_s
        t.total_timeout = d.total_timeout_s
    if t.queue_timeout == 0:
        t.queue_timeout = d.queue_timeout_s

    if task.engine.type == c.ENGINE_WASM:
        _convert_legacy_wasm(task)


def _convert_legacy_wasm(task: Task) -> None:
    """Bacalhau's LegacyWasmModuleTransformer: EntryModule/ImportModules given as InputSources."""
    params = task.engine.params
    for key in list(params):
        if key.lower() == "entrymodule" and isinstance(params[key], dict):
            src = InputSource.from_user(params[key])
            if not src.target:
                src.target = LEGACY_WASM_ENTRY_TARGET
            task.input_sources.append(src)
            del params[key]
            params["EntryModule"] = src.target
        elif key.lower() == "importmodules" and isinstance(params[key], list):
            targets: list[str] = []
            for i, item in enumerate(params[key]):
                if isinstance(item, dict):
                    src = InputSource.from_user(item)
                    if not src.target:
                        src.target = f"/wasm/imports/module_{i}.wasm"
                    task.input_sources.append(src)
                    targets.append(src.target)
                else:
                    targets.append(item)
            del params[key]
            params["ImportModules"] = targets
        elif key == "EntryPoint":
            # Old spelling with a capital P; the current name is Entrypoint.
            params.setdefault("Entrypoint", params.pop(key))
