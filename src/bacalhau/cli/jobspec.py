"""Building a job from `docker run` / `wasm run` flags (job_options and task_options in flags.py), and
submitting it.

The job is built in Bacalhau's wire shape (a dict with the canonical key names, only the fields the flags
set) and sent as it is: the server parses it exactly as it parses a model's dump (missing fields take
their defaults), and building it imports no models, which is most of what `wasm run` would otherwise
spend before talking to the server.

Who validates the job:

    --dry-run, or job limits in the CLI's own config  ->  here, with the models (cli/jobfile.py), as before
    otherwise                                          ->  the server, as it stores it: the same checks
                                                            (models/validation.py) against its own limits,
                                                            refused with the same field list, exit code 1
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from bacalhau.cli.flags import RunFlags
from bacalhau.cli.inputs import parse_input
from bacalhau.cli.publisher import parse_publisher, parse_result_paths
from bacalhau.cli.selectors import parse_pairs, parse_selector
from bacalhau.models import constants as c

if TYPE_CHECKING:
    from bacalhau.cli.context import CliContext
    from bacalhau.models.job import Job
    from bacalhau.models.limits import JobLimits


def build_job(engine: dict[str, Any], kwargs: dict[str, Any], *, inputs: list[dict[str, Any]] | None = None
              ) -> dict[str, Any]:
    """Pop the job and task flags out of `kwargs` and return the job they describe, in wire shape.

    `engine` is the task's `{Type, Params}`; `inputs` are input sources the verb adds before the `-i` ones.
    """
    target = str(kwargs.pop("target", "any")).lower()
    job_type = c.JOB_TYPE_OPS if target == "all" else c.JOB_TYPE_BATCH
    count = int(kwargs.pop("count", 1))

    network_raw = str(kwargs.pop("network", "") or "")
    domains = list(kwargs.pop("domain", ()))
    network: dict[str, Any] | None = None
    if network_raw:
        kind = c.canonical_type(network_raw, c.NETWORK_TYPES)
        if kind is None:
            raise click.BadParameter(f"{network_raw!r}; valid: {', '.join(c.NETWORK_TYPES)}", param_hint="'--network'")
        network = {"Type": kind, "Domains": domains}
    elif domains:
        # Domains only make sense on the HTTP network; asking for them implies it.
        network = {"Type": "HTTP", "Domains": domains}

    task_inputs = list(inputs or [])
    task_inputs += [parse_input(raw) for raw in kwargs.pop("inputs", ())]
    publisher = parse_publisher(str(kwargs.pop("publisher", "") or ""))
    task: dict[str, Any] = {
        "Name": str(kwargs.pop("task_name", c.DEFAULT_TASK_NAME) or c.DEFAULT_TASK_NAME),
        "Engine": engine,
        "Env": parse_pairs(kwargs.pop("env", ()), flag="-e/--env"),
        "InputSources": task_inputs,
        "ResultPaths": parse_result_paths(kwargs.pop("outputs", ())),
        "Resources": {
            "CPU": kwargs.pop("cpu", ""), "Memory": kwargs.pop("memory", ""),
            "Disk": kwargs.pop("disk", ""), "GPU": kwargs.pop("gpu", ""),
        },
        "Timeouts": {"TotalTimeout": kwargs.pop("timeout", 0), "QueueTimeout": kwargs.pop("queue_timeout", 0)},
    }
    # Left out when not asked for: the task's defaults (no publisher, the Default network) apply.
    if publisher is not None:
        task["Publisher"] = publisher
    if network is not None:
        task["Network"] = network
    return {
        "Name": str(kwargs.pop("name", "") or ""),
        "Namespace": str(kwargs.pop("namespace", "") or c.DEFAULT_NAMESPACE),
        "Type": job_type,
        "Priority": int(kwargs.pop("priority", 0)),
        "Count": count if job_type == c.JOB_TYPE_BATCH else 0,
        "Constraints": parse_selector(str(kwargs.pop("constraints", "") or "")),
        "Labels": parse_pairs(kwargs.pop("labels", ()), flag="-l/--labels", bare=True),
        "Tasks": [task],
    }


def checked_job(spec: dict[str, Any], limits: JobLimits) -> Job:
    """The job `spec` describes, as a model, after the client-side validation (ValidationFailed lists
    every problem)."""
    from bacalhau.cli.jobfile import ensure_submittable
    from bacalhau.models.job import Job

    job = Job.model_validate(spec)
    ensure_submittable(job, limits)
    return job


def run_job(cli: CliContext, spec: dict[str, Any], flags: RunFlags) -> None:
    """Print (`--dry-run`) or submit a job built by build_job, then report on it with its task output."""
    if flags.dry_run or cli.job_limits_configured():
        job = checked_job(spec, cli.job_limits())
        if flags.dry_run:
            from bacalhau.cli.jobfile import submittable_yaml

            click.echo(submittable_yaml(job), nl=False)
            return
    from bacalhau.cli.submission import submit
    from bacalhau.client import routes

    with cli.client() as client:
        submit(client, routes.put_job_spec(spec, force=False), flags, namespace=str(spec["Namespace"]),
               show_output=True)
