"""`bacalhau profile delete NAME`: remove a profile; asks first when it is the current one (unless -f)."""

from __future__ import annotations

import sys

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.errors import CliError
from bacalhau.cli.profile.store import ProfileStore, quoted
from bacalhau.models.errors import BacalhauError


@click.command("delete", cls=BacalhauCommand)
@click.argument("name")
@click.option("-f", "--force", is_flag=True, help="Skip confirmation for current profile.")
@pass_cli
def delete(cli: CliContext, /, name: str, force: bool) -> None:
    """Delete a profile from the CLI configuration."""
    store = ProfileStore.in_data_dir(cli.data_path())
    if not store.exists(name):
        raise CliError(f"profile {quoted(name)} not found", hint="list the profiles with 'bacalhau profile list'")
    if store.current_or_empty() == name and not force:
        click.echo(f"Profile {quoted(name)} is the current profile. Delete anyway? [y/N]: ", nl=False)
        answer = sys.stdin.readline()
        if not answer.endswith("\n"):
            # Bacalhau reads up to a newline and fails at end of input (a closed or empty stdin).
            raise CliError("failed to read response: EOF", hint="use --force to delete without asking")
        if answer.strip().lower() not in ("y", "yes"):
            click.echo("Deletion cancelled")
            return
    try:
        store.delete(name)
    except BacalhauError as exc:
        raise CliError(f"failed to delete profile: {exc.message}", hint=exc.hint) from exc
    click.echo(f"Profile {quoted(name)} deleted")
