"""The web UI's server inside `bacalhau serve`: uvicorn on WebUI.Listen, in the node's event loop."""

from __future__ import annotations

import contextlib

import uvicorn

from bacalhau.asgi_server import BoundedHttpTools, bound_port, serve
from bacalhau.models.errors import ConfigurationError
from bacalhau.webui.app import create_app
from bacalhau.webui.backend import Backend
from bacalhau.webui.guard import LOOPBACK_HOSTS


def split_listen(listen: str) -> tuple[str, int]:
    """`host:port` (`[::1]:8438` for IPv6) -> (host, port). ConfigurationError for anything else."""
    host, sep, port_text = listen.strip().rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigurationError(f"invalid WebUI.Listen {listen!r}: expected host:port", hint="e.g. 0.0.0.0:8438")
    return host.strip("[]") or "0.0.0.0", int(port_text)


def allowed_hosts(bind_host: str, names: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The Host names the UI answers to: loopback's when it listens there, its address when it listens
    on one; on every address, `names` (API.AllowedHosts) if given, else any (None)."""
    host = bind_host.strip("[]").lower()
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        return (*LOOPBACK_HOSTS, host, *names)
    if host not in ("0.0.0.0", "::", ""):
        return (host, *names)
    return (*LOOPBACK_HOSTS, *names) if names else None


async def serve_web_ui(
    stack: contextlib.AsyncExitStack, *, host: str, port: int, backend_url: str, verify_tls: bool = True,
    ca_file: str = "", host_names: tuple[str, ...] = (),
) -> str:
    """Serve the UI for the API at `backend_url`; return its URL (a loopback one for 0.0.0.0)."""
    app = create_app(Backend(base_url=backend_url.rstrip("/"), verify_tls=verify_tls, ca_file=ca_file),
                     allowed_hosts=allowed_hosts(host, host_names))
    server = await serve(
        stack,
        uvicorn.Config(app, host=host, port=port, proxy_headers=False, log_level="warning", log_config=None,
                       lifespan="off", http=BoundedHttpTools, timeout_graceful_shutdown=2),
        what="Web UI",
        hint="choose another address with -c WebUI.Listen=<host>:<port>",
    )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{bound_port(server, default=port)}"
