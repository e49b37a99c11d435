"""Where the API listens, given whether anyone is checked at the door.

Bacalhau listens on 0.0.0.0 and, without users, lets anybody in: whoever reaches the port runs jobs,
reads their Env and deletes nodes. Here a node without `API.Auth.Users` listens on 127.0.0.1 unless
`API.Host` says otherwise, and one told to listen beyond loopback without users says, at every start,
what that exposes. A node with users listens where `API.Host` says (0.0.0.0 by default).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Binding:
    """Where the API listens, and what to tell the operator about it."""

    host: str
    # What to tell the operator ('' for nothing), and whether it is a warning.
    message: str = ""
    warning: bool = False


def api_binding(host: str, *, host_is_set: bool, enforced: bool) -> Binding:
    """The listen address for API.Host (`host_is_set`: given by the user) when users are (not) `enforced`."""
    if enforced:
        return Binding(host)
    if not host_is_set:
        return Binding(
            LOOPBACK,
            f"API on {LOOPBACK} only: no API.Auth.Users are configured (add users, then set API.Host=0.0.0.0 "
            "to serve other machines)",
        )
    if not _is_loopback(host):
        return Binding(
            host,
            f"the API listens on {host} without authentication: anyone who reaches it can run jobs, read their "
            "Env values and delete nodes; configure API.Auth.Users (README: Securing a node)",
            warning=True,
        )
    return Binding(host)


def web_ui_binding(host: str, *, host_is_set: bool, enforced: bool) -> Binding:
    """Where the web UI listens (the host of WebUI.Listen): the API's rule, since the UI can do whatever
    the API lets its caller do."""
    if enforced:
        return Binding(host)
    if not host_is_set:
        return Binding(
            LOOPBACK,
            f"Web UI on {LOOPBACK} only: no API.Auth.Users are configured (add users, then set "
            "WebUI.Listen=0.0.0.0:8438 to serve other machines)",
        )
    if not _is_loopback(host):
        return Binding(
            host,
            f"the Web UI listens on {host} without authentication: anyone who reaches it can run and stop jobs "
            "and delete nodes; configure API.Auth.Users (README: Securing a node)",
            warning=True,
        )
    return Binding(host)


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere
