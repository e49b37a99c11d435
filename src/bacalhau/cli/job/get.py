"""`bacalhau job get ID`: download a job's published results (local, S3 or IPFS) into a folder."""

from __future__ import annotations

import os
import sys
import time

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import namespace_option
from bacalhau.cli.output import echo, short_id
from bacalhau.client.download import IpfsAccess

DEFAULT_DOWNLOAD_TIMEOUT_S = 300
# Byte progress is worth showing only for downloads that take a while.
_PROGRESS_MIN_BYTES = 8 * 1024 * 1024
_PROGRESS_EVERY_S = 0.5


def default_output_dir(job_id: str, namespace: str) -> str:
    """`./job-<short id>`, or `./job-<namespace>-<short id>` outside the default namespace."""
    name = f"job-{short_id(job_id)}" if not namespace or namespace == "default" else f"job-{namespace}-{short_id(job_id)}"
    return os.path.join(os.getcwd(), name)


class _ByteProgress:
    """Prints `12.0 MB / 200.0 MB (6%)` to stderr at most twice a second, for large downloads only."""

    def __init__(self) -> None:
        self._last_s = 0.0
        self._shown = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if (total or done) < _PROGRESS_MIN_BYTES or (now - self._last_s < _PROGRESS_EVERY_S and not finished):
            return
        self._last_s = now
        text = f"{done / 1e6:.1f} MB" + (f" / {total / 1e6:.1f} MB ({100 * done // total}%)" if total else "")
        end = "\n" if finished else ""
        if sys.stderr.isatty():
            click.echo(f"\r  {text}", err=True, nl=False)
            if end:
                click.echo("", err=True)
        elif finished or not self._shown:
            click.echo(f"  {text}", err=True)
        self._shown = True


def _ipfs_access(cli: CliContext, ipfs_connect: str) -> IpfsAccess:
    """Kubo RPC endpoint from the flag, ResultDownloaders.Types.IPFS.Endpoint or IPFS.Connect; else embedded."""
    config = cli.config()
    endpoint = ipfs_connect or config.result_downloaders.types.ipfs.endpoint or config.ipfs.connect
    return IpfsAccess(endpoint=endpoint, peers=list(config.ipfs.swarm_addresses))


@click.command("get", cls=BacalhauCommand)
@click.argument("job_id")
@click.option("--output-dir", default="", help="Where to put the results (default: ./job-<id>).")
@click.option("--raw", is_flag=True, help="Keep each execution's results separately under raw/.")
@click.option("--overwrite", is_flag=True, help="Replace files that already exist in the output folder.")
@click.option("--download-timeout-secs", type=click.IntRange(min=1), default=DEFAULT_DOWNLOAD_TIMEOUT_S,
              show_default=True, help="How long one download may take.")
@click.option("--ipfs-connect", default="", metavar="ADDR",
              help="Kubo RPC address for IPFS results (default: ResultDownloaders.Types.IPFS.Endpoint, "
                   "IPFS.Connect, else an embedded IPFS node).")
@namespace_option
@pass_cli
def get(cli: CliContext, /, job_id: str, output_dir: str, raw: bool, overwrite: bool, download_timeout_secs: int,
        ipfs_connect: str, namespace: str) -> None:
    """Download the results of the job JOB_ID."""
    with cli.client() as client:
        # Resolve short IDs and names first, so the default folder carries the real ID.
        job = client.get_job(job_id, namespace=namespace).job
        folder = output_dir or default_output_dir(job.id or job_id, namespace)
        client.download_results(
            job.id or job_id, folder, raw=raw, overwrite=overwrite, namespace=namespace,
            timeout_s=float(download_timeout_secs), progress=_ByteProgress(),
            status=lambda message: echo(message, err=True), ipfs=_ipfs_access(cli, ipfs_connect),
        )
    echo(f"Results for job '{job.id or job_id}' have been written to...\n{folder}")
