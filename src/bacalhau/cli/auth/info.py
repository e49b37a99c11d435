"""`bacalhau auth info`: which credentials the CLI would send, and how the node lets people log in."""

from __future__ import annotations

import os
from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.output import OutputOptions, emit, render_object


@click.command("info", cls=BacalhauCommand)
@click.option("--output", "output_format", type=click.Choice(["text", "json", "yaml"], case_sensitive=False),
              default="text", show_default=True, help="The output format.")
@click.option("--pretty", is_flag=True, help="Indent JSON output.")
@pass_cli
def info(cli: CliContext, /, output_format: str, pretty: bool) -> None:
    """Show the credentials the CLI would use, and the node's login methods."""
    from bacalhau.client.credentials import ENV_API_KEY, ENV_PASSWORD, ENV_USERNAME
    from bacalhau.models.errors import BacalhauError

    target = cli.api_target()
    with cli.client(authenticated=False) as client:
        url = client.base_url
        try:
            sso: dict[str, Any] | None = client.auth_config().get("Config") or {}
        except BacalhauError:
            sso = None
    env: dict[str, Any] = {
        "APIKey": "Set" if os.environ.get(ENV_API_KEY, "").strip() else "Not Set",
        "Username": "Set" if os.environ.get(ENV_USERNAME, "").strip() else "Not Set",
        "Password": "Set" if os.environ.get(ENV_PASSWORD, "").strip() else "Not Set",
    }
    if output_format.lower() != "text":
        body = {"Target": url, "Environment": env, "ProfileToken": bool(target.token), "SSO": sso}
        emit(render_object(body, OutputOptions(format=output_format.lower(), pretty=pretty)))
        return
    lines = [f"\nTarget environment: {url}\n", "Environment Variables:",
             f"API Key: {env['APIKey']}", f"Username: {env['Username']}", f"Password: {env['Password']}"]
    if target.profile:
        lines.append(f"\nProfile {target.profile}: token {'set' if target.token else 'not set'}")
    lines.append("\nNode SSO Authentication:")
    if sso is None:
        lines.append("Server does not support Basic Auth, API Keys, or SSO logins")
    elif sso.get("ProviderID") or sso.get("ProviderName"):
        lines += [f"Provider Name: {sso.get('ProviderName', '')}", f"Provider ID: {sso.get('ProviderID', '')}"]
    else:
        lines.append("Server does not support SSO login")
    lines.append("\nNote: Environment variables take precedence over other authentication mechanisms including SSO.")
    lines.append("To use SSO login, please unset Auth related environment variables first.")
    click.echo("\n".join(lines))
