"""`bacalhau job describe ID|NAME`: a job's details, why it is not scheduled (if so), executions and history."""

from __future__ import annotations

from collections import Counter

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import namespace_option
from bacalhau.cli.job.not_scheduled import add_not_scheduled, not_scheduled, render_not_scheduled
from bacalhau.cli.job.tables import DESCRIBE_HISTORY_COLUMNS, EXECUTION_COLUMNS, engine_summary, result_location
from bacalhau.cli.output import (
    OBJECT_FORMATS,
    OutputOptions,
    emit,
    format_time,
    ns_to_datetime,
    render_object,
    render_rows,
    terminal_safe,
)
from bacalhau.models import constants as c
from bacalhau.models.api import GetJobResponse
from bacalhau.models.history import JobHistory


def render_description(resp: GetJobResponse, opts: OutputOptions) -> str:
    """Bacalhau's human description: key = value header, summary, executions and history tables."""
    job = resp.job
    pairs = [
        ("ID", job.id),
        ("Name", job.name),
        ("Namespace", job.namespace),
        ("Type", job.type),
        ("State", job.state.state_type.name),
    ]
    pairs.append(("Message", job.state.message))
    if job.type in (c.JOB_TYPE_BATCH, c.JOB_TYPE_SERVICE):
        pairs.append(("Count", str(job.effective_count)))
    pairs += [
        ("Engine", engine_summary(job)),
        ("Created Time", format_time(ns_to_datetime(job.create_time), wide=True)),
        ("Modified Time", format_time(ns_to_datetime(job.modify_time), wide=True)),
        ("Version", str(job.version)),
    ]
    width = max(len(k) for k, _ in pairs)
    parts = ["\n".join(f"{k.ljust(width)} = {terminal_safe(v, keep='')}" for k, v in pairs) + "\n"]
    # Right under the message it details: for a waiting job, the first thing to read.
    why_not = render_not_scheduled(not_scheduled(job), opts)
    if why_not:
        parts.append(why_not)

    executions = resp.executions.items if resp.executions else []
    history = resp.history.items if resp.history else []
    states = Counter(e.compute_state.state_type.name for e in executions)
    if states:
        swidth = max(len(s) for s in states)
        parts.append("Summary\n" + "\n".join(f"{s.ljust(swidth)} = {n}" for s, n in sorted(states.items())) + "\n")
    job_events = [h for h in history if not h.execution_id]
    if job_events:
        parts.append("Job History\n" + render_rows(DESCRIBE_HISTORY_COLUMNS, job_events, opts))
    if executions:
        parts.append("Executions\n" + render_rows(EXECUTION_COLUMNS, executions, opts))
    by_exec: dict[str, list[JobHistory]] = {}
    for item in history:
        if item.execution_id:
            by_exec.setdefault(item.execution_id, []).append(item)
    for exec_id, items in by_exec.items():
        label = terminal_safe(exec_id if opts.wide else exec_id[:10], keep="")
        parts.append(f"Execution {label} History\n" + render_rows(DESCRIBE_HISTORY_COLUMNS, items, opts))
    published = [
        (e.id if opts.wide else e.id[:10], e.published_result.type, result_location(e.published_result))
        for e in executions
        if e.published_result is not None and e.published_result.type
        and not e.published_result.is_type(c.PUBLISHER_NOOP)
    ]
    if published:
        lines = [terminal_safe(f"{exec_id}  {kind}  {where}", keep="") for exec_id, kind, where in published]
        parts.append("Published Results\n" + "\n".join(lines) + "\n")
    outputs = [e for e in executions if e.run_output is not None and (e.run_output.stdout or e.run_output.stderr)]
    for execution in outputs:
        assert execution.run_output is not None
        if execution.run_output.stdout:
            parts.append("Standard Output\n" + _ensure_nl(terminal_safe(execution.run_output.stdout)))
        if execution.run_output.stderr:
            parts.append("Standard Error\n" + _ensure_nl(terminal_safe(execution.run_output.stderr)))
    return "\n".join(parts)


def _ensure_nl(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


@click.command("describe", cls=BacalhauCommand)
@click.argument("job_id")
@click.option("--output", "output_format", type=click.Choice(OBJECT_FORMATS, case_sensitive=False), default=None,
              help="Print the raw API object as json or yaml instead of the description.")
@click.option("--pretty", is_flag=True, help="Indent JSON output.")
@click.option("--wide", is_flag=True, help="Print full IDs.")
@click.option("--no-style", is_flag=True, help="Print tables without styling.")
@click.option("-v", "--version", "job_version", type=click.IntRange(min=0), default=0,
              help="The job version to describe (default: latest).")
@namespace_option
@pass_cli
def describe(cli: CliContext, /, job_id: str, output_format: str | None, pretty: bool, wide: bool, no_style: bool,
             job_version: int, namespace: str) -> None:
    """Describe the job JOB_ID (a full ID, a short ID or the job's name)."""
    with cli.client() as client:
        resp = client.get_job(job_id, include=("executions", "history"), namespace=namespace, job_version=job_version)
    if output_format:
        document = add_not_scheduled(resp.to_wire(), resp.job)
        emit(render_object(document, OutputOptions(format=output_format.lower(), pretty=pretty)))
        return
    emit(render_description(resp, OutputOptions(wide=wide, no_style=no_style)))
