"""`bacalhau audit list`: the API's audit log, newest first (needs read:audit with API.Auth.Users)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import output_options, pop_output
from bacalhau.cli.output import CSV, TABLE, Column, emit, format_time, parse_rfc3339, render_object, render_rows


@dataclass(frozen=True)
class _Entry:
    wire: dict[str, Any]


COLUMNS: list[Column[_Entry]] = [
    Column("TIME", lambda e: format_time(parse_rfc3339(str(e.wire.get("Time", ""))))),
    Column("USER", lambda e: str(e.wire.get("Principal", ""))),
    Column("FROM", lambda e: str(e.wire.get("Client", ""))),
    Column("REQUEST", lambda e: f"{e.wire.get('Method', '')} {e.wire.get('Path', '')}"),
    Column("TARGET", lambda e: str(e.wire.get("Target", ""))),
    Column("OUTCOME", lambda e: f"{e.wire.get('Outcome', '')} ({e.wire.get('Status', '')})"),
    Column("REASON", lambda e: str(e.wire.get("Reason", ""))),
]


@click.command("list", cls=BacalhauCommand)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Entries to show.")
@click.option("--next-token", default="", help="Continue a previous listing from this token.")
@click.option("--since", default="", help="Only entries newer than this duration ago (e.g. 1h, 30m).")
@click.option("--user", "principal", default="", help="Only this API user's entries (anonymous without users).")
@click.option("--refused", is_flag=True, help="Only the requests the API refused (401/403).")
@output_options()
@pass_cli
def list_entries(cli: CliContext, /, limit: int, next_token: str, since: str, principal: str, refused: bool,
                 **kwargs: Any) -> None:
    """List who did what through the API, newest first."""
    from bacalhau.models.duration import parse_duration_s

    opts = pop_output(kwargs)
    since_s = int(time.time() - parse_duration_s(since)) if since else 0
    with cli.client() as client:
        page = client.audit_log(limit=limit, next_token=next_token, since_s=since_s, principal=principal,
                                refused_only=refused)
    items = [_Entry(item) for item in page.get("Items") or []]
    token = str(page.get("NextToken") or "")
    if opts.format not in (TABLE, CSV):
        emit(render_object([item.wire for item in items], opts))
        return
    emit(render_rows(COLUMNS, items, opts))
    if token and opts.format == TABLE:
        click.echo(f"\nTo fetch more records use:\n\tbacalhau audit list --next-token {token}")
