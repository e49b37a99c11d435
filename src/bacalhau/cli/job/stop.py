"""`bacalhau job stop ID`: ask the orchestrator to stop a job."""

from __future__ import annotations

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import namespace_option
from bacalhau.cli.output import echo

DEFAULT_REASON = "Stopped by user via the CLI"


@click.command("stop", cls=BacalhauCommand)
@click.argument("job_id")
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@click.option("--reason", default=DEFAULT_REASON, show_default=True, help="Why the job is stopped (kept in history).")
@namespace_option
@pass_cli
def stop(cli: CliContext, /, job_id: str, quiet: bool, reason: str, namespace: str) -> None:
    """Stop the job JOB_ID (a full ID, short ID or name)."""
    with cli.client() as client:
        if not quiet:
            click.echo("Checking job status")
        resp = client.stop_job(job_id, reason=reason, namespace=namespace)
    if quiet:
        return
    if resp.evaluation_id:
        echo(f"\nJob stop successfully submitted with evaluation ID: {resp.evaluation_id}")
    else:
        click.echo("\nJob is already in a terminal state; nothing to stop.")
