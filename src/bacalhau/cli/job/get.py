"""`bacalhau job get ID`: download a job's published results into a folder."""

from __future__ import annotations

import os

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import namespace_option
from bacalhau.cli.output import short_id

DEFAULT_DOWNLOAD_TIMEOUT_S = 300


def default_output_dir(job_id: str, namespace: str) -> str:
    """`./job-<short id>`, or `./job-<namespace>-<short id>` outside the default namespace."""
    name = f"job-{short_id(job_id)}" if not namespace or namespace == "default" else f"job-{namespace}-{short_id(job_id)}"
    return os.path.join(os.getcwd(), name)


@click.command("get", cls=BacalhauCommand)
@click.argument("job_id")
@click.option("--output-dir", default="", help="Where to put the results (default: ./job-<id>).")
@click.option("--raw", is_flag=True, help="Keep each execution's results separately under raw/.")
@click.option("--overwrite", is_flag=True, help="Replace files that already exist in the output folder.")
@click.option("--download-timeout-secs", type=click.IntRange(min=1), default=DEFAULT_DOWNLOAD_TIMEOUT_S,
              show_default=True, help="How long one download may take.")
@namespace_option
@pass_cli
def get(cli: CliContext, /, job_id: str, output_dir: str, raw: bool, overwrite: bool, download_timeout_secs: int,
        namespace: str) -> None:
    """Download the results of the job JOB_ID."""
    with cli.client() as client:
        # Resolve short IDs and names first, so the default folder carries the real ID.
        job = client.get_job(job_id, namespace=namespace).job
        folder = output_dir or default_output_dir(job.id or job_id, namespace)
        client.download_results(job.id or job_id, folder, raw=raw, overwrite=overwrite, namespace=namespace,
                                timeout_s=float(download_timeout_secs))
    click.echo(f"Results for job '{job.id or job_id}' have been written to...\n{folder}")
