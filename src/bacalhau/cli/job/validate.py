"""`bacalhau job validate FILE`: check a job file locally, without a server."""

from __future__ import annotations

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import string_to_string_option
from bacalhau.cli.job.run import read_input, template_values
from bacalhau.cli.jobfile import ensure_submittable, load_job


@click.command("validate", cls=BacalhauCommand)
@click.argument("file", required=False)
@click.option("--no-template", is_flag=True, help="Check the file as is, without filling {{.NAME}} placeholders.")
@string_to_string_option("-V", "--template-vars", help="Template values NAME=value (repeatable, or N1=V1,N2=V2).")
@click.option("-E", "--template-envs", default="", help="Use env vars whose names match this regex as values.")
@pass_cli
def validate(cli: CliContext, /, file: str | None, no_template: bool, template_vars: tuple[str, ...],
             template_envs: str) -> None:
    """Validate the job in FILE (YAML or JSON; `-` reads stdin) and list every problem.

    Numbers are checked against JobAdmissionControl.Limits of the CLI's config (the server's defaults).
    """
    data, source = read_input(file, None)
    values = {} if no_template else template_values(template_vars, template_envs)
    job = load_job(data, source, use_template=not no_template, template_vars=values)
    ensure_submittable(job, cli.job_limits())
    click.echo("The Job is valid")
