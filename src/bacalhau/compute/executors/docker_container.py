"""The container a docker task runs in: what it may see and use, and how it is labelled.

Locked down by default, and nothing from the host is reachable except what the task declared:

    capabilities   all dropped; no-new-privileges; never privileged; no devices
    network        none unless admitted (see docker_policy)
    limits         memory (swap included, so the limit is real), CPU, pids
    host paths     inputs bind-mounted read-only (a local input granted ReadWrite may be rw),
                   result paths bind-mounted rw; no Docker socket, no other host path; a relative
                   input Target fails the execution, as the engine refuses it in Bacalhau
    labels         bacalhau.org/{managed,node-id,execution-id,job-id}: how leftovers are found

The root filesystem stays writable (`read_only=False`): tools expect a writable /tmp, and it is the
container's own copy-on-write layer, removed with the container.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docker.types import LogConfig, Mount

from bacalhau.compute.executors.base import RunRequest
from bacalhau.compute.executors.docker_params import DockerParams
from bacalhau.models.errors import ErrorCode, ExecutionError
from bacalhau.models.task_path import resolve_task_path

LABEL_MANAGED = "bacalhau.org/managed"
LABEL_NODE_ID = "bacalhau.org/node-id"
LABEL_EXECUTION_ID = "bacalhau.org/execution-id"
LABEL_JOB_ID = "bacalhau.org/job-id"
_NANO = 1_000_000_000


@dataclass(frozen=True)
class Limits:
    """Node defaults, used for a dimension the job leaves at 0."""

    default_memory_bytes: int = 0
    default_cpu: float = 0.0
    pids_limit: int = 1024

    def memory_bytes(self, request: RunRequest) -> int:
        """The memory limit in bytes; 0 means none."""
        return request.resources.memory or self.default_memory_bytes

    def cpu(self, request: RunRequest) -> float:
        """The CPU limit in cores; 0 means none."""
        return request.resources.cpu or self.default_cpu


def container_name(execution_id: str) -> str:
    """One container per execution, so a leftover of an earlier attempt is easy to spot."""
    return f"bacalhau-{execution_id}"


def managed_filter(node_id: str) -> dict[str, list[str]]:
    """The engine-side filter for every container this node started."""
    return {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_NODE_ID}={node_id}"]}


CONTAINER_LOG_FILE_BYTES = 512 * 1024 * 1024
CONTAINER_LOG_FILES = 2


def container_spec(
    request: RunRequest,
    params: DockerParams,
    *,
    image_id: str,
    node_id: str,
    network_mode: str,
    limits: Limits,
    network_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `client.containers.create` (docker SDK)."""
    spec: dict[str, Any] = {
        "image": image_id,
        "name": container_name(request.execution_id),
        "labels": {
            LABEL_MANAGED: "true",
            LABEL_NODE_ID: node_id,
            LABEL_EXECUTION_ID: request.execution_id,
            LABEL_JOB_ID: request.job_id,
        },
        # An empty list means "the image's own": Docker would otherwise clear the image's ENTRYPOINT/CMD.
        "entrypoint": params.entrypoint or None,
        "command": params.parameters or None,
        "environment": environment(params, request.env, network_env or {}),
        "working_dir": params.working_directory or None,
        "network_mode": network_mode,
        "mounts": mounts(request),
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "pids_limit": limits.pids_limit if limits.pids_limit > 0 else None,
        "read_only": False,
        "stdin_open": False,
        "tty": False,
        # The engine keeps its own copy of the output (json-file, uncapped by default: 2 GB of stdout took
        # 3.2 GB under /var/lib/docker). Two files of at most CONTAINER_LOG_FILE_BYTES: the engine holds
        # at most about what the node keeps of each stream (docker_logs.MAX_LOG_BYTES), and re-attaching
        # after a crash still finds the output's last part.
        "log_config": LogConfig(
            type=LogConfig.types.JSON,
            config={"max-size": str(CONTAINER_LOG_FILE_BYTES), "max-file": str(CONTAINER_LOG_FILES)},
        ),
    }
    memory = limits.memory_bytes(request)
    if memory > 0:
        spec["mem_limit"] = memory
        # Without it Docker allows as much swap again: a task over its limit would crawl, not be killed.
        spec["memswap_limit"] = memory
    cpu = limits.cpu(request)
    if cpu > 0:
        spec["nano_cpus"] = int(cpu * _NANO)
    return spec


def environment(params: DockerParams, env: dict[str, str], network_env: dict[str, str] | None = None) -> list[str]:
    """EnvironmentVariables first, then the task env (with BACALHAU_* system vars), then the network's
    (the egress proxy of an HTTP job, as Bacalhau appends it): later entries win."""
    merged: dict[str, str] = {}
    for item in params.environment:
        name, _, value = item.partition("=")
        merged[name] = value
    merged.update(env)
    merged.update(network_env or {})
    return [f"{name}={value}" for name, value in merged.items()]


def refuse_relative_targets(request: RunRequest) -> None:
    """Raise ExecutionError naming the first input whose Target is relative (`data`, `main.wasm`).

    Bacalhau accepts such a Target and hands it to the engine as written, which refuses it ("invalid
    mount path: 'data' mount path must be absolute") and so fails the execution; this fails it the same
    way before any pull, saying which field to change. Joining it to `/` instead would run a job
    Bacalhau fails. The runner stages inputs in InputSources order, so the index is the field's.
    """
    for index, item in enumerate(request.inputs):
        if not item.target.startswith("/"):
            raise ExecutionError(
                f"InputSources[{index}].Target {item.target!r} is a relative path: the Docker engine mounts "
                "inputs only at absolute paths",
                code=ErrorCode.ValidationError,
                hint=f"write the Target as an absolute path, e.g. {_absolute(item.target)!r}",
            )


def _absolute(target: str) -> str:
    try:
        return resolve_task_path(target)
    except ValueError:
        return "/inputs"


def mounts(request: RunRequest) -> list[Mount]:
    """Bind mounts for the declared inputs and result paths, and nothing else."""
    out = [
        Mount(target=item.target, source=str(item.host_path), type="bind", read_only=item.read_only)
        for item in request.inputs
    ]
    out.extend(
        Mount(target=item.target, source=str(item.host_path), type="bind", read_only=False) for item in request.outputs
    )
    return out
