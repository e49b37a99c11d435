"""The `ipfs` input source: content fetched by CID onto the compute node's disk.

    CID --IpfsClient.get--> <work_dir>/<n>/content   (a file CID: a file; a directory CID: its tree)
                                      │
                                      └── mounted at the input's Target, as in Bacalhau: a directory
                                          CID's entries appear under Target, a file CID is Target itself

The client is the node's one IPFS client (embedded Kubo node or a Kubo RPC endpoint), shared with the
ipfs publisher and started on first use, so nodes that never see an IPFS job never start Kubo.
The fetch is bounded by `InputSources.ReadTimeout`: an unreachable CID fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import collections
import shutil
import time
from pathlib import Path

from bacalhau.compute.disk_usage import tree_size
from bacalhau.compute.holdings import HeldItem
from bacalhau.compute.storage.base import PreparedInput, input_name
from bacalhau.compute.storage.workdir import staging_folder
from bacalhau.ipfs.base import IpfsClient
from bacalhau.ipfs.cid import is_valid_cid
from bacalhau.locality.keys import KIND_IPFS, ipfs_key
from bacalhau.models.data_holdings import MAX_REPORTED_ENTRIES
from bacalhau.models.errors import BacalhauError, StorageError
from bacalhau.models.job import InputSource

CONTENT_NAME = "content"
# How long a CID's presence in the repo is believed before it is looked up again.
RECHECK_S = 60.0


class IpfsStorage:
    """Stages `ipfs` inputs with the node's IPFS client into a private copy that cleanup deletes."""

    def __init__(self, *, client: IpfsClient, timeout_s: float) -> None:
        self._client = client
        self._timeout_s = timeout_s
        # CIDs fetched by this process, newest last: CID -> (bytes, when). Kubo keeps their blocks until
        # its GC, so they are reported as held (HoldsData) while the repo still has them.
        self._fetched: collections.OrderedDict[str, tuple[int, float]] = collections.OrderedDict()
        self._checked: dict[str, tuple[bool, float]] = {}  # CID -> (in the repo, checked at: monotonic)

    async def start(self) -> None:
        """Nothing to do yet: the IPFS client starts on the first IPFS job, so other nodes never pay for it."""

    async def stop(self) -> None:
        """Stop the node's IPFS client (shared with the other ipfs plugin; stopping twice is harmless)."""
        await self._client.stop()

    def is_installed(self) -> bool:
        """True when the node's IPFS client can be used (Kubo's library loads, or an endpoint is set)."""
        return self._client.is_available()

    def validate(self, source: InputSource) -> None:
        """Raise StorageError when the CID is missing or not a CID."""
        self._cid(source)

    async def prepare(self, source: InputSource, work_dir: Path) -> PreparedInput:
        """Fetch the CID under a fresh numbered folder of `work_dir`; return the file or folder."""
        cid = self._cid(source)
        async with staging_folder(work_dir) as folder:
            try:
                await self._client.start()
                fetched = await self._client.get(cid, folder / CONTENT_NAME, timeout_s=self._timeout_s)
            except BacalhauError as exc:
                raise StorageError(f"ipfs input {input_name(source)!r}: {exc.message}", hint=exc.hint) from exc
        size = await asyncio.to_thread(tree_size, [fetched])
        self._fetched[cid] = (size, time.time())
        self._fetched.move_to_end(cid)
        while len(self._fetched) > MAX_REPORTED_ENTRIES:
            self._fetched.popitem(last=False)
        return PreparedInput(source=source, host_path=fetched, read_only=True, owned=True)

    async def cleanup(self, prepared: PreparedInput) -> None:
        """Delete the numbered folder `prepare` made. Idempotent."""
        if prepared.owned:
            await asyncio.to_thread(shutil.rmtree, prepared.host_path.parent, True)

    async def has_locally(self, source: InputSource) -> bool:
        """When the CID's root block is in the node's own IPFS repo (no network asked), as Bacalhau's
        HasCID decides it."""
        try:
            return await self._client.has(self._cid(source))
        except BacalhauError:
            return False

    def kept_kinds(self) -> list[str]:
        """ipfs: a fetched CID stays in the node's repo (HoldsData)."""
        return [KIND_IPFS]

    async def held(self) -> list[HeldItem]:
        """The CIDs this process fetched that the repo still has (HoldsData), each checked at most once
        every RECHECK_S seconds (a local lookup: no network)."""
        now = time.monotonic()
        items: list[HeldItem] = []
        for cid, (size, when) in list(self._fetched.items()):
            present, checked_at = self._checked.get(cid, (False, -RECHECK_S))
            if now - checked_at >= RECHECK_S:
                try:
                    present = await self._client.has(cid)
                except BacalhauError:
                    present = False
                self._checked[cid] = (present, now)
            if present:
                items.append(HeldItem(key=ipfs_key(cid), size=size, last_used=when))
        for cid in set(self._checked) - set(self._fetched):
            del self._checked[cid]
        return items

    def _cid(self, source: InputSource) -> str:
        cid = source.source.param("CID")
        if not isinstance(cid, str) or not cid.strip():
            raise StorageError(
                f"ipfs input {input_name(source)!r} has no CID",
                hint="set Source.Params.CID, or use -i ipfs://<CID>",
            )
        cid = cid.strip()
        if not is_valid_cid(cid):
            raise StorageError(
                f"ipfs input {input_name(source)!r}: {cid!r} is not a valid CID",
                hint="a CID looks like bafy... (v1) or Qm... (v0)",
            )
        return cid
