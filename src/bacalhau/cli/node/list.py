"""`bacalhau node list`: the cluster's nodes, with optional column groups (--show)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import output_options, pop_output, string_slice_option
from bacalhau.cli.output import Column, emit_list, format_time, parse_rfc3339
from bacalhau.models.node import NodeState


def _capacity(field: str, fmt: Callable[[Any], str]) -> Callable[[NodeState], str]:
    def value(node: NodeState) -> str:
        info = node.info.compute_node_info
        if info is None:
            return ""
        avail, total = getattr(info.available_capacity, field), getattr(info.max_capacity, field)
        return f"{fmt(avail)} / {fmt(total)}"

    return value


def _bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(value)


def _features(attr: str) -> Callable[[NodeState], str]:
    def value(node: NodeState) -> str:
        info = node.info.compute_node_info
        return " ".join(getattr(info, attr)) if info is not None else ""

    return value


def cordon(node: NodeState, *, now: datetime | None = None) -> str:
    """Empty while the node takes work; else `cordoned` (no deadline), `draining until <time>`, or
    `drained at <time>` once the deadline has passed (its work was then moved off it)."""
    if node.cordon is None:
        return ""
    deadline = parse_rfc3339(node.cordon.deadline or "")
    if deadline is None:
        return "cordoned"
    if deadline > (now or datetime.now().astimezone()):
        return f"draining until {format_time(deadline)}"
    return f"drained at {format_time(deadline)}"


BASE_COLUMNS: list[Column[NodeState]] = [
    Column("ID", lambda n: n.info.node_id),
    Column("Type", lambda n: n.info.node_type),
    Column("Approval", lambda n: n.membership.value),
    Column("Status", lambda n: n.connection_state.status.value),
    # Ours (`node drain`): a column of its own, so that STATUS keeps Bacalhau's values for scripts.
    Column("Cordon", cordon),
]
COLUMN_GROUPS: dict[str, list[Column[NodeState]]] = {
    "labels": [Column("Labels", lambda n: " ".join(f"{k}={v}" for k, v in sorted(n.info.labels.items())),
                      truncate=False)],
    "version": [Column("Version", lambda n: n.info.bacalhau_version.git_version)],
    "features": [
        Column("Engines", _features("execution_engines")),
        Column("Inputs From", _features("storage_sources")),
        Column("Outputs", _features("publishers")),
    ],
    "capacity": [
        Column("CPU", _capacity("cpu", lambda v: f"{v:.1f}")),
        Column("Memory", _capacity("memory", _bytes)),
        Column("Disk", _capacity("disk", _bytes)),
        Column("GPU", _capacity("gpu", str)),
    ],
}


@click.command("list", cls=BacalhauCommand)
@string_slice_option("--show", choices=tuple(sorted(COLUMN_GROUPS)), default=("labels", "capacity"),
                     show_default=True,
                     help="Column groups to show (a comma list, or repeated); as in Bacalhau, labels and capacity by default.")
@click.option("--labels", default="", help="Filter nodes by a label selector.")
@click.option("--filter-approval", type=click.Choice(["PENDING", "APPROVED", "REJECTED"], case_sensitive=False),
              default=None, help="Only nodes with this approval state.")
@click.option("--filter-status", type=click.Choice(["CONNECTED", "DISCONNECTED"], case_sensitive=False),
              default=None, help="Only nodes with this connection status.")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="Limit the number of nodes listed.")
@click.option("--next-token", default="", help="Continue a previous listing from this token.")
@click.option("--order-by", default="", help="id, type, available_cpu, available_memory, available_disk, "
              "available_gpu, approval or status.")
@click.option("--order-reversed", is_flag=True, help="Reverse the order.")
@output_options()
@pass_cli
def list_nodes(cli: CliContext, /, show: tuple[str, ...], labels: str, filter_approval: str | None,
               filter_status: str | None, limit: int, next_token: str, order_by: str, order_reversed: bool,
               **kwargs: Any) -> None:
    """List the nodes of the cluster."""
    opts = pop_output(kwargs)
    with cli.client() as client:
        resp = client.list_nodes(
            limit=limit,
            next_token=next_token,
            order_by=order_by,
            reverse=order_reversed,
            labels=[labels] if labels else [],
            filter_approval=(filter_approval or "").upper(),
            filter_status=(filter_status or "").upper(),
        )
    columns = list(BASE_COLUMNS)
    for group in show:
        columns += COLUMN_GROUPS[group.lower()]
    emit_list(columns, resp.nodes, opts)
