"""The `local` publisher: results served over HTTP by the compute node itself.

Each execution's results folder (stdout, stderr, exitCode, one folder per result path) is packed into
`<DataDir>/compute/published/<execution_id>.tar.gz` (written to a temporary name, then renamed, so a
download never sees half an archive) and served at
`http://<Publishers.Types.Local.Address>:<Port>/<execution_id>.tar.gz` by a small server this
publisher owns. Port 0 picks a free port; the URL always carries the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import tarfile
from collections.abc import Generator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from bacalhau.asgi_server import BoundedHttpTools
from bacalhau.compute.publishers.archive import write_archive
from bacalhau.models.constants import PUBLISHER_LOCAL
from bacalhau.models.errors import ConfigurationError, PublishError
from bacalhau.models.job import SpecConfig

_ARCHIVE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.tar\.gz")
_EXECUTION_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_READY_TIMEOUT_S = 10.0


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone (the node owns them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install nothing: uvicorn's default would take over SIGINT/SIGTERM for the whole process."""
        yield


class LocalPublisher:
    """Packs results into a tar.gz and serves the folder of archives over HTTP (GET only, no listing)."""

    def __init__(self, *, data_dir: Path, address: str = "127.0.0.1", port: int = 6001) -> None:
        self.published_dir = Path(data_dir) / "compute" / "published"
        self._address = address
        self._requested_port = port
        self._port: int | None = None
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def port(self) -> int | None:
        """The port the server listens on, or None while it is stopped."""
        return self._port

    def is_installed(self) -> bool:
        """Always available; the server starts with the node (or on first publish)."""
        return True

    def validate(self, spec: SpecConfig) -> None:
        """The local publisher has no params; any given are ignored, as in Bacalhau."""

    async def start(self) -> None:
        """Bind the socket and start serving. Idempotent. Raises ConfigurationError if the port is taken."""
        async with self._lock:
            if self._task is not None:
                return
            self.published_dir.mkdir(parents=True, exist_ok=True)
            sock = self._bind()
            config = uvicorn.Config(
                self._app(), log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1,
                # httptools with a cap on a request's head, as the node's API (asgi_server.BoundedHttpTools).
                http=BoundedHttpTools,
            )
            server = _EmbeddedServer(config)
            task = asyncio.create_task(server.serve(sockets=[sock]), name="local-publisher-server")
            # The socket already listens, so early clients wait in its backlog; we only wait here to
            # surface a server that dies while starting. uvicorn offers a flag, not an event, to wait on.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + _READY_TIMEOUT_S
            while not server.started and not task.done() and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            if task.done() or not server.started:
                task.cancel()
                sock.close()
                raise ConfigurationError("the local publisher's HTTP server did not start", component="Publisher")
            self._server, self._task = server, task
            self._port = sock.getsockname()[1]

    async def stop(self) -> None:
        """Stop serving and wait for the server task to end. Idempotent."""
        async with self._lock:
            server, task = self._server, self._task
            self._server = self._task = None
            self._port = None
            if server is None or task is None:
                return
            server.should_exit = True
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise  # we were cancelled ourselves; the server task is already on its way out

    def url_for(self, execution_id: str) -> str:
        """The download URL of an execution's archive (the server must be running)."""
        if self._port is None:
            raise PublishError("the local publisher's server is not running")
        return f"http://{_url_host(self._address)}:{self._port}/{execution_id}.tar.gz"

    async def publish(
        self, spec: SpecConfig, execution_id: str, job_id: str, results_dir: Path, *, node_id: str = ""
    ) -> SpecConfig:
        """Archive `results_dir` atomically and return `{Type: local, Params: {URL: ...}}`. Idempotent."""
        if not _EXECUTION_ID_RE.fullmatch(execution_id):
            raise PublishError(f"cannot publish execution {execution_id!r}: not a valid execution ID")
        await self.start()
        target = self.published_dir / f"{execution_id}.tar.gz"
        try:
            await asyncio.to_thread(write_archive, results_dir, target)
        except (OSError, tarfile.TarError) as exc:
            raise PublishError(
                f"could not publish the results of {execution_id}: {exc}",
                hint="check free disk space and permissions under the node's DataDir",
                retryable=True,
            ) from exc
        return SpecConfig(type=PUBLISHER_LOCAL, params={"URL": self.url_for(execution_id)})

    def _bind(self) -> socket.socket:
        host = self._address or "0.0.0.0"
        try:
            family, kind, proto, _, addr = socket.getaddrinfo(host, self._requested_port, type=socket.SOCK_STREAM)[0]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise ConfigurationError(
                f"invalid local publisher address {host!r}: {exc}",
                component="Publisher",
                hint="check Publishers.Types.Local.Address",
            ) from exc
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise ConfigurationError(
                f"the local publisher cannot listen on {host}:{self._requested_port}: {exc}",
                component="Publisher",
                hint="choose another Publishers.Types.Local.Port (0 picks a free one)",
            ) from exc
        return sock

    def _app(self) -> Starlette:
        folder = self.published_dir

        async def download(request: Request) -> Response:
            """GET /<execution_id>.tar.gz: the archive, or 404."""
            name = str(request.path_params["name"])
            # Only plain archive names inside the folder: no separators, no `..`, no hidden files.
            path = folder / name
            if not _ARCHIVE_RE.fullmatch(name) or not path.is_file():
                return PlainTextResponse("not found", status_code=404)
            return FileResponse(path, media_type="application/gzip", filename=name)

        return Starlette(routes=[Route("/{name}", download, methods=["GET", "HEAD"])])


def _url_host(address: str) -> str:
    """A host clients can reach: wildcard binds become loopback; IPv6 literals get brackets."""
    if address in ("", "0.0.0.0"):
        return "127.0.0.1"
    if address == "::":
        return "[::1]"
    try:
        if isinstance(ipaddress.ip_address(address), ipaddress.IPv6Address):
            return f"[{address}]"
    except ValueError:
        pass
    return address
