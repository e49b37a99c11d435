"""`bacalhau profile select NAME`: make a profile the one client commands use by default."""

from __future__ import annotations

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.errors import CliError
from bacalhau.cli.profile.store import ProfileStore, quoted
from bacalhau.models.errors import BacalhauError


@click.command("select", cls=BacalhauCommand)
@click.argument("name")
@pass_cli
def select(cli: CliContext, /, name: str) -> None:
    """Set a profile as the current active profile for CLI operations."""
    try:
        ProfileStore.in_data_dir(cli.data_path()).select(name)
    except BacalhauError as exc:
        raise CliError(f"failed to select profile: {exc.message}", hint=exc.hint) from exc
    click.echo(f"Switched to profile {quoted(name)}")
