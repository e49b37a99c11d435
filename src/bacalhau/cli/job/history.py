"""`bacalhau job history ID`: a job's history events."""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import list_options, namespace_option, output_options, pop_output
from bacalhau.cli.job.tables import HISTORY_COLUMNS
from bacalhau.cli.output import emit_list


@click.command("history", cls=BacalhauCommand)
@click.argument("job_id")
@click.option("--event-type", type=click.Choice(["all", "job", "execution"], case_sensitive=False), default="all",
              show_default=True, help="Which events to list.")
@click.option("--execution-id", default="", help="Only events of this execution.")
@click.option("-v", "--version", "job_version", type=click.IntRange(min=0), default=0,
              help="Events of this job version (default: latest).")
@click.option("--all-versions", is_flag=True, help="Events of every job version.")
@list_options(limit=0)
@namespace_option
@output_options()
@pass_cli
def history(cli: CliContext, /, job_id: str, event_type: str, execution_id: str, job_version: int, all_versions: bool,
            limit: int, next_token: str, order_by: str | None, order_reversed: bool, namespace: str, **kwargs: Any) -> None:
    """List the history events of the job JOB_ID."""
    opts = pop_output(kwargs)
    with cli.client() as client:
        resp = client.job_history(
            job_id,
            namespace=namespace,
            limit=limit,
            next_token=next_token,
            order_by=order_by or "",
            reverse=order_reversed,
            job_version=job_version,
            all_job_versions=all_versions,
            event_type=event_type.lower(),
            execution_id=execution_id,
        )
    emit_list(HISTORY_COLUMNS, resp.items, opts, next_token=resp.next_token, more=f"bacalhau job history {job_id}")
