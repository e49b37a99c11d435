"""`bacalhau auth sso login|logout|token`: SSO through the OAuth 2.0 device flow (RFC 8628), as Bacalhau's.

    login   GET /api/v1/agent/authconfig (ProviderID and ProviderName set, else "orchestrator does not
            support logging in using SSO") -> POST DeviceAuthorizationEndpoint (client_id, scope,
            audience) -> prints where to go and the code -> polls TokenEndpoint every `interval` s
            (slower when told `slow_down`) until the user approves, refuses, or `expires_in` passes
            -> saves the access token in <DataDir>/jwt-tokens.json under the API's base URL and in the
            profile `<host>_<port>` (made if missing; selected if none is), "Successfully
            authenticated with <ProviderName>!" on stderr
    logout  asks "Are you sure you want to logout from <url>? (y/N)" unless -f; removes the saved token,
            and its copy in the profile login wrote it to (Bacalhau leaves that one, still sent)
    token   prints the saved token (-d: its header and claims, not verified), or "No authentication
            token found"

The CLI talks to the identity provider directly; the node only checks the tokens (auth/sso.py).
"""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from bacalhau.cli.command import BacalhauCommand, BacalhauGroup
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.errors import CliError

_HINT = "Set LOG_LEVEL=DEBUG and re-run for detailed logs"
_DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_HTTP_TIMEOUT_S = 30.0

sso = BacalhauGroup(name="sso", help="Log in to the node's identity provider (OAuth2 device flow).")


def profile_name(base_url: str) -> str:
    """Bacalhau's profile name for an endpoint: `https://prod.example.com:443` -> `prod_example_com_443`."""
    parts = urlsplit(base_url)
    name = (parts.hostname or base_url) + (f"_{parts.port}" if parts.port else "")
    for separator in ("://", ":", "/", ".", "-"):
        name = name.replace(separator, "_")
    return re.sub(r"_+", "_", name).strip("_") or "default"


def _base_url(cli: CliContext) -> str:
    """The API's base URL, the key of its saved token."""
    with cli.client(authenticated=False) as client:
        return client.base_url


def _tokens(cli: CliContext) -> Any:
    from bacalhau.cli.auth.tokens import JWT_TOKENS_FILE, TokenFile

    return TokenFile(Path(cli.data_path()) / JWT_TOKENS_FILE)


@sso.command("login", cls=BacalhauCommand)
@pass_cli
def login(cli: CliContext, /) -> None:
    """Log in with the node's SSO provider and save the token for this API."""
    from bacalhau.models.errors import BacalhauError

    with cli.client(authenticated=False) as client:
        base_url = client.base_url
        try:
            config: dict[str, Any] = client.auth_config().get("Config") or {}
        except BacalhauError as exc:
            raise CliError("an error has occurred fetching the node authentication details", hint=_HINT) from exc
    if not config.get("ProviderName") or not config.get("ProviderID"):
        raise CliError("orchestrator does not support logging in using SSO", hint=_HINT)
    token = _device_flow(config)
    try:
        _tokens(cli).put(base_url, token)
    except (OSError, BacalhauError) as exc:
        raise CliError("unable to save temporary SSO credentials", hint=_HINT) from exc
    _save_in_profile(cli, base_url, token)
    click.echo(f"\nSuccessfully authenticated with {config['ProviderName']}!", err=True)


def _device_flow(config: dict[str, Any]) -> str:
    import httpx

    form = {"client_id": str(config.get("DeviceClientID", ""))}
    if config.get("Scopes"):
        form["scope"] = " ".join(str(s) for s in config["Scopes"])
    if config.get("Audience"):
        form["audience"] = str(config["Audience"])
    try:
        answer = httpx.post(str(config.get("DeviceAuthorizationEndpoint", "")), data=form, timeout=_HTTP_TIMEOUT_S)
        answer.raise_for_status()
        device: dict[str, Any] = answer.json()
        device_code, user_code = str(device["device_code"]), str(device["user_code"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise CliError("unable to initiate SSO login flow", hint=f"{_HINT} ({exc})") from exc
    click.echo("\nTo login, please:")
    click.echo(f"  1. Open this URL in your browser: {device.get('verification_uri', '')}")
    click.echo(f"  2. Enter this code: {user_code}")
    if device.get("verification_uri_complete"):
        click.echo(f"\nOr, open this URL in your browser:\n  {device['verification_uri_complete']}\n")
    click.echo(f"Waiting for authentication with {config['ProviderName']}... (press Ctrl+C to cancel)")
    sys.stdout.flush()
    interval_s = max(1.0, float(device.get("interval") or 5))
    deadline = time.monotonic() + float(device.get("expires_in") or 300)
    poll = {"grant_type": _DEVICE_GRANT, "device_code": device_code, "client_id": form["client_id"]}
    while time.monotonic() < deadline:
        time.sleep(interval_s)
        try:
            reply = httpx.post(str(config.get("TokenEndpoint", "")), data=poll, timeout=_HTTP_TIMEOUT_S)
            body: dict[str, Any] = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CliError("unable to finish SSO login flow", hint=f"{_HINT} ({exc})") from exc
        if reply.status_code == 200 and body.get("access_token"):
            return str(body["access_token"])
        error = str(body.get("error", f"HTTP {reply.status_code}"))
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval_s += 5
            continue
        raise CliError(
            "unable to finish SSO login flow",
            hint=f"token retrieval failed: {error} - {body.get('error_description', '')}".rstrip(" -"),
        )
    raise CliError("unable to finish SSO login flow", hint="the login was not completed before the code expired")


def _save_in_profile(cli: CliContext, base_url: str, token: str) -> None:
    from bacalhau.cli.profile.store import Profile, ProfileStore
    from bacalhau.models.errors import BacalhauError

    store = ProfileStore.in_data_dir(cli.data_path())
    name = profile_name(base_url)
    try:
        profile = store.load(name) if store.exists(name) else Profile(endpoint=base_url)
        profile.token = token
        store.save(name, profile)
        if not store.current():
            store.select(name)
    except (OSError, BacalhauError) as exc:  # as Bacalhau: the token file is what counts, this is a convenience
        click.echo(f"Warning: failed to save the SSO token to profile {name}: {exc}", err=True)


@sso.command("logout", cls=BacalhauCommand)
@click.option("-f", "--force", is_flag=True, help="Skip confirmation prompt")
@pass_cli
def logout(cli: CliContext, /, force: bool) -> None:
    """Remove the SSO token saved for this API."""
    base_url = _base_url(cli)
    if not force:
        click.echo(f"Are you sure you want to logout from {base_url}? (y/N): ", nl=False)
        answer = sys.stdin.readline().strip()
        if answer not in ("y", "Y"):
            click.echo("Logout cancelled")
            return
    tokens = _tokens(cli)
    try:
        saved = tokens.get(base_url)
        tokens.put(base_url, None)
    except OSError as exc:
        raise CliError("unable to delete SSO session credentials") from exc
    _forget_in_profile(cli, base_url, saved)
    click.echo(f"\nSuccessfully logged out from {base_url}")


def _forget_in_profile(cli: CliContext, base_url: str, token: str) -> None:
    # Bacalhau leaves the copy login put in the profile, so a selected profile keeps sending it after
    # a logout. Taken out here, only where it is that same token (a token set by hand stays).
    from bacalhau.cli.profile.store import ProfileStore
    from bacalhau.models.errors import BacalhauError

    store = ProfileStore.in_data_dir(cli.data_path())
    name = profile_name(base_url)
    try:
        if token and store.exists(name):
            profile = store.load(name)
            if profile.token == token:
                profile.token = ""
                store.save(name, profile)
    except (OSError, BacalhauError) as exc:
        click.echo(f"Warning: the SSO token is still in profile {name}: {exc}", err=True)


@sso.command("token", cls=BacalhauCommand)
@click.option("-d", "--decode", is_flag=True, help="Decode JWT Token")
@pass_cli
def token(cli: CliContext, /, decode: bool) -> None:
    """Show the SSO token saved for this API (-d: its header and claims, unverified)."""
    base_url = _base_url(cli)
    saved = _tokens(cli).get(base_url)
    if not saved:
        click.echo("No authentication token found")
        return
    if not decode:
        click.echo(saved)
        return
    parts = saved.split(".")
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2])
    except (ValueError, TypeError) as exc:
        raise CliError(f"failed to parse token: {exc}") from exc
    click.echo("Header:\n" + json.dumps(header, indent=2))
    click.echo("\nClaims:\n" + json.dumps(claims, indent=2))
