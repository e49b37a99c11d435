"""`bacalhau job logs ID`: print (or follow) the output of a job's execution."""

from __future__ import annotations

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import namespace_option

STDERR = 2


@click.command("logs", cls=BacalhauCommand)
@click.argument("job_id")
@click.option("-e", "--execution-id", default="", help="The execution to read (default: the latest one).")
@click.option("-f", "--follow", is_flag=True, help="Keep streaming new lines until the execution ends.")
@click.option("-t", "--tail", is_flag=True, help="Start from the most recent lines.")
@click.option("-v", "--version", "job_version", type=click.IntRange(min=0), default=0, hidden=True,
              help="Accepted for compatibility; the latest execution is read.")
@namespace_option
@pass_cli
def logs(cli: CliContext, /, job_id: str, execution_id: str, follow: bool, tail: bool, job_version: int,
         namespace: str) -> None:
    """Print the logs of the job JOB_ID: stdout lines on stdout, stderr lines on stderr."""
    with cli.client() as client:
        try:
            for line in client.job_logs(job_id, execution_id=execution_id, follow=follow, tail=tail,
                                        namespace=namespace):
                text = line.line if line.line.endswith("\n") else line.line + "\n"
                click.echo(text, nl=False, err=line.type == STDERR)
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None
