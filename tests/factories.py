"""Factories of valid model objects for tests: real objects with sensible defaults, instead of mocks.

Every factory takes keyword overrides named after the model's Python fields (`make_job(name="x",
labels={"a": "b"})`); an unknown name raises TypeError instead of being silently ignored. Objects are
fresh on every call (new IDs), and times are 0 unless given: stores fill them from their clock.

    job = make_job(type="ops")
    execution = make_execution(job, node_id="n-1")
    events = [make_event(job), make_execution_event(execution)]

`tests/conftest.py` puts this directory on sys.path, so tests import it as `from factories import ...`.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any, TypeVar

from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import (
    AllocatedResources,
    DesiredState,
    Execution,
    ExecutionState,
)
from bacalhau.models.history import (
    TOPIC_EXECUTION,
    TOPIC_STATE_UPDATE,
    TOPIC_SUBMISSION,
    Event,
    ExecutionStateChange,
    JobHistory,
    JobStateChange,
)
from bacalhau.models.job import Job, JobState, ResourcesConfig, SpecConfig, Task
from bacalhau.models.node import NODE_TYPE_COMPUTE, PROTOCOL_NCL_V1, ComputeNodeInfo, NodeInfo, NodeState
from bacalhau.models.resources import Resources
from bacalhau.models.state import (
    EvaluationStatus,
    EvaluationTrigger,
    ExecutionDesiredStateType,
    ExecutionStateType,
    JobHistoryType,
    JobStateType,
)
from bacalhau.models.wire import WireModel

M = TypeVar("M", bound=WireModel)
_names = itertools.count(1)


def _build(model: type[M], defaults: dict[str, Any], overrides: dict[str, Any]) -> M:
    unknown = set(overrides) - set(model.model_fields)
    if unknown:
        raise TypeError(f"{model.__name__} has no field(s) {', '.join(sorted(unknown))}")
    return model.model_validate({**defaults, **overrides})


def new_job_id() -> str:
    """A job ID as Bacalhau generates them: `j-<uuid4>`."""
    return f"j-{uuid.uuid4()}"


def new_execution_id() -> str:
    """An execution ID: `e-<uuid4>`."""
    return f"e-{uuid.uuid4()}"


def new_node_id() -> str:
    """A node ID as the default `puuid` name provider makes them: `n-<uuid4>`."""
    return f"n-{uuid.uuid4()}"


def make_task(**overrides: Any) -> Task:
    """A docker task `main` running `echo hello` with the default resources and no publisher."""
    defaults: dict[str, Any] = {
        "name": "main",
        "engine": SpecConfig(Type="docker", Params={"Image": "ubuntu:24.04", "Parameters": ["echo", "hello"]}),
        "resources": ResourcesConfig(CPU="500m", Memory="512Mb"),
    }
    return _build(Task, defaults, overrides)


def make_job(**overrides: Any) -> Job:
    """A normalised, valid batch job in state Pending, version 1, named `job-<n>` in `default`."""
    defaults: dict[str, Any] = {
        "id": new_job_id(),
        "name": f"job-{next(_names)}",
        "namespace": "default",
        "type": "batch",
        "count": 1,
        "tasks": [make_task()],
        "state": JobState(StateType=JobStateType.Pending),
        "version": 1,
        "revision": 1,
    }
    return _build(Job, defaults, overrides)


def make_execution(job: Job, **overrides: Any) -> Execution:
    """A new execution of `job` (partition 0) on a fresh node, desired Running, compute state New."""
    defaults: dict[str, Any] = {
        "id": new_execution_id(),
        "namespace": job.namespace,
        "name": job.name,
        "node_id": new_node_id(),
        "job_id": job.id,
        "job": job,
        "job_version": job.version,
        "allocated_resources": AllocatedResources(Tasks={"main": Resources(CPU=0.5, Memory=512_000_000)}),
        "desired_state": DesiredState(StateType=ExecutionDesiredStateType.Running),
        "compute_state": ExecutionState(StateType=ExecutionStateType.New),
        "revision": 1,
    }
    return _build(Execution, defaults, overrides)


def make_evaluation(job: Job, **overrides: Any) -> Evaluation:
    """A pending job-register evaluation of `job`."""
    defaults: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "namespace": job.namespace,
        "job_id": job.id,
        "triggered_by": EvaluationTrigger.JobRegister,
        "priority": job.priority,
        "type": job.type,
        "status": EvaluationStatus.Pending,
    }
    return _build(Evaluation, defaults, overrides)


def make_event(
    job: Job,
    *,
    message: str | None = None,
    topic: str | None = None,
    previous: JobStateType | None = None,
    new: JobStateType | None = None,
    **overrides: Any,
) -> JobHistory:
    """A job-level event: "Job submitted", or with `new` (and `previous`) a state-update event."""
    defaults: dict[str, Any] = {"type": JobHistoryType.JobLevel, "job_id": job.id, "job_version": job.version}
    if new is None:
        defaults["event"] = Event(Message=message or "Job submitted", Topic=topic or TOPIC_SUBMISSION)
    else:
        defaults["job_state"] = JobStateChange(Previous=previous or JobStateType.Undefined, New=new)
        defaults["event"] = Event(
            Message=message or new.name, Topic=topic or TOPIC_STATE_UPDATE, Details={"NewState": new.name}
        )
    return _build(JobHistory, defaults, overrides)


def make_execution_event(
    execution: Execution,
    *,
    message: str | None = None,
    topic: str = TOPIC_EXECUTION,
    previous: ExecutionStateType | None = None,
    new: ExecutionStateType | None = None,
    **overrides: Any,
) -> JobHistory:
    """An execution-level event for `execution`; with `new` (and `previous`) a state change."""
    defaults: dict[str, Any] = {
        "type": JobHistoryType.ExecutionLevel,
        "job_id": execution.job_id,
        "job_version": execution.job_version,
        "execution_id": execution.id,
        "node_id": execution.node_id,
        "event": Event(Message=message or (new.name if new is not None else "Running"), Topic=topic),
    }
    if new is not None:
        defaults["execution_state"] = ExecutionStateChange(Previous=previous or ExecutionStateType.Undefined, New=new)
    return _build(JobHistory, defaults, overrides)


def make_node(**overrides: Any) -> NodeState:
    """An approved, connected compute node with 4 CPUs, 8 GB memory, 100 GB disk, running docker/wasm.

    Overrides are NodeState fields; pass `info=make_node_info(...)` to change what the node offers.
    """
    return _build(NodeState, {"info": make_node_info()}, overrides)


def make_node_info(**overrides: Any) -> NodeInfo:
    """The NodeInfo of a compute node (see make_node)."""
    capacity = Resources(CPU=4.0, Memory=8_000_000_000, Disk=100_000_000_000)
    defaults: dict[str, Any] = {
        "node_id": new_node_id(),
        "node_type": NODE_TYPE_COMPUTE,
        "supported_protocols": [PROTOCOL_NCL_V1],
        "compute_node_info": ComputeNodeInfo(
            ExecutionEngines=["docker", "wasm"],
            Publishers=["noop", "local"],
            StorageSources=["inline", "urlDownload", "local"],
            MaxCapacity=capacity,
            AvailableCapacity=capacity,
            QueueCapacity=Resources(),
            MaxJobRequirements=capacity,
        ),
    }
    return _build(NodeInfo, defaults, overrides)


class FakeClock:
    """An injectable clock (Unix nanoseconds) that moves only when told to; `clock()` reads it.

    Each read also advances by `tick_ns` (default 1 µs) so that successive writes get distinct,
    increasing times, as they would on a real clock.
    """

    def __init__(self, start_ns: int = 1_800_000_000_000_000_000, tick_ns: int = 1_000) -> None:
        self.now_ns = start_ns
        self.tick_ns = tick_ns

    def __call__(self) -> int:
        now = self.now_ns
        self.now_ns += self.tick_ns
        return now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now_ns += int(seconds * 1_000_000_000)
