"""Building a Job from `docker run` / `wasm run` flags (job_options and task_options in flags.py)."""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.inputs import parse_input
from bacalhau.cli.publisher import parse_publisher, parse_result_paths
from bacalhau.cli.selectors import parse_pairs, parse_selector
from bacalhau.models import constants as c
from bacalhau.models.job import (
    InputSource,
    Job,
    NetworkConfig,
    ResourcesConfig,
    SpecConfig,
    Task,
    TimeoutConfig,
)
from bacalhau.models.validation import NETWORK_TYPES, canonical_type


def build_job(engine: SpecConfig, kwargs: dict[str, Any], *, inputs: list[InputSource] | None = None) -> Job:
    """Pop the job and task flags out of `kwargs` and return the job they describe."""
    target = str(kwargs.pop("target", "any")).lower()
    job_type = c.JOB_TYPE_OPS if target == "all" else c.JOB_TYPE_BATCH
    count = int(kwargs.pop("count", 1))

    network_raw = str(kwargs.pop("network", "") or "")
    domains = list(kwargs.pop("domain", ()))
    network = NetworkConfig()
    if network_raw:
        kind = canonical_type(network_raw, NETWORK_TYPES)
        if kind is None:
            raise click.BadParameter(f"{network_raw!r}; valid: {', '.join(NETWORK_TYPES)}", param_hint="'--network'")
        network = NetworkConfig(Type=kind, Domains=domains)
    elif domains:
        # Domains only make sense on the HTTP network; asking for them implies it.
        network = NetworkConfig(Type="HTTP", Domains=domains)

    task_inputs = list(inputs or [])
    task_inputs += [parse_input(raw) for raw in kwargs.pop("inputs", ())]
    publisher = parse_publisher(str(kwargs.pop("publisher", "") or ""))
    task = Task(
        Name=str(kwargs.pop("task_name", c.DEFAULT_TASK_NAME) or c.DEFAULT_TASK_NAME),
        Engine=engine,
        Publisher=publisher or SpecConfig(),
        Env=parse_pairs(kwargs.pop("env", ()), flag="-e/--env"),
        InputSources=task_inputs,
        ResultPaths=parse_result_paths(kwargs.pop("outputs", ())),
        Resources=ResourcesConfig(
            CPU=kwargs.pop("cpu", ""), Memory=kwargs.pop("memory", ""),
            Disk=kwargs.pop("disk", ""), GPU=kwargs.pop("gpu", ""),
        ),
        Network=network,
        Timeouts=TimeoutConfig(TotalTimeout=kwargs.pop("timeout", 0), QueueTimeout=kwargs.pop("queue_timeout", 0)),
    )
    return Job(
        Name=str(kwargs.pop("name", "") or ""),
        Namespace=str(kwargs.pop("namespace", "") or c.DEFAULT_NAMESPACE),
        Type=job_type,
        Priority=int(kwargs.pop("priority", 0)),
        Count=count if job_type == c.JOB_TYPE_BATCH else 0,
        Constraints=parse_selector(str(kwargs.pop("constraints", "") or "")),
        Labels=parse_pairs(kwargs.pop("labels", ()), flag="-l/--labels", bare=True),
        Tasks=[task],
    )
