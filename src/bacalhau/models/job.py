"""The job spec: Job, Task, SpecConfig and friends, with Bacalhau's field names (CONTRACT.md section 1)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from bacalhau.models.fields import AnyMap, MaxItems, NoneList, StrMap, WholeNumber
from bacalhau.models.limits import MAX_LIST_ENTRIES, MAX_TASKS
from bacalhau.models.state import JobStateType, JobStateWire
from bacalhau.models.wire import WireModel


class SpecConfig(WireModel):
    """A typed plug-in reference: `{Type, Params}` for engines, publishers and sources."""

    type: str = Field("", alias="Type")
    params: AnyMap = Field(default_factory=dict, alias="Params")


    @field_validator("type", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else ("" if value is None else value)

    def param(self, name: str, default: Any = None) -> Any:
        """Look a param up case-insensitively, as Bacalhau's decoders do."""
        if name in self.params:
            return self.params[name]
        lowered = name.lower()
        for key, value in self.params.items():
            if key.lower() == lowered:
                return value
        return default

    def is_type(self, name: str) -> bool:
        return self.type.lower() == name.lower()


class InputSource(WireModel):
    source: SpecConfig = Field(default_factory=SpecConfig, alias="Source")
    alias: str = Field("", alias="Alias")
    target: str = Field("", alias="Target")


class ResultPath(WireModel):
    name: str = Field("", alias="Name")
    path: str = Field("", alias="Path")


class ResourcesConfig(WireModel):
    """Requested resources as Bacalhau's strings (`500m`, `512Mb`)."""

    cpu: str = Field("", alias="CPU")
    memory: str = Field("", alias="Memory")
    disk: str = Field("", alias="Disk")
    gpu: str = Field("", alias="GPU")

    @field_validator("cpu", "memory", "disk", "gpu", mode="before")
    @classmethod
    def _to_str(cls, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value


class Port(WireModel):
    name: str = Field("", alias="Name")
    static: int = Field(0, alias="Static")
    target: int = Field(0, alias="Target")
    host_network: str = Field("", alias="HostNetwork")


class NetworkConfig(WireModel):
    type: str = Field("Default", alias="Type")
    domains: Annotated[NoneList[str], MaxItems(MAX_LIST_ENTRIES)] = Field(default_factory=list, alias="Domains")
    ports: Annotated[NoneList[Port], MaxItems(MAX_LIST_ENTRIES)] = Field(default_factory=list, alias="Ports")



class TimeoutConfig(WireModel):
    """Timeouts in whole seconds; 0 means none. Bounded by validation (models/limits.py)."""

    execution_timeout: WholeNumber = Field(0, alias="ExecutionTimeout")
    queue_timeout: WholeNumber = Field(0, alias="QueueTimeout")
    total_timeout: WholeNumber = Field(0, alias="TotalTimeout")


class LabelSelectorRequirement(WireModel):
    key: str = Field("", alias="Key")
    operator: str = Field("", alias="Operator")
    values: NoneList[str] = Field(default_factory=list, alias="Values")



class Task(WireModel):
    name: str = Field("", alias="Name")
    engine: SpecConfig = Field(default_factory=SpecConfig, alias="Engine")
    publisher: SpecConfig = Field(default_factory=SpecConfig, alias="Publisher")
    env: StrMap = Field(default_factory=dict, alias="Env")
    meta: StrMap = Field(default_factory=dict, alias="Meta")
    input_sources: Annotated[NoneList[InputSource], MaxItems(MAX_LIST_ENTRIES)] = Field(
        default_factory=list, alias="InputSources"
    )
    result_paths: Annotated[NoneList[ResultPath], MaxItems(MAX_LIST_ENTRIES)] = Field(
        default_factory=list, alias="ResultPaths"
    )
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig, alias="Resources")
    network: NetworkConfig = Field(default_factory=NetworkConfig, alias="Network")
    timeouts: TimeoutConfig = Field(default_factory=TimeoutConfig, alias="Timeouts")


    @field_validator("engine", "publisher", "resources", "network", "timeouts", mode="before")
    @classmethod
    def _none_to_default(cls, value: Any) -> Any:
        return {} if value is None else value


class JobState(WireModel):
    state_type: JobStateWire = Field(JobStateType.Undefined, alias="StateType")
    message: str = Field("", alias="Message")
    details: StrMap = Field(default_factory=dict, alias="Details")



class Job(WireModel):
    id: str = Field("", alias="ID")
    name: str = Field("", alias="Name")
    namespace: str = Field("", alias="Namespace")
    type: str = Field("", alias="Type")
    priority: WholeNumber = Field(0, alias="Priority")
    # None means "absent": normalisation turns it into 1 for batch/service (Bacalhau's UnmarshalJSON rule).
    count: WholeNumber | None = Field(None, alias="Count")
    constraints: Annotated[NoneList[LabelSelectorRequirement], MaxItems(MAX_LIST_ENTRIES)] = Field(
        default_factory=list, alias="Constraints"
    )
    meta: StrMap = Field(default_factory=dict, alias="Meta")
    labels: StrMap = Field(default_factory=dict, alias="Labels")
    # Only the first task runs (normalisation drops the others, as Bacalhau does); more than MAX_TASKS
    # in a request is refused before any is parsed.
    tasks: Annotated[NoneList[Task], MaxItems(MAX_TASKS)] = Field(default_factory=list, alias="Tasks")
    state: JobState = Field(default_factory=JobState, alias="State")
    version: int = Field(0, alias="Version")
    revision: int = Field(0, alias="Revision")
    create_time: int = Field(0, alias="CreateTime")
    modify_time: int = Field(0, alias="ModifyTime")


    @field_validator("state", mode="before")
    @classmethod
    def _state_default(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def task(self) -> Task:
        """The job's single task (Bacalhau keeps only the first)."""
        return self.tasks[0]

    @property
    def effective_count(self) -> int:
        return 1 if self.count is None else self.count

    def to_wire(self) -> dict[str, Any]:
        data = super().to_wire()
        data["Count"] = self.effective_count
        return data

    def to_wire_json(self) -> str:
        """to_wire() as JSON text (WireModel.to_wire_json), Count included as to_wire says it."""
        if self.count is None:  # as to_wire: the count in effect, never null
            return self.model_copy(update={"count": self.effective_count}).to_wire_json()
        return super().to_wire_json()
