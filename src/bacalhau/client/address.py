"""Where the API lives: the base URL built from arguments, then `BACALHAU_API_*` env, then defaults.

Bacalhau's CLI and the official Python SDK agree on the env names: `BACALHAU_API_HOST`,
`BACALHAU_API_PORT` and `BACALHAU_HTTPS` (any non-empty value means https). A node listening on
`0.0.0.0` is reached on `127.0.0.1`, and the host may also be a whole `http(s)://host[:port]` URL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1234
ENV_HOST = "BACALHAU_API_HOST"
ENV_PORT = "BACALHAU_API_PORT"
ENV_HTTPS = "BACALHAU_HTTPS"


def resolve_base_url(
    *,
    base_url: str | None = None,
    host: str | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Return `scheme://host:port` with no trailing slash.

    An explicit `base_url` wins; otherwise `host`/`port` arguments beat the environment, which beats
    the defaults (`127.0.0.1:1234`).
    """
    if base_url:
        return base_url.rstrip("/")
    env = os.environ if env is None else env
    host = host or env.get(ENV_HOST) or DEFAULT_HOST
    explicit_port = port
    if explicit_port is None and env.get(ENV_PORT):
        try:
            explicit_port = int(env[ENV_PORT])
        except ValueError:
            raise ValueError(f"{ENV_PORT}={env[ENV_PORT]!r} is not a port number") from None
    if "://" in host:
        parts = urlsplit(host)
        hostname = _reachable(parts.hostname or DEFAULT_HOST)
        # A URL carrying its own port keeps it; otherwise an explicitly chosen port is added, and
        # without one the scheme's default port applies (https://bacalhau.example.com just works).
        chosen = parts.port or explicit_port
        netloc = f"{_bracket(hostname)}:{chosen}" if chosen else _bracket(hostname)
        path = parts.path.rstrip("/")
        return f"{parts.scheme}://{netloc}{path}"
    scheme = "https" if env.get(ENV_HTTPS) else "http"
    return f"{scheme}://{_bracket(_reachable(host))}:{explicit_port or DEFAULT_PORT}"


def websocket_url(base_url: str, path: str) -> str:
    """The ws:// (or wss://) URL of an API path on the same server."""
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://"):] + path
    if base_url.startswith("http://"):
        return "ws://" + base_url[len("http://"):] + path
    return base_url + path


def _reachable(host: str) -> str:
    # A server bound to every interface is reached through loopback, as Bacalhau's CLI does.
    return DEFAULT_HOST if host in ("0.0.0.0", "::", "[::]") else host


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
