"""`bacalhau profile list`: every profile with its endpoint; `*` marks the current one.

Columns and keys are Bacalhau's: CURRENT, NAME, ENDPOINT, AUTH in a table, and
`{"current", "name", "endpoint", "auth"}` objects with --output json|yaml.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.errors import CliError
from bacalhau.cli.flags import output_options, pop_output
from bacalhau.cli.output import CSV, TABLE, Column, emit, render_object, render_rows
from bacalhau.cli.profile.store import ProfileStore, quoted
from bacalhau.models.errors import BacalhauError


@dataclass(frozen=True)
class ProfileRow:
    """One line of the listing."""

    current: str
    name: str
    endpoint: str
    auth: str


COLUMNS: list[Column[ProfileRow]] = [
    Column("CURRENT", lambda row: row.current),
    Column("NAME", lambda row: row.name, truncate=False),
    Column("ENDPOINT", lambda row: row.endpoint, truncate=False),
    Column("AUTH", lambda row: row.auth),
]


def rows(store: ProfileStore) -> list[ProfileRow]:
    """The rows for every profile in the store, in file-name order. Raises CliError like Bacalhau."""
    try:
        current = store.current()
    except BacalhauError as exc:
        raise CliError(f"failed to get current profile: {exc.message}") from exc
    out = []
    for name in store.names():
        try:
            profile = store.load(name)
        except BacalhauError as exc:
            raise CliError(f"failed to load profile {quoted(name)}: {exc.message}", hint=exc.hint) from exc
        out.append(ProfileRow(
            current="*" if name == current else "",
            name=name,
            endpoint=profile.endpoint,
            auth="token" if profile.token else "",
        ))
    return out


@click.command("list", cls=BacalhauCommand)
@output_options()
@pass_cli
def list_profiles(cli: CliContext, /, **kwargs: Any) -> None:
    """List all configured CLI connection profiles for Bacalhau clusters."""
    opts = pop_output(kwargs)
    store = ProfileStore.in_data_dir(cli.data_path())
    try:
        names = store.names()
    except BacalhauError as exc:
        raise CliError(f"failed to list profiles: {exc.message}") from exc
    if not names:
        click.echo("No profiles found")
        return
    listed = rows(store)
    if opts.format in (TABLE, CSV):
        emit(render_rows(COLUMNS, listed, opts))
    else:
        emit(render_object([asdict(row) for row in listed], opts))
