"""`bacalhau job versions ID`: every version of a job's spec."""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import namespace_option, output_options, pop_output
from bacalhau.cli.job.tables import VERSION_COLUMNS
from bacalhau.cli.output import emit_list


@click.command("versions", cls=BacalhauCommand)
@click.argument("job_id")
@namespace_option
@output_options()
@pass_cli
def versions(cli: CliContext, /, job_id: str, namespace: str, **kwargs: Any) -> None:
    """List the versions of the job JOB_ID."""
    opts = pop_output(kwargs)
    with cli.client() as client:
        resp = client.job_versions(job_id, namespace=namespace)
    emit_list(VERSION_COLUMNS, resp.items, opts)
