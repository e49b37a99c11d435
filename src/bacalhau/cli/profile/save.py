"""`bacalhau profile save NAME`: create a profile, or change the given fields of an existing one."""

from __future__ import annotations

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.errors import CliError
from bacalhau.cli.profile.loader import endpoint_url
from bacalhau.cli.profile.store import Profile, ProfileStore, quoted
from bacalhau.models.errors import BacalhauError


@click.command("save", cls=BacalhauCommand)
@click.argument("name")
@click.option("--endpoint", default="", help="API endpoint (host:port or full URL).")
@click.option("--description", default="", help="Profile description.")
@click.option("--timeout", default="", help="Request timeout (e.g., 30s, 1m).")
@click.option("--insecure", is_flag=True, help="Skip TLS certificate verification.")
@click.option("--select", "select_after", is_flag=True, help="Set as current profile after saving.")
@pass_cli
def save(cli: CliContext, /, name: str, endpoint: str, description: str, timeout: str, insecure: bool,
         select_after: bool) -> None:
    """Create a new profile or update an existing one with connection settings.

    Only the flags given change an existing profile; a new one needs --endpoint.
    """
    store = ProfileStore.in_data_dir(cli.data_path())
    if store.exists(name):
        try:
            profile = store.load(name)
        except BacalhauError as exc:
            raise CliError(f"failed to load existing profile: {exc.message}", hint=exc.hint) from exc
    elif not endpoint:
        raise CliError("endpoint is required when creating a new profile",
                       hint=f"bacalhau profile save {name} --endpoint <host:port or http(s)://host:port>")
    else:
        profile = Profile()
    if endpoint:
        try:
            # Bacalhau stores any text and fails when a command uses it; an unusable one is refused now.
            endpoint_url(endpoint)
        except BacalhauError as exc:
            raise CliError(f"failed to save profile: invalid profile: {exc.message}") from exc
        profile.endpoint = endpoint
    if description:
        profile.description = description
    if timeout:
        profile.timeout = timeout
    if insecure:
        profile.insecure = True  # as in Bacalhau, the flag can only switch verification off
    try:
        store.save(name, profile)
    except BacalhauError as exc:
        raise CliError(f"failed to save profile: {exc.message}", hint=exc.hint) from exc
    click.echo(f"Profile {quoted(name)} saved")
    if select_after:
        try:
            store.select(name)
        except BacalhauError as exc:
            raise CliError(f"failed to set current profile: {exc.message}", hint=exc.hint) from exc
        click.echo(f"Switched to profile {quoted(name)}")
