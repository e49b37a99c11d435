"""The egress proxy: the only way out for a job with network type HTTP, letting through its Domains only.

Bacalhau runs squid in a gateway container for this (an image pulled from ghcr.io); here the node
serves it itself, on the gateway address of the node's internal job network (see gateway.py), in a
thread with its own event loop so that a job moving gigabytes never slows the node's API or NATS link.

    job container (internal network: no route out; http_proxy=http://<gateway ip>:<port>)
       │ TCP from its own address
       v
    accept ── who? source address -> execution (the engine's network table; cached until forget())
       │         unknown -> 403 "… is not a job of this node"
       v
    request head (at most 64 KiB, within 30 s)
       │  CONNECT host:port            absolute-form GET http://host[:port]/path
       v
    host in the job's Domains? ── no -> 403 "<host> is not in the job's Network.Domains (…)"
       v
    resolve; each address judged by DestinationPolicy ── all refused -> 403 "… resolves to …"
       v
    connect (10 s) ── fails -> 502 "cannot connect to …"
       │  CONNECT: "200 Connection established", then bytes both ways (TLS stays end to end)
       │  HTTP: the head re-sent in origin-form with Connection: close and X-Bacalhau-Job-ID
       v     (Bacalhau's gateway adds that header too), then bytes both ways
    either side closes -> the other is half-closed; forget(execution) closes whatever is left

Memory is bounded: heads are capped, bytes move in 64 KiB steps with back-pressure, and connections
are capped per job and in total (503 beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import h11

from bacalhau.egress.destinations import IPAddress
from bacalhau.egress.domains import DomainAllowList

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
_CHUNK = 64 * 1024
_HEAD_TIMEOUT_S = 30.0
_CLIENT_LINGER_S = 5.0
_UNKNOWN_LOG_EVERY_S = 60.0
_UNKNOWN_LOG_PEERS = 1024
_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization", b"te", b"upgrade"}
_LOGGED_REFUSALS = 20  # per execution; a job looping on a refused host must not flood the node's log


@dataclass(frozen=True)
class Grant:
    """What one execution may reach."""

    execution_id: str
    job_id: str
    domains: DomainAllowList


class Destinations(Protocol):
    """Judges an address before the proxy connects to it (destinations.DestinationPolicy)."""

    def refusal(self, address: IPAddress) -> str | None:
        """Why a job may not reach `address`, or None."""


# source address of a connection -> the execution whose container has it, or None. Called in a
# worker thread (it may ask the Docker engine).
Identify = Callable[[IPAddress], str | None]


class Refused(Exception):
    """A request the proxy answers itself, with a status and a plain-text reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Client:
    grant: Grant
    writers: set[asyncio.StreamWriter] = field(default_factory=set)  # the job's side of each connection
    upstreams: set[asyncio.StreamWriter] = field(default_factory=set)
    refusals: int = 0


class EgressProxy:
    """An HTTP forward proxy (CONNECT and absolute-form HTTP) that lets each job reach its Domains only."""

    def __init__(
        self,
        *,
        identify: Identify,
        destinations: Destinations,
        connect_timeout_s: float = 10.0,
        max_connections: int = 1024,
        max_connections_per_job: int = 256,
    ) -> None:
        self._identify = identify
        self._destinations = destinations
        self._connect_timeout_s = connect_timeout_s
        self._max_connections = max_connections
        self._max_per_job = max_connections_per_job
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}
        self._by_address: dict[IPAddress, str] = {}
        self._clients: dict[str, _Client] = {}
        self._open = 0
        self._unknown_logged: dict[str, float] = {}  # peer address -> when its refusal was last logged
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()  # one per connection, awaited at stop()
        self.address: tuple[str, int] | None = None

    # -- grants (any thread) -----------------------------------------------------------------------
    def allow(self, execution_id: str, job_id: str, domains: DomainAllowList) -> None:
        """Let the execution's container reach `domains` (before its container starts)."""
        with self._lock:
            self._grants[execution_id] = Grant(execution_id, job_id, domains)

    def forget(self, execution_id: str) -> None:
        """The execution ended: drop its grant and address, close its open connections. Idempotent.
        Called before its container is removed, so its address is never mistaken for the next owner's."""
        with self._lock:
            self._grants.pop(execution_id, None)
            for address in [a for a, owner in self._by_address.items() if owner == execution_id]:
                del self._by_address[address]
            client = self._clients.pop(execution_id, None)
        if client is not None and self._loop is not None:
            for writer in [*client.writers, *client.upstreams]:
                self._loop.call_soon_threadsafe(writer.transport.abort)

    # -- lifespan (any thread but the proxy's) -------------------------------------------------------
    def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on host:port (port 0: any free one) in a thread of its own; return the bound address.
        Raises OSError when the address cannot be bound. Idempotent while running."""
        if self.address is not None:
            return self.address
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="egress-proxy", daemon=True)
        thread.start()
        try:
            server = asyncio.run_coroutine_threadsafe(
                asyncio.start_server(self._serve, host, port, limit=MAX_HEAD_BYTES, reuse_address=True), loop
            ).result()
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
            raise
        self._loop, self._thread, self._server = loop, thread, server
        bound = server.sockets[0].getsockname()
        self.address = (str(bound[0]), int(bound[1]))
        return self.address

    def stop(self) -> None:
        """Close the listener and every connection, end the thread. Idempotent."""
        loop, thread, server = self._loop, self._thread, self._server
        if loop is None or thread is None or server is None:
            return
        done: Future[None] = asyncio.run_coroutine_threadsafe(self._shutdown(server), loop)
        with contextlib.suppress(Exception):
            done.result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = self._server = None
        self.address = None

    async def _shutdown(self, server: asyncio.Server) -> None:
        server.close()
        with self._lock:
            writers = [w for client in self._clients.values() for w in (*client.writers, *client.upstreams)]
        for writer in writers:
            writer.transport.abort()
        # Handlers still waiting (on a connect, a lookup) are cancelled and awaited here, on their own
        # loop: none may be left pending when the loop closes.
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()

    # -- one connection ------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        client: _Client | None = None
        try:
            try:
                client = await self._client(writer)
                head = await _read_head(reader)
                target = _Target.parse(head)
                if not client.grant.domains.allows(target.host):
                    raise Refused(
                        403,
                        f"{target.host} is not in the job's Network.Domains ({client.grant.domains.describe()})",
                    )
                upstream_reader, upstream_writer = await self._connect(target)
            except Refused as refused:
                self._note_refusal(client, writer, refused)
                await _answer(writer, refused.status, refused.reason)
                return
            except (OSError, asyncio.IncompleteReadError):
                return
            client.upstreams.add(upstream_writer)
            try:
                if target.is_tunnel:
                    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                else:
                    upstream_writer.write(target.origin_head(client.grant.job_id))
                await _splice(reader, writer, upstream_reader, upstream_writer)
            finally:
                await _close(upstream_writer)
                client.upstreams.discard(upstream_writer)
        except asyncio.CancelledError:
            # Only stop() cancels a handler. Ending cancelled would make asyncio's stream callback log
            # an error for each (it asks the task for its exception), so the handler just ends.
            return
        finally:
            # Whatever happened (cancelled at stop() included), the connection's slot is given back.
            await _close(writer)
            if client is not None:
                self._release(client, writer)
            if task is not None:
                self._handlers.discard(task)

    async def _client(self, writer: asyncio.StreamWriter) -> _Client:
        peer = writer.get_extra_info("peername")
        try:
            address: IPAddress = ipaddress.ip_address(str(peer[0]).split("%")[0])
        except (TypeError, ValueError, IndexError) as exc:
            raise Refused(403, "this proxy serves only jobs of this node") from exc
        with self._lock:
            execution_id = self._by_address.get(address)
        if execution_id is None:
            execution_id = await asyncio.to_thread(self._identify, address)
        with self._lock:
            grant = self._grants.get(execution_id) if execution_id else None
            if grant is None:
                raise Refused(403, f"{address} is not a job of this node with network type HTTP")
            self._by_address[address] = grant.execution_id
            client = self._clients.setdefault(grant.execution_id, _Client(grant))
            if self._open >= self._max_connections or len(client.writers) >= self._max_per_job:
                raise Refused(503, "too many open connections through the egress proxy; try again later")
            self._open += 1
            client.writers.add(writer)
        return client

    def _release(self, client: _Client, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            if writer in client.writers:
                client.writers.discard(writer)
                self._open -= 1

    async def _connect(self, target: _Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(target.host.strip("[]"), target.port, type=socket.SOCK_STREAM),
                self._connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            raise Refused(502, f"cannot resolve {target.host}: {exc}") from exc
        refusals: list[str] = []
        last_error: str | None = None
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            why = self._destinations.refusal(address)
            if why is not None:
                refusals.append(f"{address} ({why})")
                continue
            try:
                # The address judged is the address connected to: no second lookup to race.
                return await asyncio.wait_for(
                    asyncio.open_connection(str(address), target.port, limit=_CHUNK), self._connect_timeout_s
                )
            except TimeoutError:
                last_error = f"timed out after {self._connect_timeout_s:g} s"
            except OSError as exc:
                last_error = str(exc) or type(exc).__name__
        if last_error is not None:
            raise Refused(502, f"cannot connect to {target.host}:{target.port}: {last_error}")
        raise Refused(403, f"{target.host} resolves to {', '.join(refusals)}, which jobs may not reach")

    def _note_refusal(self, client: _Client | None, writer: asyncio.StreamWriter, refused: Refused) -> None:
        if client is None:
            # Not a job of ours: at most a line a minute per address, and a bounded table of them.
            peer = str((writer.get_extra_info("peername") or ("?",))[0])
            now = time.monotonic()
            if now - self._unknown_logged.get(peer, -_UNKNOWN_LOG_EVERY_S) >= _UNKNOWN_LOG_EVERY_S:
                if len(self._unknown_logged) >= _UNKNOWN_LOG_PEERS:
                    self._unknown_logged.clear()
                self._unknown_logged[peer] = now
                logger.info("egress proxy: refused %s: %s", peer, refused.reason)
            return
        client.refusals += 1
        if client.refusals <= _LOGGED_REFUSALS:
            logger.info("egress proxy: execution %s: %s", client.grant.execution_id, refused.reason)
        if client.refusals == _LOGGED_REFUSALS:
            logger.info("egress proxy: execution %s: further refusals are not logged", client.grant.execution_id)


@dataclass(frozen=True)
class _Target:
    """Where a request goes: CONNECT's authority, or an absolute-form http:// URL."""

    host: str
    port: int
    is_tunnel: bool
    request: h11.Request | None = None

    @classmethod
    def parse(cls, head: bytes) -> _Target:
        """The target of a request head (up to its blank line); Refused(400) for anything else."""
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        connection.receive_data(head)
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError as exc:
            raise Refused(400, f"malformed request: {exc}") from exc
        if not isinstance(event, h11.Request):
            raise Refused(400, "malformed request")
        target = event.target.decode("ascii", "replace")
        if event.method == b"CONNECT":
            host, port = _authority(target, default_port=None)
            return cls(host, port, is_tunnel=True)
        try:
            url = urlsplit(target)
            netloc = url.netloc
        except ValueError as exc:  # "http://[::1/": h11 lets it through, urlsplit does not
            raise Refused(400, f"malformed request target {target[:200]!r}: {exc}") from exc
        if url.scheme.lower() != "http" or not netloc:
            raise Refused(
                400,
                "this is an HTTP proxy: send absolute http:// URLs, or CONNECT host:port for https "
                "(set http_proxy/https_proxy, which the node did for the job)",
            )
        host, port = _authority(netloc.rsplit("@", 1)[-1], default_port=80)
        return cls(host, port, is_tunnel=False, request=event)

    def origin_head(self, job_id: str) -> bytes:
        """The request head for the origin server (the body, if any, follows from the client as it is)."""
        assert self.request is not None
        url = urlsplit(self.request.target.decode("ascii", "replace"))
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        lines = [b"%s %s HTTP/1.1" % (self.request.method, path.encode("ascii", "replace"))]
        for name, value in self.request.headers.raw_items():
            if name.lower() in _HOP_BY_HOP or name.lower() == b"x-bacalhau-job-id":
                continue
            lines.append(name + b": " + value)
        lines += [b"Connection: close", b"X-Bacalhau-Job-ID: " + job_id.encode("ascii", "replace")]
        return b"\r\n".join(lines) + b"\r\n\r\n"


def _authority(text: str, *, default_port: int | None) -> tuple[str, int]:
    host, _, port_text = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not host:  # no ":" at all
        host, port_text = text, ""
    if not port_text:
        if default_port is None:
            raise Refused(400, f"CONNECT needs host:port, got {text!r}")
        return host, default_port
    try:
        port = int(port_text)
    except ValueError as exc:
        raise Refused(400, f"bad port in {text!r}") from exc
    if not 0 < port < 65536:
        raise Refused(400, f"bad port in {text!r}")
    if not host:
        raise Refused(400, f"no host in {text!r}")
    return host, port


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT_S)
    except asyncio.LimitOverrunError as exc:
        raise Refused(431, f"request head larger than {MAX_HEAD_BYTES} bytes") from exc
    except TimeoutError as exc:
        raise Refused(408, "no complete request head within 30 s") from exc
    return head  # what follows (a body) stays in the reader, piped on as it is


async def _splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    """Bytes both ways until the server is done. A job that keeps its side open after the server
    closed (a keep-alive client waiting for a next response) gets _CLIENT_LINGER_S, not forever."""
    outbound = asyncio.ensure_future(_pipe(reader, upstream_writer))
    inbound = asyncio.ensure_future(_pipe(upstream_reader, writer))
    try:
        await asyncio.wait({outbound, inbound}, return_when=asyncio.FIRST_COMPLETED)
        if inbound.done():
            await asyncio.wait({outbound}, timeout=_CLIENT_LINGER_S)
        else:
            await inbound
    finally:
        for task in (outbound, inbound):
            task.cancel()
        await asyncio.gather(outbound, inbound, return_exceptions=True)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(_CHUNK):
            sink.write(chunk)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except (OSError, RuntimeError):
        sink.transport.abort()


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = f"bacalhau egress proxy: {reason}\n".encode()
    phrase = {400: "Bad Request", 403: "Forbidden", 408: "Request Timeout", 431: "Request Header Fields Too Large",
              502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
    writer.write(
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(OSError, RuntimeError):
        await writer.drain()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, RuntimeError):
        await writer.wait_closed()
