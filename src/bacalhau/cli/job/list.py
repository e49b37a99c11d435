"""`bacalhau job list`: jobs in a table (or csv/json/yaml).

A table or csv shows six fields of each job, read straight from the server's JSON (cli/wire_view.py):
no pydantic, no httpx, so the command answers in about the time Python takes to start. JSON and YAML
print whole jobs as the models read them (unknown keys dropped, defaults filled in), so for those the
answer is decoded with the models, as it always was.
"""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import list_options, output_options, pop_output
from bacalhau.cli.job.tables import JOB_COLUMNS
from bacalhau.cli.output import CSV, TABLE, emit_list, emit_rows
from bacalhau.cli.wire_view import JobView, items_of, next_token_of
from bacalhau.client import routes

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
    call = routes.list_jobs(
        limit=limit,
        next_token=next_token,
        order_by=order_by or "",
        reverse=order_reversed,
        labels=[labels] if labels.strip() else [],
        namespace=namespace,
    )
    with cli.client() as client:
        page = client.raw(call)
    more = f"bacalhau job list --limit {limit}"
    if opts.format in (TABLE, CSV):
        jobs = [JobView(item) for item in items_of(page)]
        emit_rows(JOB_COLUMNS, jobs, opts, next_token=next_token_of(page), more=more)
        return
    resp = routes.decode(call, page)
    emit_list(JOB_COLUMNS, resp.items, opts, next_token=resp.next_token, more=more)
