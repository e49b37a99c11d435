"""Which API a client command talks to: explicit API settings, else the selected profile, else defaults.

The order is Bacalhau v1.9's (cmd/util/api.go `NewAPIClientManager`, pkg/config/profile/loader.go)::

    API.Host / API.Port differ from 0.0.0.0 / 1234          -> that address (from --api-host/--api-port,
        BACALHAU_API_HOST/_PORT, the config file or -c API.*)    as before profiles existed
    else a profile named by --profile > BACALHAU_PROFILE > profiles/current
                                                            -> its endpoint, timeout, tls.insecure, token
    else                                                    -> http://127.0.0.1:1234

As in Bacalhau, a profile that is named but cannot be loaded does not stop the command: the defaults
apply (Bacalhau only logs this at debug level; we say it on stderr, see `cli/context.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bacalhau.models.errors import ConfigurationError

if TYPE_CHECKING:
    # The store is imported by whoever opens one: a command given an explicit address never does.
    from bacalhau.cli.profile.store import Profile, ProfileStore

ENV_PROFILE = "BACALHAU_PROFILE"
DEFAULT_API_HOST = "0.0.0.0"
DEFAULT_API_PORT = 1234
DEFAULT_TIMEOUT_S = 30.0
_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class ApiTarget:
    """Where and how to reach the API: a base URL (from a profile) or host/port for the client to resolve."""

    host: str | None = None
    port: int | None = None
    base_url: str | None = None
    timeout_s: float | None = DEFAULT_TIMEOUT_S
    verify_tls: bool = True
    token: str = ""
    profile: str = ""

    @property
    def headers(self) -> dict[str, str]:
        """Headers every request carries: credentials from BACALHAU_API_KEY or BACALHAU_API_USERNAME /
        BACALHAU_API_PASSWORD, else the profile's bearer token, if any (Bacalhau's order)."""
        from bacalhau.client.credentials import env_authorization

        found = env_authorization()
        if found is None and self.token:
            found = f"Bearer {self.token}"
        return {"Authorization": found} if found else {}


def explicitly_set(host: str | None, port: int | None) -> bool:
    """Whether the API address differs from Bacalhau's defaults, which then beats any profile.

    Bacalhau compares the effective values with the defaults (`apiEndpointExplicitlySet`), so
    `--api-port 1234` on its own still lets a profile apply.
    """
    return (host is not None and host != DEFAULT_API_HOST) or (port is not None and port != DEFAULT_API_PORT)


def selected_name(store: ProfileStore, *, flag: str, env: str) -> str:
    """--profile, else BACALHAU_PROFILE, else the `current` link ("" when none; a broken link is none)."""
    return flag or env or store.current_or_empty()


def load_selected(store: ProfileStore, *, flag: str, env: str) -> tuple[str, Profile] | None:
    """The selected profile and its name, None when none is selected. Raises the store's errors."""
    name = selected_name(store, flag=flag, env=env)
    if not name:
        return None
    return name, store.load(name)


def endpoint_url(endpoint: str) -> str:
    """`scheme://host:port` from a profile endpoint: a full http(s) URL, or `host[:port]` (http, port 1234).

    A URL keeps its own port or its scheme's default and loses any path, as Bacalhau's client only
    takes the scheme and host from it. Raises ConfigurationError for anything else.
    """
    text = endpoint.strip()
    bare = "://" not in text
    parts = urlsplit(f"http://{text}" if bare else text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in _SCHEMES or not parts.hostname or port == -1:
        from bacalhau.cli.profile.store import quoted

        raise ConfigurationError(
            f"invalid endpoint {quoted(endpoint)}: expected http(s)://host[:port] or host[:port]",
            component="CLI",
            hint="fix it with 'bacalhau profile save <name> --endpoint <url>'",
        )
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if port is None and bare:
        port = DEFAULT_API_PORT
    return f"{parts.scheme}://{host}:{port}" if port is not None else f"{parts.scheme}://{host}"


def profile_target(name: str, profile: Profile) -> ApiTarget:
    """How to reach the API through a profile. Raises ConfigurationError for a bad endpoint or timeout."""
    return ApiTarget(
        base_url=endpoint_url(profile.endpoint),
        timeout_s=profile.timeout_s(),
        verify_tls=not profile.insecure,
        token=profile.token,
        profile=name,
    )
