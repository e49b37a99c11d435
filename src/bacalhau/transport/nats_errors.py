"""nats-py exceptions translated into our one hierarchy (models/errors.py), with hints a user can act on.

Components follow Bacalhau's (`pkg/nats/errors.go`): `TransportServer` for the embedded nats-server,
`TransportClient` for connections. Refused credentials are final (`retryable=False`); an unreachable
server, a timeout, a full reconnect buffer or a reconnecting connection may pass (`retryable=True`).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from urllib.parse import urlsplit

from nats import errors as nats_errors

from bacalhau.models.errors import BacalhauError, ErrorCode

SERVER_COMPONENT = "TransportServer"
CLIENT_COMPONENT = "TransportClient"

TOKEN_HINT = (
    "the token must equal the orchestrator's Orchestrator.Auth.Token: set Compute.Auth.Token on a compute-only "
    "node (-c Compute.Auth.Token=<token> or BACALHAU_COMPUTE_AUTH_TOKEN)"
)
MAX_PAYLOAD_HINT = (
    "the NATS server refuses messages above its max_payload; raise Orchestrator.NATS.MaxPayload on the "
    "orchestrator (the embedded server's limit) or send a smaller message"
)


def display_servers(servers: Sequence[str]) -> str:
    """Server URLs for messages and logs, without credentials (`nats://token@host:4222` is allowed)."""
    shown = []
    for server in servers:
        parts = urlsplit(server if "://" in server else "nats://" + server)
        shown.append(server if "@" not in parts.netloc else parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl())
    return ", ".join(shown)


def is_authorization_error(exc: BaseException) -> bool:
    """True when the server refused our credentials.

    nats-py raises `AuthorizationError` only for errors it reads on an established connection; during
    CONNECT it raises a plain `nats.errors.Error("nats: 'Authorization Violation'")`.
    """
    if isinstance(exc, nats_errors.AuthorizationError):
        return True
    return isinstance(exc, nats_errors.Error) and "authorization violation" in str(exc).lower()


def is_certificate_error(exc: BaseException) -> bool:
    """True when TLS failed because the server's certificate is not trusted (or not for this name)."""
    seen: BaseException | None = exc
    for _ in range(5):  # the SSL error may sit under nats-py's own
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError) or "certificate verify failed" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class PlaintextRefused(nats_errors.Error):
    """Raised (by our token callback) instead of sending the token to a server that did not switch to TLS."""

    def __str__(self) -> str:
        return "nats: secure connection required"


def plaintext_error(servers: Sequence[str]) -> BacalhauError:
    """A client set up for TLS met a server without it: nothing was sent in the clear."""
    return BacalhauError(
        f"the NATS server at {display_servers(servers)} does not use TLS, but this node is set up for TLS "
        "(Compute.TLS.CACert / RequireTLS): refusing to send the token unencrypted",
        code=ErrorCode.Unauthorized, component=CLIENT_COMPONENT,
        hint="enable TLS on the orchestrator (Orchestrator.TLS.ServerCert and ServerKey), or unset Compute.TLS.*",
    )


def handshake_first_error(servers: Sequence[str], cause: BaseException) -> BacalhauError:
    """RequireTLS (TLS before NATS's first message) met a server that speaks NATS first."""
    return BacalhauError(
        f"the NATS server at {display_servers(servers)} did not answer a TLS handshake "
        f"(Compute.TLS.RequireTLS=true): {cause}",
        code=ErrorCode.ConfigurationError, component=CLIENT_COMPONENT,
        hint="RequireTLS needs a TLS-terminating proxy in front of the orchestrator (as in Bacalhau); "
        "against the orchestrator's own NATS server use Compute.TLS.CACert without RequireTLS",
    )


def unreachable_error(servers: Sequence[str], cause: BaseException | None) -> BacalhauError:
    """No server in `servers` accepted a connection (Bacalhau's "no orchestrator available")."""
    detail = f": {cause}" if cause is not None and str(cause) else ""
    return BacalhauError(
        f"no NATS server available for connection at {display_servers(servers)}{detail}",
        code=ErrorCode.NetworkFailure,
        component=CLIENT_COMPONENT,
        hint=(
            "ensure the orchestrator is running and reachable there, or point this node elsewhere with "
            "-c Compute.Orchestrators=<nats://host:port> (BACALHAU_COMPUTE_ORCHESTRATORS)"
        ),
        retryable=True,
    )


def translate(exc: BaseException, *, action: str, servers: Sequence[str] = ()) -> BacalhauError:
    """Our error for a nats-py (or socket) exception raised while doing `action` ("publish to x")."""
    where = f" ({display_servers(servers)})" if servers else ""
    if is_authorization_error(exc):
        return BacalhauError(
            f"NATS server{where} refused the connection: authorization violation (wrong or missing token)",
            code=ErrorCode.Unauthorized,
            component=CLIENT_COMPONENT,
            hint=TOKEN_HINT,
        )
    if is_certificate_error(exc):
        return BacalhauError(
            f"cannot trust the TLS certificate of the NATS server{where}: {exc}",
            code=ErrorCode.Unauthorized,
            component=CLIENT_COMPONENT,
            hint="set Compute.TLS.CACert to the CA that signed the orchestrator's certificate "
            "(and check that the certificate names the host in Compute.Orchestrators)",
        )
    if isinstance(exc, nats_errors.NoServersError):
        return unreachable_error(servers, None)
    if isinstance(exc, nats_errors.MaxPayloadError):
        return BacalhauError(
            f"{action}: message larger than the server's max payload", code=ErrorCode.BadRequest,
            component=CLIENT_COMPONENT, hint=MAX_PAYLOAD_HINT,
        )
    if isinstance(exc, nats_errors.NoRespondersError):
        return BacalhauError(
            f"{action}: no subscriber is listening", code=ErrorCode.ServiceUnavailable,
            component=CLIENT_COMPONENT, hint="the receiving node may be down or not yet connected", retryable=True,
        )
    if isinstance(exc, nats_errors.OutboundBufferLimitError):
        return BacalhauError(
            f"{action}: the connection is down and its reconnect buffer is full", code=ErrorCode.ResourceExhausted,
            component=CLIENT_COMPONENT, hint="retry once the connection to the NATS server is back", retryable=True,
        )
    if isinstance(exc, nats_errors.SlowConsumerError):
        return BacalhauError(
            f"{action}: messages dropped because the subscriber fell behind", code=ErrorCode.ResourceExhausted,
            component=CLIENT_COMPONENT, hint="the handler blocks the event loop or the node is overloaded",
            retryable=True,
        )
    if isinstance(exc, nats_errors.ConnectionClosedError | nats_errors.ConnectionDrainingError):
        return BacalhauError(
            f"{action}: the NATS connection is closed", code=ErrorCode.NetworkFailure, component=CLIENT_COMPONENT,
        )
    if isinstance(exc, nats_errors.ConnectionReconnectingError | nats_errors.StaleConnectionError):
        return BacalhauError(
            f"{action}: the NATS connection is reconnecting", code=ErrorCode.NetworkFailure,
            component=CLIENT_COMPONENT, retryable=True,
        )
    # nats.errors.TimeoutError subclasses asyncio.TimeoutError, which is the builtin TimeoutError on 3.11.
    if isinstance(exc, asyncio.TimeoutError):
        return BacalhauError(
            f"{action}{where}: timed out", code=ErrorCode.TimeOut, component=CLIENT_COMPONENT, retryable=True,
        )
    if isinstance(exc, OSError):
        return BacalhauError(
            f"{action}{where}: {exc}", code=ErrorCode.NetworkFailure, component=CLIENT_COMPONENT, retryable=True,
        )
    return BacalhauError(f"{action}{where}: {exc}", code=ErrorCode.NetworkFailure, component=CLIENT_COMPONENT)
