"""Flag groups shared by verbs, with Bacalhau's names and defaults (CONTRACT.md section 4).

Each group is a decorator adding its options, plus a function that pops its values back out of the
verb's keyword arguments into a typed record, so verbs do not repeat a dozen parameters each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from bacalhau.cli.output import LIST_FORMATS, OBJECT_FORMATS, TABLE, YAML, OutputOptions
from bacalhau.cli.pflag import StringSlice, StringToString, flatten

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_WAIT_TIMEOUT_S = 600


def string_slice_option(*decls: str, choices: tuple[str, ...] = (), **attrs: Any) -> Callable[[F], F]:
    """A repeatable option that also takes comma lists, like a pflag StringSlice (`--show a,b --show c`)."""
    return click.option(*decls, multiple=True, type=StringSlice(choices), callback=flatten, **attrs)


def string_to_string_option(*decls: str, **attrs: Any) -> Callable[[F], F]:
    """A repeatable `K=V` option that also takes `K1=V1,K2=V2`, like a pflag StringToString (-e, -V)."""
    return click.option(*decls, multiple=True, type=StringToString(), callback=flatten, **attrs)


def _apply(func: F, options: list[Callable[[F], F]]) -> F:
    for option in reversed(options):
        func = option(func)
    return func


def output_options(*, tabular: bool = True, default: str | None = None) -> Callable[[F], F]:
    """--output, --pretty and, for tables, --wide, --no-style, --hide-header."""
    choices = LIST_FORMATS if tabular else OBJECT_FORMATS
    chosen = default or (TABLE if tabular else YAML)
    options: list[Callable[[F], F]] = [
        click.option(
            "--output",
            "output_format",
            type=click.Choice(choices, case_sensitive=False),
            default=chosen,
            show_default=True,
            help="The output format.",
        ),
        click.option("--pretty", is_flag=True, help="Indent JSON output."),
    ]
    if tabular:
        options += [
            click.option("--wide", is_flag=True, help="Print full IDs and untruncated cells."),
            click.option("--no-style", is_flag=True, help="Print tables without styling."),
            click.option("--hide-header", is_flag=True, help="Do not print the table header."),
        ]
    return lambda func: _apply(func, options)


def pop_output(kwargs: dict[str, Any]) -> OutputOptions:
    """The OutputOptions collected by output_options."""
    return OutputOptions(
        format=str(kwargs.pop("output_format", TABLE)).lower(),
        pretty=bool(kwargs.pop("pretty", False)),
        wide=bool(kwargs.pop("wide", False)),
        no_style=bool(kwargs.pop("no_style", False)),
        hide_header=bool(kwargs.pop("hide_header", False)),
    )


def list_options(*, limit: int, order_by: tuple[str, ...] = ()) -> Callable[[F], F]:
    """--limit, --next-token, --order-by, --order-reversed."""
    order_type: click.ParamType[Any, Any] = click.Choice(order_by, case_sensitive=False) if order_by else click.STRING
    options: list[Callable[[F], F]] = [
        click.option("--limit", type=click.IntRange(min=0), default=limit, show_default=True,
                     help="Limit the number of results returned."),
        click.option("--next-token", default="", help="Continue a previous listing from this token."),
        click.option("--order-by", type=order_type, default=None, help="Order results by this field."),
        click.option("--order-reversed", is_flag=True, help="Reverse the order of results."),
    ]
    return lambda func: _apply(func, options)


def namespace_option(func: F) -> F:
    """--namespace for verbs acting on one job."""
    return click.option("--namespace", default="", help="Namespace of the job (default: default).")(func)


@dataclass(frozen=True)
class RunFlags:
    """How `job run`, `docker run`, `wasm run` and `job rerun` wait for and report a job."""

    wait: bool = True
    wait_timeout_s: int = DEFAULT_WAIT_TIMEOUT_S
    id_only: bool = False
    follow: bool = False
    node_details: bool = False
    dry_run: bool = False


def run_options(*, dry_run: bool = True) -> Callable[[F], F]:
    """--wait, --wait-timeout-secs, --id-only, -f/--follow, --node-details, --group-events, --dry-run."""
    options: list[Callable[[F], F]] = [
        click.option("--wait/--no-wait", default=True, show_default=True,
                     help="Wait for the job to finish (use --wait=false to return at once)."),
        click.option("--wait-timeout-secs", type=click.IntRange(min=1), default=DEFAULT_WAIT_TIMEOUT_S,
                     show_default=True, help="How long to wait for the job to finish."),
        click.option("--id-only", is_flag=True, help="Print only the job ID."),
        click.option("-f", "--follow", is_flag=True, help="Stream the job's logs while it runs."),
        click.option("--node-details", is_flag=True, help="Print the nodes the job ran on."),
        click.option("--group-events", is_flag=True, hidden=True, help="Accepted for compatibility."),
    ]
    if dry_run:
        options.append(click.option("--dry-run", is_flag=True, help="Print the job spec instead of submitting it."))
    return lambda func: _apply(func, options)


def pop_run(kwargs: dict[str, Any]) -> RunFlags:
    """The RunFlags collected by run_options."""
    kwargs.pop("group_events", None)
    return RunFlags(
        wait=bool(kwargs.pop("wait", True)),
        wait_timeout_s=int(kwargs.pop("wait_timeout_secs", DEFAULT_WAIT_TIMEOUT_S)),
        id_only=bool(kwargs.pop("id_only", False)),
        follow=bool(kwargs.pop("follow", False)),
        node_details=bool(kwargs.pop("node_details", False)),
        dry_run=bool(kwargs.pop("dry_run", False)),
    )


def job_options(func: F) -> F:
    """Job-level flags of `docker run` and `wasm run`."""
    options: list[Callable[[F], F]] = [
        click.option("--name", default="", help="Name of the job (default: its ID)."),
        click.option("--namespace", default="", help="Namespace of the job (default: default)."),
        click.option("--priority", type=int, default=0, help="Priority of the job."),
        string_slice_option("-l", "--labels", help="Labels k=v or k (repeatable, or a comma list)."),
        click.option("--count", "--concurrency", type=click.IntRange(min=0), default=1, show_default=True,
                     help="How many executions to run."),
        click.option("--target", type=click.Choice(["any", "all"], case_sensitive=False), default="any",
                     show_default=True, help="Run on any one matching node (batch) or all of them (ops)."),
        click.option("--constraints", "-s", "--selector", "constraints", default="",
                     help="Node label selector, e.g. 'region=eu,gpu!=none'."),
    ]
    return _apply(func, options)


def task_options(func: F) -> F:
    """Task-level flags of `docker run` and `wasm run`."""
    options: list[Callable[[F], F]] = [
        click.option("--task-name", default="main", show_default=True, help="Name of the job's task."),
        string_to_string_option("-e", "--env", help="Environment variables K=V for the task (repeatable, or K1=V1,K2=V2)."),
        click.option("-i", "--input", "inputs", multiple=True,
                     help="Input: 'URI[:TARGET]' or 'src=URI,dst=TARGET[,opt=k=v]' (repeatable)."),
        click.option("-o", "--output", "outputs", multiple=True,
                     help="Result path 'name:/path' to publish (repeatable)."),
        click.option("-p", "--publisher", default="",
                     help="Where to publish results: local, ipfs, noop, s3managed or s3://bucket/key[,opt=k=v]."),
        click.option("--cpu", default="", help="CPU to allocate, e.g. 500m or 2."),
        click.option("--memory", default="", help="Memory to allocate, e.g. 512Mb or 1Gb."),
        click.option("--disk", default="", help="Disk to allocate, e.g. 1Gb."),
        click.option("--gpu", default="", help="Number of GPUs to allocate."),
        click.option("--network", default="", help="Network: None, HTTP, Full, Host or Bridge."),
        click.option("--domain", multiple=True, help="Domain the task may reach with --network=HTTP."),
        click.option("--timeout", type=click.IntRange(min=0), default=0, help="Total timeout in seconds."),
        click.option("--queue-timeout", type=click.IntRange(min=0), default=0,
                     help="Seconds to wait for a matching node before failing."),
    ]
    return _apply(func, options)
