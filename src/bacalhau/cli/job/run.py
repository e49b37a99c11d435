"""`bacalhau job run [FILE|-]`: submit a job described in a YAML or JSON file (or stdin).

`--dry-run` submits nothing: as in Bacalhau, it asks the server for the diff against the stored job of
the same Name (`PUT /jobs/diff`) and prints it, or "No diff detected."; when the server cannot answer
(no job of that name, no Name, no server) it says why and prints the spec it would submit instead.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import pop_run, run_options, string_to_string_option
from bacalhau.cli.jobfile import MAX_FILE_BYTES, ensure_submittable, load_job, submittable_yaml
from bacalhau.cli.output import echo, terminal_safe
from bacalhau.cli.selectors import parse_pairs
from bacalhau.cli.template import env_values
from bacalhau.models.errors import BacalhauError
from bacalhau.models.job import Job
from bacalhau.models.normalize import normalize_job


def read_input(file: str | None, file_option: str | None) -> tuple[bytes, str]:
    """The job file's bytes and a name for messages: FILE, -f FILE, `-` or piped stdin."""
    path = file_option or file
    if path is None and sys.stdin.isatty():
        raise click.UsageError("give a job file, or pipe one on stdin: bacalhau job run job.yaml")
    if path is None or path == "-":
        return sys.stdin.buffer.read(MAX_FILE_BYTES + 1), "stdin"
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_FILE_BYTES + 1), path
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror or exc}", param_hint="FILE") from exc


def template_values(template_vars: tuple[str, ...], template_envs: str) -> dict[str, str]:
    """Values for `{{.NAME}}` placeholders: matching env vars, overridden by -V pairs."""
    try:
        values = env_values(template_envs, os.environ)
    except re.error as exc:
        raise click.BadParameter(f"{template_envs!r} is not a valid regex: {exc}", param_hint="'-E'") from exc
    values.update(parse_pairs(template_vars, flag="-V/--template-vars"))
    return values


@click.command("run", cls=BacalhauCommand)
@click.argument("file", required=False)
# -f is --follow, as in Bacalhau's Go CLI; the file can also be named with --file.
@click.option("--file", "file_option", help="The job file (same as the FILE argument).")
@run_options()
@click.option("--force", is_flag=True, help="Submit even if the job spec did not change.")
@click.option("--hide-warnings", is_flag=True, help="Do not print the server's warnings.")
@click.option("--no-template", is_flag=True, help="Send the file as is, without filling {{.NAME}} placeholders.")
@string_to_string_option("-V", "--template-vars", help="Template values NAME=value (repeatable, or N1=V1,N2=V2).")
@click.option("-E", "--template-envs", default="", help="Use env vars whose names match this regex as values.")
@pass_cli
def run(cli: CliContext, /, file: str | None, file_option: str | None, force: bool, hide_warnings: bool,
        no_template: bool, template_vars: tuple[str, ...], template_envs: str, **kwargs: Any) -> None:
    """Run a job from FILE (YAML or JSON); `-` or no FILE reads stdin.

    The file may use {{.NAME}} placeholders filled from -V NAME=value or from env vars matched by -E.
    """
    flags = pop_run(kwargs)
    data, source = read_input(file, file_option)
    values = {} if no_template else template_values(template_vars, template_envs)
    job = load_job(data, source, use_template=not no_template, template_vars=values)
    ensure_submittable(job, cli.job_limits())
    if flags.dry_run:
        dry_run(cli, job)
        return
    from bacalhau.cli.submission import submit
    from bacalhau.client import routes

    with cli.client() as client:
        submit(client, routes.put_job(job, force=force), flags, namespace=job.namespace, hide_warnings=hide_warnings)


def dry_run(cli: CliContext, job: Job) -> None:
    """Print the server's diff for `job` (stdout) or "No diff detected." (stderr); never submit."""
    for warning in normalize_job(job).warnings:
        echo(f"Warning: {warning}", err=True)
    with cli.client() as client:
        try:
            diff = client.diff_job(job).diff
        except BacalhauError as exc:
            # Bacalhau's fallback: say why, then show the spec as it would be submitted.
            echo(f"Error: failed to fetch Job spec: {exc.message}", err=True)
            click.echo("Warning: falling back to offline mode...", err=True)
            click.echo(submittable_yaml(job), nl=False)
            return
    if not diff:
        click.echo("Warning: No diff detected.", err=True)
        return
    for line in diff.splitlines():
        colour = "green" if line.startswith("+") else "red" if line.startswith("-") else None
        # click.echo drops the colour when stdout is not a terminal.
        line = terminal_safe(line)
        click.echo(click.style(line, fg=colour) if colour else line)
