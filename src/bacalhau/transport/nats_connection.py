"""A node's NATS connection with Bacalhau's client behaviour (Go's `CreateClient`), on nats-py.

    NEW --connect()/start()--> CONNECTING --> CONNECTED <--reconnected-- RECONNECTING
                                   |              |   \\--link lost-->------^   |
                                   +-- refused ---+-> CLOSED <--close()----------+

What nats-py does differently from nats.go, and what this module does about it:

* The first `connect()` with `max_reconnect_attempts=-1` retries forever INSIDE the call, at a fixed
  `reconnect_time_wait` with no jitter, and treats a refused token like a refused TCP connection (retried
  forever too). So each first-connect attempt runs with `allow_reconnect=False, max_reconnect_attempts=1`
  (every server tried twice, then NoServersError; a refused token raised at once), our loop retries with
  exponential backoff and jitter, and only a connected client is switched to "reconnect forever"
  (`options["allow_reconnect"]`, `options["max_reconnect_attempts"] = -1`, read by nats-py at reconnect
  time). This is how a compute node can start before its orchestrator.
* Reconnects have no jitter (`reconnect_time_wait` only). nats-py's `reconnect_to_server_handler` replaces
  its server selection and fixed wait: ours picks the least-failed server and returns wait + random jitter.
* The reconnect buffer is 2 MiB (nats.go: 8 MiB) and failed callbacks raise into nats-py's default error
  callback, which logs a traceback; both are set here.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import ssl
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from nats import errors as nats_errors
from nats.aio.client import Client, Server

from bacalhau.models.errors import BacalhauError, ErrorCode
from bacalhau.transport.backoff import Backoff
from bacalhau.transport.nats_errors import (
    CLIENT_COMPONENT,
    PlaintextRefused,
    display_servers,
    handshake_first_error,
    is_authorization_error,
    is_certificate_error,
    plaintext_error,
    translate,
    unreachable_error,
)
from bacalhau.transport.nats_settings import NatsClientSettings

log = logging.getLogger(__name__)

# Errors of a connection attempt that another attempt may fix; anything else is a bug and propagates.
_CONNECT_ERRORS = (OSError, nats_errors.Error, TimeoutError)
_DISCARD_TIMEOUT_S = 2.0


class _Client(Client):
    """nats-py's client, refusing, at every (re)connect, a server that did not switch to TLS when this node
    is set up for TLS: checked once CONNECT is processed, before subscriptions are replayed and buffered
    messages flushed (nats-py would reconnect in plain text to whatever answers at the address)."""

    def __init__(self, *, tls_only: bool) -> None:
        super().__init__()
        self._tls_only = tls_only

    async def _process_connect_init(self) -> None:
        await super()._process_connect_init()
        if self._tls_only and not _uses_tls(self):
            if self._transport is not None:
                self._transport.close()  # type: ignore[no-untyped-call]  # nats-py leaves it untyped
            raise PlaintextRefused()


def _uses_tls(client: Client) -> bool:
    """Whether the connection switched to TLS: nats-py does so exactly when the server's INFO requires it."""
    return bool(getattr(client, "_server_info", {}).get("tls_required"))


def _token_for(client: Client, token: str, *, tls: bool) -> str | Callable[[], str] | None:
    """The token nats-py sends in CONNECT. For a client set up for TLS, a callback that refuses to hand it
    over on a connection that did not switch to TLS (nats-py would send it in the clear; nats.go refuses
    with "secure connection required"); it runs after INFO, at every (re)connect."""
    if not token or not tls:
        return token or None

    def give() -> str:
        if not _uses_tls(client):
            raise PlaintextRefused()
        return token

    return give


def _netloc(client: Client) -> str:
    # host:port only: a netloc may carry credentials (nats://token@host).
    url = client.connected_url
    return f"{url.hostname}:{url.port}" if url is not None else "?"


class ConnectionStatus(enum.StrEnum):
    """Where the connection is (diagram in the module docstring)."""

    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


StatusListener = Callable[[ConnectionStatus], None]


class NatsConnection:
    """One nats-py client with never-give-up reconnects, jitter, status callbacks and our errors.

    Owns at most one task: the background first-connect loop started by `start()`. After the first
    connect, nats-py's own tasks (read loop, flusher, pinger, reconnect) do the work.
    """

    def __init__(self, *, settings: NatsClientSettings, rng: random.Random | None = None) -> None:
        self._settings = settings
        self._rng = rng or random.Random()
        self._status = ConnectionStatus.NEW
        self._client: Client | None = None
        self._last_error: BaseException | None = None
        self._failure: BacalhauError | None = None
        self._listeners: list[StatusListener] = []
        self._waiters: list[tuple[ConnectionStatus, asyncio.Future[None]]] = []
        self._connect_task: asyncio.Task[None] | None = None
        self._failed_attempts = 0

    @property
    def settings(self) -> NatsClientSettings:
        """The settings the connection was built with."""
        return self._settings

    @property
    def status(self) -> ConnectionStatus:
        """The connection's current status."""
        return self._status

    @property
    def last_error(self) -> BaseException | None:
        """The last error nats-py reported (a refused attempt, a slow consumer ...), for diagnostics."""
        return self._last_error

    @property
    def failed_attempts(self) -> int:
        """Connection attempts that failed since the connection was last up (first connect or reconnects)."""
        return self._failed_attempts

    @property
    def client(self) -> Client:
        """The connected nats-py client. Raises BacalhauError (ServiceUnavailable) before the first connect."""
        if self._client is None:
            raise BacalhauError(
                f"the NATS connection is {self._status}; it has never been established",
                code=ErrorCode.ServiceUnavailable, component=CLIENT_COMPONENT, retryable=True,
            )
        return self._client

    def add_status_listener(self, listener: StatusListener) -> Callable[[], None]:
        """Call `listener(status)` on every change; returns a function that removes it. Must not block."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _set_status(self, status: ConnectionStatus) -> None:
        if status is self._status:
            return
        self._status = status
        if status is ConnectionStatus.CONNECTED:
            self._failed_attempts = 0
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:
                log.exception("NATS status listener %r failed", listener)
        for wanted, future in list(self._waiters):
            if future.done():
                continue
            if wanted is status:
                future.set_result(None)
            elif status is ConnectionStatus.CLOSED:
                future.set_exception(self._closed_error())

    def _closed_error(self) -> BacalhauError:
        if self._failure is not None:
            return self._failure
        return BacalhauError("the NATS connection is closed", code=ErrorCode.NetworkFailure, component=CLIENT_COMPONENT)

    async def wait_for_status(self, status: ConnectionStatus, *, timeout_s: float) -> None:
        """Return once the connection is in `status`.

        Raises the connection's failure (e.g. refused token) if it closes first, and BacalhauError (TimeOut)
        after `timeout_s`.
        """
        if self._status is status:
            return
        if self._status is ConnectionStatus.CLOSED:
            raise self._closed_error()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (status, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise BacalhauError(
                f"the NATS connection did not become {status} within {timeout_s:g}s (it is {self._status})",
                code=ErrorCode.TimeOut, component=CLIENT_COMPONENT, retryable=True,
            ) from self._last_error
        finally:
            self._waiters.remove(entry)

    def _pick_server(self, servers: list[Server], server_info: dict[str, Any]) -> tuple[Server | None, float]:
        """nats-py's reconnect hook: the server that failed least (ties at random), after wait + jitter."""
        fewest = min(server.reconnects for server in servers)
        chosen = self._rng.choice([server for server in servers if server.reconnects == fewest])
        return chosen, self._settings.reconnect_wait_s + self._rng.uniform(0, self._settings.reconnect_jitter_s)

    async def connect(self, *, timeout_s: float | None = None) -> Client:
        """Connect, retrying with backoff and jitter while no server answers; None: retry until cancelled.

        Returns the connected client. Raises BacalhauError: Unauthorized at once when the token is refused
        (retrying cannot fix it), NetworkFailure when `timeout_s` passes without a server.
        """
        if self._status is ConnectionStatus.CONNECTED:
            return self.client
        if self._status is not ConnectionStatus.NEW:
            raise BacalhauError(f"the NATS connection is already {self._status}", component=CLIENT_COMPONENT)
        self._set_status(ConnectionStatus.CONNECTING)
        try:
            client = await self._first_connect(timeout_s)
        except BaseException as exc:
            if isinstance(exc, BacalhauError):
                self._failure = exc
            self._set_status(ConnectionStatus.CLOSED)
            raise
        # From now on nats-py reconnects by itself, forever (Go: MaxReconnects(-1)).
        client.options["allow_reconnect"] = True
        client.options["max_reconnect_attempts"] = -1
        client.options["reconnect_time_wait"] = self._settings.reconnect_wait_s
        self._client = client
        log.info("connected to NATS at %s as %s", _netloc(client), self._settings.name)
        self._set_status(ConnectionStatus.CONNECTED)
        return client

    async def _first_connect(self, timeout_s: float | None) -> Client:
        settings = self._settings
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        backoff = Backoff(base_s=settings.reconnect_wait_s, max_s=settings.first_connect_backoff_max_s, rng=self._rng)
        context = settings.ssl_context()
        tls_options: dict[str, Any] = {}
        if context is not None:
            tls_options = {"tls": context, "tls_handshake_first": settings.tls_handshake_first}
        while True:
            client = _Client(tls_only=settings.tls and not settings.tls_handshake_first)
            try:
                await client.connect(
                    servers=list(settings.servers),
                    name=settings.name,
                    token=_token_for(client, settings.token, tls=settings.tls),
                    **tls_options,
                    allow_reconnect=False,
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0,
                    connect_timeout=settings.connect_timeout_s,
                    pending_size=settings.pending_bytes,
                    drain_timeout=settings.drain_timeout_s,
                    reconnect_to_server_handler=self._pick_server,
                    **self._callbacks(client),
                )
                if settings.tls and not settings.tls_handshake_first and not _uses_tls(client):
                    raise PlaintextRefused()  # set up for TLS (no token to guard): still never in the clear
                return client
            except _CONNECT_ERRORS as exc:
                await self._discard(client)
                if isinstance(exc, PlaintextRefused):
                    raise plaintext_error(settings.servers) from exc
                if settings.tls_handshake_first and isinstance(exc, ssl.SSLError) and not is_certificate_error(exc):
                    raise handshake_first_error(settings.servers, exc) from exc
                if is_authorization_error(exc) or is_certificate_error(exc):
                    # Retrying cannot fix a refused token or an untrusted certificate: say so at once.
                    self._last_error = exc
                    raise translate(exc, action="connect to NATS", servers=settings.servers) from exc
                # NoServersError says only "no servers"; the socket error behind it came through error_cb.
                if not isinstance(exc, nats_errors.NoServersError) or self._last_error is None:
                    self._last_error = exc
                self._failed_attempts += 1
                delay_s = backoff.next_delay_s()
                if deadline is not None:
                    remaining_s = deadline - time.monotonic()
                    if remaining_s <= 0:
                        if settings.tls_handshake_first and isinstance(self._last_error, TimeoutError | ssl.SSLError):
                            # It answered TCP but not the TLS handshake: what RequireTLS needs is missing.
                            raise handshake_first_error(settings.servers, self._last_error) from exc
                        raise unreachable_error(settings.servers, self._last_error) from exc
                    delay_s = min(delay_s, remaining_s)
                log.warning(
                    "NATS server not reachable at %s (%s); retrying in %.1fs",
                    display_servers(settings.servers), str(self._last_error) or type(exc).__name__, delay_s,
                )
            except BaseException:
                await self._discard(client)
                raise
            await asyncio.sleep(delay_s)

    def start(self) -> None:
        """Connect in the background (a compute node starting before its orchestrator); see `wait_for_status`."""
        if self._connect_task is not None:
            return
        self._connect_task = asyncio.create_task(self._connect_in_background(), name=f"nats-connect-{self._settings.name}")

    async def _connect_in_background(self) -> None:
        try:
            await self.connect()
        except BacalhauError as exc:
            # Kept as the failure that wait_for_status raises; logging it is all this task can do.
            log.error("NATS connection failed: %s (%s)", exc.message, exc.hint)

    def _callbacks(self, client: Client) -> dict[str, Any]:
        """nats-py callbacks bound to `client`: those of a discarded attempt are ignored."""

        async def error_cb(exc: Exception) -> None:
            self._last_error = exc
            if self._client is not client:
                return  # a first-connect attempt: our loop reports its outcome
            if self._status is ConnectionStatus.RECONNECTING and isinstance(exc, _CONNECT_ERRORS):
                # Each failed reconnect attempt lands here; the disconnect itself was logged once.
                self._failed_attempts += 1
                log.debug("NATS reconnect attempt failed: %s", exc)
            else:
                log.warning("NATS connection error: %s", translate(exc, action="NATS connection").message)

        async def disconnected_cb() -> None:
            if self._client is client and not client.is_closed:
                log.warning("NATS connection lost; reconnecting")
                self._set_status(ConnectionStatus.RECONNECTING)

        async def reconnected_cb() -> None:
            if self._client is client:
                log.info("NATS connection re-established to %s", _netloc(client))
                self._set_status(ConnectionStatus.CONNECTED)

        async def closed_cb() -> None:
            if self._client is client:
                self._set_status(ConnectionStatus.CLOSED)

        async def lame_duck_mode_cb() -> None:
            if self._client is client:
                log.info("NATS server entered lame duck mode; the connection will move to another server")

        return {
            "error_cb": error_cb,
            "disconnected_cb": disconnected_cb,
            "reconnected_cb": reconnected_cb,
            "closed_cb": closed_cb,
            "lame_duck_mode_cb": lame_duck_mode_cb,
        }

    @staticmethod
    async def _discard(client: Client) -> None:
        """Release a failed attempt's socket (a refused token leaves it open). Bounded: closing a transport
        whose TLS handshake failed can wait forever on nats-py's side (seen with an untrusted certificate)."""
        if not client.is_closed:
            with contextlib.suppress(*_CONNECT_ERRORS, AssertionError, TimeoutError):
                async with asyncio.timeout(_DISCARD_TIMEOUT_S):
                    await client.close()

    async def close(self) -> None:
        """Stop connecting, drain subscriptions and buffered publishes (bounded by drain_timeout_s), close."""
        task, self._connect_task = self._connect_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client = self._client
        if client is not None and not client.is_closed:
            try:
                if client.is_connected:
                    await client.drain()
                else:
                    await client.close()
            except _CONNECT_ERRORS as exc:
                log.debug("NATS drain failed (%s); closing", exc)
                await client.close()
        self._set_status(ConnectionStatus.CLOSED)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
