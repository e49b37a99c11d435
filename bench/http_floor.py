"""The HTTP floor: an empty FastAPI route served by uvicorn the way the node serves its API.

    .venv/bin/python bench/http_floor.py serve --port 8080      (serves until interrupted)

`FloorServer` runs that as a subprocess on a free loopback port for the duration of a `with` block, so that
the load generator can hit it with exactly the settings it uses on the node. The uvicorn settings are the
node's (bacalhau/node.py: h11, log level warning, no lifespan, no proxy headers, the same bound on a
request's head, the default asyncio loop); what is missing is everything the node does per request, so
the node's figures divided by these say what our code costs on top of the framework.

    PUT /floor   reads the body and answers {"JobID": "floor"} (what a job submission looks like on the wire)
    GET /floor   answers a small JSON object (the floor of a describe or a list)
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from hybrid_node import free_port, stop_group

try:
    from bacalhau.asgi_server import BoundedHttpTools

    # The node's HTTP settings, whatever tree PYTHONPATH puts first: an older one served h11.
    HTTP_SETTINGS: dict[str, object] = {"http": BoundedHttpTools}
except ImportError:
    HTTP_SETTINGS = {"http": "h11", "h11_max_incomplete_event_size": 64 * 1024}

PATH = "/floor"


def create_app() -> FastAPI:
    """The empty application: one route, two methods, no middleware."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.put(PATH)
    async def submit(request: Request) -> JSONResponse:
        """Read the body, as the node must, and answer at once."""
        await request.body()
        return JSONResponse({"JobID": "floor"})

    @app.get(PATH)
    async def read() -> JSONResponse:
        """Answer at once."""
        return JSONResponse({"ID": "floor"})

    return app


def serve(port: int) -> None:
    """Serve the floor app on 127.0.0.1:`port` with the node's uvicorn settings until SIGTERM/SIGINT."""
    config = uvicorn.Config(
        create_app(), host="127.0.0.1", port=port, proxy_headers=False, log_level="warning", log_config=None,
        lifespan="off", timeout_graceful_shutdown=2, **HTTP_SETTINGS,  # type: ignore[arg-type]
    )
    asyncio.run(uvicorn.Server(config).serve())


class FloorServer:
    """`http_floor.py serve` in a subprocess for the duration of a `with` block."""

    def __init__(self, *, ready_timeout_s: float = 20.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready_timeout_s = ready_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="bench-http-floor-"))

    @property
    def log_path(self) -> Path:
        """The file the server's stdout and stderr go to (gone once the `with` block ends)."""
        return self._dir / "serve.log"

    def __enter__(self) -> FloorServer:
        cmd = [sys.executable, str(Path(__file__).resolve()), "serve", "--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        deadline = time.monotonic() + self._ready_timeout_s
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline and self._proc.poll() is None:
                try:
                    if http.get(self.url + PATH).status_code == 200:
                        return self
                except httpx.HTTPError:
                    time.sleep(0.05)
        self.__exit__(None, None, None)
        raise SystemExit("the HTTP floor server did not become ready")

    @property
    def pid(self) -> int:
        """Process id of the floor server."""
        assert self._proc is not None, "floor server not started"
        return self._proc.pid

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stop_group(self._proc)
        shutil.rmtree(self._dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    """`serve --port N`: serve the floor app in the foreground."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="serve the empty route in the foreground")
    serve_cmd.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
