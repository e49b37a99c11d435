"""`bacalhau job rerun ID`: run a job's spec again as a new version, then report like `job run`."""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import namespace_option, pop_run, run_options
from bacalhau.cli.output import echo


@click.command("rerun", cls=BacalhauCommand)
@click.argument("job_id")
@click.option("-v", "--version", "job_version", type=click.IntRange(min=0), default=0,
              help="The job version to rerun (default: latest).")
@click.option("--reason", default="", help="Why the job is rerun (kept in history).")
@namespace_option
@run_options(dry_run=False)
@pass_cli
def rerun(cli: CliContext, /, job_id: str, job_version: int, reason: str, namespace: str, **kwargs: Any) -> None:
    """Rerun the job JOB_ID."""
    from bacalhau.cli.submission import report

    flags = pop_run(kwargs)
    with cli.client() as client:
        resp = client.rerun_job(job_id, version=job_version, reason=reason, namespace=namespace)
        if not flags.id_only:
            for warning in resp.warnings:
                echo(f"Warning: {warning}", err=True)
        headline = f"Job successfully rerun. Job ID: {resp.job_id}, new version: {resp.job_version}"
        report(client, resp.job_id, flags, job_version=resp.job_version, namespace=namespace, headline=headline)
