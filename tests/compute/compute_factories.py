"""Factories for the compute tests: a node config, a plugin registry with a given engine, executions.

Real objects with sensible defaults (see tests/factories.py). Test modules import this by name, like
tests/scenarios/scenario_jobs.py, because conftest modules cannot be imported reliably.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bacalhau.compute.executors.base import Executor
from bacalhau.compute.executors.noop import NoopExecutor
from bacalhau.compute.publishers.local import LocalPublisher
from bacalhau.compute.publishers.noop import NoopPublisher
from bacalhau.compute.registry import PluginRegistry
from bacalhau.compute.storage.inline import InlineStorage
from bacalhau.compute.storage.inline_store import InlineStore
from bacalhau.compute.storage.local import LocalStorage
from bacalhau.config.types import BacalhauConfig
from bacalhau.models.execution import AllocatedResources, Execution
from bacalhau.models.job import InputSource, ResourcesConfig, ResultPath, SpecConfig, TimeoutConfig
from factories import make_execution, make_job, make_task

# The engine type of conftest's ScriptedExecutor.
SCRIPTED = "scripted"


def make_compute_config(tmp_path: Path, **compute: Any) -> BacalhauConfig:
    """A node config under tmp_path with a fixed capacity of 4 CPU / 8 GB / 10 GB and a free publisher port."""
    config = BacalhauConfig.model_validate(
        {
            "DataDir": str(tmp_path / "data"),
            "Labels": {"zone": "test"},
            "Compute": {"AllocatedCapacity": {"CPU": "4", "Memory": "8Gb", "Disk": "10Gb", "GPU": "0"}, **compute},
            "Publishers": {"Types": {"Local": {"Address": "127.0.0.1", "Port": 0}}},
        }
    )
    return config


def make_registry(config: BacalhauConfig, executor: Executor) -> PluginRegistry:
    """The built-in storages and publishers plus the scripted engine (and noop)."""
    local = LocalStorage(allow_listed_paths=list(config.compute.allow_listed_local_paths))
    noop = NoopPublisher()
    return PluginRegistry(
        executors={SCRIPTED: executor, "noop": NoopExecutor()},
        # Inline inputs shared between executions, as a node stages them (registry.build_registry).
        storages={"inline": InlineStorage(store=InlineStore(Path(config.data_dir) / "compute" / "cache" / "inline")),
                  "local": local, "localDirectory": local},
        publishers={
            "local": LocalPublisher(data_dir=Path(config.data_dir), address="127.0.0.1", port=0),
            "noop": noop,
        },
        empty_publisher=noop,
    )


def scripted_execution(
    *,
    cpu: str = "1",
    memory: str = "1Gb",
    disk: str = "",
    publisher: str = "",
    inputs: list[InputSource] | None = None,
    result_paths: list[ResultPath] | None = None,
    env: dict[str, str] | None = None,
    timeout_s: int = 0,
    job_type: str = "batch",
    engine_type: str = SCRIPTED,
    **params: Any,
) -> Execution:
    """An execution of a one-task job on the scripted engine; `params` become its Engine.Params."""
    task = make_task(
        engine=SpecConfig(Type=engine_type, Params=params),
        publisher=SpecConfig(Type=publisher),
        resources=ResourcesConfig(CPU=cpu, Memory=memory, Disk=disk),
        input_sources=inputs or [],
        result_paths=result_paths or [],
        env=env or {},
        timeouts=TimeoutConfig(ExecutionTimeout=timeout_s),
    )
    job = make_job(type=job_type, tasks=[task])
    # No orchestrator allocation: the node sizes the execution from the task's request.
    return make_execution(job, allocated_resources=AllocatedResources())
