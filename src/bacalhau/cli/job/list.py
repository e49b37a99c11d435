"""`bacalhau job list`: jobs in a table (or csv/json/yaml)."""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import list_options, output_options, pop_output
from bacalhau.cli.job.tables import JOB_COLUMNS
from bacalhau.cli.output import emit_list

DEFAULT_LABEL_FILTER = "bacalhau_canary != true"


@click.command("list", cls=BacalhauCommand)
@list_options(limit=10, order_by=("created_at", "modified_at"))
@click.option("--labels", default=DEFAULT_LABEL_FILTER, show_default=True,
              help="Filter jobs by a label selector, e.g. 'env=prod,tier in (a,b)'.")
@click.option("--namespace", default="", help="Only jobs of this namespace (default: all).")
@output_options()
@pass_cli
def list_jobs(cli: CliContext, /, limit: int, next_token: str, order_by: str | None, order_reversed: bool, labels: str,
              namespace: str, **kwargs: Any) -> None:
    """List jobs, newest first."""
    opts = pop_output(kwargs)
    with cli.client() as client:
        resp = client.list_jobs(
            limit=limit,
            next_token=next_token,
            order_by=order_by or "",
            reverse=order_reversed,
            labels=[labels] if labels.strip() else [],
            namespace=namespace,
        )
    emit_list(JOB_COLUMNS, resp.items, opts, next_token=resp.next_token, more=f"bacalhau job list --limit {limit}")
