"""The environment a task sees: its `Env`, with `env:HOST_VAR` references resolved, plus Bacalhau's own vars.

A value `env:HOST_VAR` is taken from the compute node's environment, but only when HOST_VAR matches a
glob of `Compute.Env.AllowList` (e.g. `TEST_*`): a job must not be able to read the node's secrets
just by naming them. System variables (`BACALHAU_EXECUTION_ID`, ...) are set last, so they win.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence

from bacalhau.models import constants as c
from bacalhau.models.errors import ConfigurationError
from bacalhau.models.execution import Execution
from bacalhau.models.job import Job, Task

HOST_ENV_PREFIX = c.ENV_FORWARD_PREFIX


def resolve_host_reference(name: str, value: str, *, allow_list: Sequence[str], host_env: Mapping[str, str]) -> str:
    """The value of a task env entry; `env:VAR` is read from `host_env` if VAR is allow-listed.

    Raises ConfigurationError naming the variable and the allow-list when it is not allowed or not set.
    """
    if not value.startswith(HOST_ENV_PREFIX):
        return value
    host_var = value[len(HOST_ENV_PREFIX) :].strip()
    if not any(fnmatch.fnmatchcase(host_var, pattern) for pattern in allow_list):
        allowed = ", ".join(allow_list) if allow_list else "empty"
        raise ConfigurationError(
            f"task env {name} asks for host variable {host_var}, which is not allowed by this compute node's "
            f"Compute.Env.AllowList ({allowed})",
            component="Executor",
            hint=f"add {host_var} (or a matching pattern) to Compute.Env.AllowList on the compute node, "
            "or give the value directly in the job",
        )
    if host_var not in host_env:
        raise ConfigurationError(
            f"task env {name} asks for host variable {host_var}, which is not set on this compute node",
            component="Executor",
            hint=f"set {host_var} in the compute node's environment, or give the value directly in the job",
        )
    return host_env[host_var]


def system_environment(execution: Execution, job: Job, task: Task) -> dict[str, str]:
    """Bacalhau's variables for every task, including one per declared network port."""
    env = {
        "BACALHAU_EXECUTION_ID": execution.id,
        "BACALHAU_JOB_ID": job.id or execution.job_id,
        "BACALHAU_JOB_TYPE": job.type,
        "BACALHAU_PARTITION_INDEX": str(execution.partition_index),
        "BACALHAU_PARTITION_COUNT": str(job.effective_count),
    }
    for port in task.network.ports:
        if port.static:
            env[f"BACALHAU_HOST_PORT_{port.name}"] = str(port.static)
        if port.target:
            env[f"BACALHAU_PORT_{port.name}"] = str(port.target)
    return env


def task_environment(
    execution: Execution, job: Job, task: Task, *, allow_list: Sequence[str], host_env: Mapping[str, str]
) -> dict[str, str]:
    """The final environment of the task: resolved Task.Env overlaid by the system variables."""
    env = {
        name: resolve_host_reference(name, value, allow_list=allow_list, host_env=host_env)
        for name, value in task.env.items()
    }
    env.update(system_environment(execution, job, task))
    return env
