"""KuboRpcClient: an IpfsClient speaking a Kubo daemon's RPC API (`/api/v0/...`) over HTTP.

Every route is a POST with its arguments in the query string, as Kubo requires:

    add           multipart body (see multipart.py)       -> one JSON line per entry {Name, Hash, Size}
    get?arg=CID   tar stream (see unpack.py)
    cat?arg=CID   the file's bytes
    pin/add?arg=CID, pin/rm?arg=CID, swarm/connect?arg=ADDR, id  -> JSON
    errors        HTTP 500 with {"Message": ..., "Code": 0, "Type": "error"}

Fetches send Kubo's global `timeout` option, so the daemon stops looking for an unreachable CID when
we stop waiting; our own deadline (plus a grace for the reply) bounds the request on our side too.

`unpin` removes pins only. The daemon is the user's: running its garbage collection (`repo/gc`) would
also drop whatever else it caches unpinned, and block its adds meanwhile; its own GC policy
(`ipfs daemon --enable-gc`, or `ipfs repo gc`) frees the blocks of what we unpinned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from bacalhau.ipfs import multipart
from bacalhau.ipfs.base import DEFAULT_FETCH_TIMEOUT_S
from bacalhau.ipfs.cid import require_valid_cid
from bacalhau.ipfs.repo_config import split_peer_multiaddr
from bacalhau.ipfs.rpc_address import rpc_base_url
from bacalhau.ipfs.staging import staged_destination
from bacalhau.ipfs.unpack import unpack_single_root
from bacalhau.models.errors import ErrorCode, StorageError

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 30.0  # calls that fetch nothing (id, swarm/connect) and the connect phase of all
REPLY_GRACE_S = 5.0  # past Kubo's own `timeout`, for its error reply to reach us
_DEADLINE_MESSAGES = ("context deadline exceeded", "timeout")
# Kubo's answer to an offline lookup of a block it does not hold ("block was not found locally (offline)").
_NOT_LOCAL_MESSAGE = "not found"
_NOT_PINNED_MESSAGE = "not pinned"  # Kubo's pin/rm of a CID without a recursive pin: "not pinned or pinned indirectly"


class KuboRpcClient:
    """An IpfsClient for the Kubo RPC API at `address` (`http://host:port` or `/ip4/host/tcp/port`)."""

    def __init__(
        self,
        address: str,
        *,
        peers: Sequence[str] = (),
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = rpc_base_url(address)
        self._peers = list(peers)
        self._request_timeout_s = request_timeout_s
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    @property
    def base_url(self) -> str:
        """The API's base URL, e.g. http://127.0.0.1:5001."""
        return self._base_url

    def is_available(self) -> bool:
        """Always True: an endpoint is configured (whether it answers shows at start())."""
        return True

    async def start(self) -> None:
        """Open the HTTP client, check that Kubo answers `/api/v0/id`, dial the peers. Idempotent."""
        if self._http is not None:
            return
        http = httpx.AsyncClient(base_url=self._base_url, timeout=self._request_timeout_s, transport=self._transport)
        try:
            await self._json(http, "id", {}, what=f"reaching the Kubo RPC API at {self._base_url}")
        except BaseException:
            await http.aclose()
            raise
        self._http = http
        for peer in self._peers:
            try:
                await self.connect(peer)
            except StorageError as exc:  # a peer may come up later
                log.warning("IPFS peer %s not reachable yet: %s", peer, exc.message)

    async def stop(self) -> None:
        """Close the HTTP client. Idempotent."""
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    async def __aenter__(self) -> KuboRpcClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def add(self, path: Path) -> str:
        """Add (and pin) a file or directory tree; return the CID Kubo reports for its root."""
        http = self._require_started()
        source = await asyncio.to_thread(Path(path).resolve)
        if not await asyncio.to_thread(source.exists):
            raise StorageError(f"cannot add {path} to IPFS: it does not exist", code=ErrorCode.NotFound)
        entries = await asyncio.to_thread(multipart.walk_entries, source)
        boundary = multipart.new_boundary()
        what = f"adding {path}"
        async with self._request(
            http,
            "add",
            {"pin": "true", "progress": "false"},
            what=what,
            content=multipart.encode_entries(entries, boundary),
            headers={"Content-Type": multipart.content_type(boundary)},
        ) as response:
            body = await response.aread()
        added = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        root = entries[0].name
        for item in reversed(added):  # Kubo lists children first and the root last
            if isinstance(item, dict) and item.get("Name") == root and item.get("Hash"):
                return str(item["Hash"])
        raise StorageError(f"{what}: Kubo's reply names no CID for {root!r}: {body[:200]!r}")

    async def get(self, cid: str, dest: Path, *, timeout_s: float = DEFAULT_FETCH_TIMEOUT_S) -> Path:
        """Fetch `cid` into `dest` atomically (see IpfsClient.get)."""
        require_valid_cid(cid)
        http = self._require_started()
        what = f"fetching {cid}"
        async with staged_destination(Path(dest), cid=cid) as target:
            archive = target.with_name("archive.tar")
            async with (
                self._deadline(what, timeout_s),
                self._request(http, "get", self._fetch_params(cid, timeout_s), what=what, timeout_s=timeout_s) as reply,
            ):
                handle = await asyncio.to_thread(archive.open, "wb")
                try:
                    async for chunk in reply.aiter_bytes():
                        await asyncio.to_thread(handle.write, chunk)
                finally:
                    await asyncio.to_thread(handle.close)
            unpacked = target.with_name("unpacked")
            await asyncio.to_thread(unpacked.mkdir)
            await asyncio.to_thread(unpack_single_root, archive, unpacked, target, cid=cid)
        return Path(dest)

    async def cat(self, cid: str, *, timeout_s: float = DEFAULT_FETCH_TIMEOUT_S) -> bytes:
        """The bytes of a file CID."""
        require_valid_cid(cid)
        http = self._require_started()
        what = f"reading {cid}"
        async with (
            self._deadline(what, timeout_s),
            self._request(http, "cat", self._fetch_params(cid, timeout_s), what=what, timeout_s=timeout_s) as reply,
        ):
            return await reply.aread()

    async def has(self, cid: str) -> bool:
        """`block/stat` with `offline=true`: the daemon answers from its own blockstore, fetching nothing."""
        cid = require_valid_cid(cid)
        await self.start()
        try:
            await self._json(self._require_started(), "block/stat", {"arg": cid, "offline": "true"}, what=f"looking up {cid}")
        except StorageError as exc:
            if _NOT_LOCAL_MESSAGE in exc.message.lower():
                return False
            raise
        return True

    async def pin(self, cid: str, *, timeout_s: float = DEFAULT_FETCH_TIMEOUT_S) -> None:
        """Pin `cid` recursively on the daemon (it fetches what it lacks)."""
        require_valid_cid(cid)
        http = self._require_started()
        what = f"pinning {cid}"
        async with self._deadline(what, timeout_s):
            await self._json(http, "pin/add", self._fetch_params(cid, timeout_s), what=what, timeout_s=timeout_s)

    async def unpin(self, cids: Collection[str]) -> int:
        """Remove the daemon's recursive pins of `cids` (one not pinned is skipped); the blocks stay until
        the daemon's own garbage collection (see the module docstring), so 0 bytes are freed here."""
        wanted = [require_valid_cid(cid) for cid in dict.fromkeys(cids)]
        if not wanted:
            return 0
        http = self._require_started()
        for cid in wanted:
            try:
                await self._json(http, "pin/rm", {"arg": cid, "recursive": "true"}, what=f"unpinning {cid}")
            except StorageError as exc:
                if _NOT_PINNED_MESSAGE not in exc.message:
                    raise
        return 0

    async def connect(self, multiaddr: str) -> None:
        """Ask the daemon to dial a peer."""
        split_peer_multiaddr(multiaddr)
        await self._json(
            self._require_started(), "swarm/connect", {"arg": multiaddr}, what=f"connecting to {multiaddr}"
        )

    async def addresses(self) -> list[str]:
        """The daemon's swarm multiaddrs (from `/api/v0/id`), each ending in /p2p/<peer ID>."""
        identity = await self._json(self._require_started(), "id", {}, what="reading the node's identity")
        addresses = identity.get("Addresses") if isinstance(identity, dict) else None
        return [str(a) for a in addresses or [] if "/p2p/" in str(a)]

    # -- HTTP ---------------------------------------------------------------------------------------
    def _require_started(self) -> httpx.AsyncClient:
        if self._http is None:
            raise StorageError(f"the Kubo RPC client for {self._base_url} is not started", hint="call start() first")
        return self._http

    @staticmethod
    def _fetch_params(cid: str, timeout_s: float) -> dict[str, str]:
        # Kubo parses Go durations: integer milliseconds avoid the exponents of a float's repr.
        return {"arg": cid, "timeout": f"{max(1, int(timeout_s * 1000))}ms"}

    @contextlib.asynccontextmanager
    async def _deadline(self, what: str, timeout_s: float) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(timeout_s + REPLY_GRACE_S):
                yield
        except TimeoutError as exc:
            raise _timed_out(what, timeout_s) from exc

    async def _json(
        self,
        http: httpx.AsyncClient,
        route: str,
        params: Mapping[str, str],
        *,
        what: str,
        timeout_s: float | None = None,
    ) -> Any:
        async with self._request(http, route, params, what=what, timeout_s=timeout_s) as response:
            body = await response.aread()
        try:
            return json.loads(body) if body.strip() else {}
        except ValueError as exc:
            raise StorageError(f"{what}: Kubo replied with invalid JSON: {body[:200]!r}") from exc

    @contextlib.asynccontextmanager
    async def _request(
        self,
        http: httpx.AsyncClient,
        route: str,
        params: Mapping[str, str],
        *,
        what: str,
        timeout_s: float | None = None,
        content: AsyncIterator[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """A streamed POST to /api/v0/<route>; httpx and Kubo errors become StorageError."""
        read_s = None if timeout_s is None else timeout_s + REPLY_GRACE_S
        timeout = (
            httpx.Timeout(self._request_timeout_s, read=read_s) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        )
        try:
            async with http.stream(
                "POST", f"/api/v0/{route}", params=params, content=content, headers=headers, timeout=timeout
            ) as response:
                if response.status_code != httpx.codes.OK:
                    raise _kubo_error(what, response.status_code, await response.aread(), timeout_s)
                yield response
        except httpx.TimeoutException as exc:
            raise _timed_out(what, timeout_s or self._request_timeout_s) from exc
        except httpx.HTTPError as exc:
            raise StorageError(
                f"{what}: the Kubo RPC API at {self._base_url} is unreachable: {exc}",
                code=ErrorCode.NetworkFailure,
                hint="is the Kubo daemon running, and is its API address right?",
                retryable=True,
            ) from exc


def _kubo_error(what: str, status: int, body: bytes, timeout_s: float | None) -> StorageError:
    try:
        message = str(json.loads(body).get("Message") or "")
    except (ValueError, AttributeError):
        message = ""
    message = message or body.decode(errors="replace").strip()[:300] or f"HTTP {status}"
    if timeout_s is not None and any(hint in message for hint in _DEADLINE_MESSAGES):
        return _timed_out(what, timeout_s, cause=message)
    return StorageError(f"{what}: Kubo answered HTTP {status}: {message}")


def _timed_out(what: str, timeout_s: float, *, cause: str = "") -> StorageError:
    return StorageError(
        f"{what}: timed out after {timeout_s:g} s" + (f" ({cause})" if cause else ""),
        code=ErrorCode.TimeOut,
        hint="no peer of the Kubo node has this content: connect it to one that has, or raise the timeout",
        retryable=True,
    )
