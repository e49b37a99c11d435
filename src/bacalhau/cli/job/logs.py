"""`bacalhau job logs ID`: print (or follow) the output of a job's execution.

The job's output is the user's data and goes out byte for byte when stdout/stderr is a pipe or a file.
On a terminal its control characters are shown escaped (`\\x1b]0;...`), so that a job cannot retitle
the terminal or rewrite the screen; `--raw` (ours) prints it as it is there too, as Bacalhau does.
"""

from __future__ import annotations

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import namespace_option
from bacalhau.cli.output import log_text

STDERR = 2


@click.command("logs", cls=BacalhauCommand)
@click.argument("job_id")
@click.option("-e", "--execution-id", default="", help="The execution to read (default: the latest one).")
@click.option("-f", "--follow", is_flag=True, help="Keep streaming new lines until the execution ends.")
@click.option("-t", "--tail", is_flag=True, help="Start from the most recent lines.")
@click.option("-v", "--version", "job_version", type=click.IntRange(min=0), default=0, hidden=True,
              help="Accepted for compatibility; the latest execution is read.")
@click.option("--raw", is_flag=True,
              help="Print the output as it is even on a terminal (escape sequences included).")
@namespace_option
@pass_cli
def logs(cli: CliContext, /, job_id: str, execution_id: str, follow: bool, tail: bool, job_version: int,
         raw: bool, namespace: str) -> None:
    """Print the logs of the job JOB_ID: stdout lines on stdout, stderr lines on stderr."""
    with cli.client() as client:
        try:
            for line in client.job_logs(job_id, execution_id=execution_id, follow=follow, tail=tail,
                                        namespace=namespace):
                text = line.line if line.line.endswith("\n") else line.line + "\n"
                err = line.type == STDERR
                click.echo(log_text(text, err=err, raw=raw), nl=False, err=err)
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None
