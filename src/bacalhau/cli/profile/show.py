"""`bacalhau profile show [NAME]`: a profile's settings, the token redacted unless --show-token.

Without a name: the profile given by --profile, else BACALHAU_PROFILE, else the current one. Like
Bacalhau's, the output is fixed `Key: value` lines (there is no --output for this verb)::

    Name:        prod (current)
    Endpoint:    https://prod.example.com:443
    Auth:        token (tok_****3xyz)
    TLS:         secure
    Timeout:     30s
    Description: Production cluster
"""

from __future__ import annotations

import os

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.errors import CliError
from bacalhau.cli.profile.loader import ENV_PROFILE
from bacalhau.cli.profile.store import ProfileStore
from bacalhau.models.errors import BacalhauError

MIN_TOKEN_CHARS_SHOWN_IN_PART = 9  # shorter tokens are fully hidden, as in Bacalhau


def redact(token: str) -> str:
    """`abcd****wxyz`: the first and last four characters of a long token, else `****`."""
    if len(token) < MIN_TOKEN_CHARS_SHOWN_IN_PART:
        return "****"
    return f"{token[:4]}****{token[-4:]}"


@click.command("show", cls=BacalhauCommand)
@click.argument("name", required=False, default="")
@click.option("--show-token", is_flag=True, help="Show full token value (default: redacted).")
@pass_cli
def show(cli: CliContext, /, name: str, show_token: bool) -> None:
    """Show details for a profile. If no name is provided, shows the current profile."""
    store = ProfileStore.in_data_dir(cli.data_path())
    if not name:
        name = cli.profile or os.environ.get(ENV_PROFILE, "")
    if not name:
        try:
            name = store.current()
        except BacalhauError as exc:
            raise CliError(f"failed to get current profile: {exc.message}") from exc
        if not name:
            raise CliError("no current profile set", hint="select one with 'bacalhau profile select <name>'")
    try:
        profile = store.load(name)
    except BacalhauError as exc:
        raise CliError(f"failed to load profile: {exc.message}", hint=exc.hint) from exc

    shown_name = f"{name} (current)" if name == store.current_or_empty() else name
    auth = "none"
    if profile.token:
        auth = f"token ({profile.token if show_token else redact(profile.token)})"
    lines = [
        f"Name:        {shown_name}",
        f"Endpoint:    {profile.endpoint}",
        f"Auth:        {auth}",
        f"TLS:         {'insecure' if profile.insecure else 'secure'}",
        f"Timeout:     {profile.effective_timeout}",
    ]
    if profile.description:
        lines.append(f"Description: {profile.description}")
    click.echo("\n".join(lines))
