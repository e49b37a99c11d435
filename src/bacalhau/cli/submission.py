"""Submitting a job and reporting on it, shared by `job run`, `docker run`, `wasm run` and `job rerun`.

    put job -> "Job successfully submitted. Job ID: j-..."
            -> --wait=false: just the ID | --follow: stream logs | default: events until settled
            -> task output (wasm/docker runs without a publisher) -> hints -> exit 1 if the job failed

Everything after the submission reads the server's JSON through cli/wire_view.py, so that a run's
report imports neither pydantic nor httpx; the functions here take anything with the models' shape.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from bacalhau.cli.errors import CliError
from bacalhau.cli.flags import RunFlags
from bacalhau.cli.output import echo, log_text, short_id
from bacalhau.cli.waiting import JobWatcher, watch
from bacalhau.cli.wire_view import ExecutionView, items_of
from bacalhau.client import routes
from bacalhau.models import constants as c
from bacalhau.models.state_types import ExecutionStateType, JobStateType

if TYPE_CHECKING:
    from bacalhau.cli.shapes import ExecutionLike, JobLike
    from bacalhau.client import Client

CHECKING = "Checking job status... (Enter Ctrl+C to exit at any time, your job will continue running):"
WAITING_LOGS = "Waiting for logs... (Enter Ctrl+C to exit at any time, your job will continue running):"
FOLLOW_START_TIMEOUT_S = 10.0


def submit(client: Client, put: routes.Call, run: RunFlags, *, namespace: str = "", hide_warnings: bool = False,
           show_output: bool = False) -> None:
    """Send `put` (routes.put_job or put_job_spec) and report on the job according to the run flags."""
    found = client.raw(put)
    answer = found if isinstance(found, dict) else {}
    if not hide_warnings and not run.id_only:
        for warning in answer.get("Warnings") or []:
            echo(f"Warning: {warning}", err=True)
    report(client, str(answer.get("JobID") or ""), run, show_output=show_output, namespace=namespace)


def report(client: Client, job_id: str, run: RunFlags, *, job_version: int = 0, namespace: str = "",
           show_output: bool = False, headline: str = "") -> None:
    """Everything after the job was accepted: wait, stream, print hints, fail when the job failed."""
    if run.id_only or not run.wait:
        echo(job_id)
        if not run.wait:
            return
    else:
        echo(headline or f"Job successfully submitted. Job ID: {job_id}")
    watcher = JobWatcher(client, job_id, job_version=job_version, namespace=namespace)
    try:
        if run.follow and not run.id_only:
            final = _follow(client, watcher, run)
        else:
            if not run.id_only:
                click.echo(CHECKING + "\n")
            final = watch(watcher, run.wait_timeout_s, quiet=run.id_only)
    except KeyboardInterrupt:
        click.echo(f"\nStopped waiting; the job continues. Check it with: bacalhau job describe {job_id}", err=True)
        raise click.exceptions.Exit(130) from None
    if final is None:
        if not run.id_only:
            click.echo(f"\nStopped waiting after {run.wait_timeout_s}s; the job continues to run.")
            print_hints(job_id, None)
        return
    filters = routes.ExecutionsFilter(namespace=namespace, job_version=job_version)
    executions = [ExecutionView(item) for item in items_of(client.raw(routes.job_executions(job_id, filters)))]
    if not run.id_only:
        if run.node_details:
            _print_nodes(executions)
        if show_output and not run.follow and not _publishes(final):
            print_task_output(executions)
        print_hints(job_id, final)
    if final.state.state_type is JobStateType.Failed:
        raise failure(final, executions)


def _follow(client: Client, watcher: JobWatcher, run: RunFlags) -> JobLike | None:
    click.echo(WAITING_LOGS)
    deadline = time.monotonic() + FOLLOW_START_TIMEOUT_S
    # Logs exist only once an execution starts; give a queued job a moment, as Bacalhau does.
    while watcher.job().state.state_type in (JobStateType.Pending, JobStateType.Undefined):
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    for line in client.job_logs(watcher.job_id, follow=True, namespace=watcher.namespace):
        text = line.line if line.line.endswith("\n") else line.line + "\n"
        err = line.type == 2
        click.echo(log_text(text, err=err, raw=False), nl=False, err=err)
    return watch(watcher, run.wait_timeout_s, quiet=True)


def _publishes(job: JobLike) -> bool:
    return bool(job.tasks) and job.tasks[0].publisher.type.lower() not in ("", c.PUBLISHER_NOOP)


def print_task_output(executions: Sequence[ExecutionLike]) -> None:
    """The captured stdout (and stderr, on stderr) of each completed execution, like a local run."""
    done = [e for e in executions if e.run_output is not None and e.compute_state.state_type is ExecutionStateType.Completed]
    for execution in sorted(done, key=lambda e: (e.partition_index, e.create_time)):
        output = execution.run_output
        assert output is not None
        click.echo("")
        if output.stdout:
            click.echo(log_text(output.stdout, err=False, raw=False), nl=not output.stdout.endswith("\n"))
        if output.stderr:
            click.echo(log_text(output.stderr, err=True, raw=False), nl=not output.stderr.endswith("\n"), err=True)
        if output.stdout_truncated or output.stderr_truncated:
            click.echo(f"(output truncated; see: bacalhau job logs {execution.job_id})", err=True)


def print_hints(job_id: str, job: JobLike | None) -> None:
    """Bacalhau's closing hints; the download hint only when the job publishes its results."""
    click.echo(f"\nTo get more details about the run, execute:\n\tbacalhau job describe {job_id}")
    click.echo(f"\nTo get more details about the run executions, execute:\n\tbacalhau job executions {job_id}")
    if job is not None and _publishes(job) and job.state.state_type is not JobStateType.Failed:
        click.echo(f"\nTo download the results, execute:\n\tbacalhau job get {job_id}")


def failure(job: JobLike, executions: Sequence[ExecutionLike]) -> CliError:
    """The error for a failed job: its state message and each failed execution's reason."""
    lines = [f"job {job.id} failed" + (f": {job.state.message}" if job.state.message else "")]
    for execution in executions:
        if execution.compute_state.state_type is not ExecutionStateType.Failed:
            continue
        reason = execution.compute_state.message or (execution.run_output.error_msg if execution.run_output else "")
        node = f" on {execution.node_id}" if execution.node_id else ""
        lines.append(f"  execution {short_id(execution.id)}{node}: {reason or 'failed'}")
    describe = f"run 'bacalhau job describe {job.id}' for the full history"
    # The scheduler's hint (e.g. why the failure was not retried) first: it says what to do about it.
    own = job.state.details.get("Hint", "")
    return CliError("\n".join(lines), hint=f"{own}; {describe}" if own else describe)


def _print_nodes(executions: Sequence[ExecutionLike]) -> None:
    click.echo("\nNodes:")
    for execution in executions:
        state = execution.compute_state.state_type.name
        echo(f"\t{execution.node_id}  {short_id(execution.id)}  {state}")
