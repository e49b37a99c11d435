"""`bacalhau docker run IMAGE [COMMAND] [ARGS...]`: run a container image as a job (CONTRACT.md section 4.2)."""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import job_options, pop_run, run_options, string_slice_option, task_options
from bacalhau.cli.jobspec import build_job, run_job
from bacalhau.models import constants as c


@click.command("run", cls=BacalhauCommand)
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@string_slice_option("--entrypoint", help="Override the image's entrypoint: words, comma separated or repeated.")
@click.option("-w", "--workdir", default="", help="Working directory inside the container (absolute).")
@job_options
@task_options
@run_options()
@pass_cli
def run(cli: CliContext, /, image: str, command: tuple[str, ...], entrypoint: tuple[str, ...], workdir: str,
        **kwargs: Any) -> None:
    """Run IMAGE with COMMAND (put `--` before a command whose words start with a dash)."""
    flags = pop_run(kwargs)
    params: dict[str, Any] = {"Image": image, "Parameters": list(command)}
    if entrypoint:
        params["Entrypoint"] = list(entrypoint)
    if workdir:
        params["WorkingDirectory"] = workdir
    run_job(cli, build_job({"Type": c.ENGINE_DOCKER, "Params": params}, kwargs), flags)
