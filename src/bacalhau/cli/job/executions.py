"""`bacalhau job executions ID`: a job's executions."""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import list_options, namespace_option, output_options, pop_output
from bacalhau.cli.job.tables import EXECUTION_COLUMNS
from bacalhau.cli.output import emit_list


@click.command("executions", cls=BacalhauCommand)
@click.argument("job_id")
@click.option("-v", "--version", "job_version", type=click.IntRange(min=0), default=0,
              help="Executions of this job version (default: latest).")
@click.option("--all-versions", is_flag=True, help="Executions of every job version.")
@list_options(limit=20, order_by=("created_at", "modified_at"))
@namespace_option
@output_options()
@pass_cli
def executions(cli: CliContext, /, job_id: str, job_version: int, all_versions: bool, limit: int, next_token: str,
               order_by: str | None, order_reversed: bool, namespace: str, **kwargs: Any) -> None:
    """List the executions of the job JOB_ID."""
    opts = pop_output(kwargs)
    with cli.client() as client:
        resp = client.job_executions(
            job_id,
            namespace=namespace,
            limit=limit,
            next_token=next_token,
            order_by=order_by or "",
            reverse=order_reversed,
            job_version=job_version,
            all_job_versions=all_versions,
        )
    emit_list(EXECUTION_COLUMNS, resp.items, opts, next_token=resp.next_token, more=f"bacalhau job executions {job_id}")
