"""The `ipfs` publisher: an execution's results folder added to IPFS, recorded by its CID.

    results/<execution_id>/ {stdout, stderr, exitCode, <result path names>/}
        --IpfsClient.add--> directory CID (pinned) --> PublishedResult {Type: ipfs, Params: {CID, Providers}}

`CID` is Bacalhau's one param. `Providers` (our addition) lists the swarm addresses of the embedded
node that holds the data, so that `bacalhau job get` can dial it directly on networks without a DHT
(loopback, private clusters); Bacalhau's clients ignore params they do not know.

Release (results retention, once executions expire; see compute/retention.py)::

    expired executions' PublishedResults --(PinGate: no publish in flight, none starts)-->
      CID published by this IPFS node?  (a Providers address ends in this client's own /p2p/<peer ID>)
          no  -> left alone: not ours to unpin (another node, an endpoint since changed, no Providers)
      CID still in use?  an execution still kept names it (in_use: the execution store), or this
                         process published it in the last RECENT_S (its record may not name it yet)
          yes -> kept: content addressing gives identical results one CID, and one pin
      otherwise -> IpfsClient.unpin: the embedded repo deletes the blocks no pin holds any more;
                   a Kubo daemon (IPFS.Connect / Publishers.Types.IPFS.Endpoint) loses the pin only

Only CIDs this compute node recorded as its own publishing are ever unpinned, through the client that
published them, even on a Kubo daemon the user runs: the node pinned them there. A daemon's pin has no
owner, though: if the user also pinned the very same content there themselves, that pin goes too.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

from bacalhau.compute.publishers.base import PinRelease
from bacalhau.compute.publishers.pin_gate import PinGate
from bacalhau.ipfs.base import IpfsClient
from bacalhau.ipfs.cid import is_valid_cid
from bacalhau.models.constants import PUBLISHER_IPFS
from bacalhau.models.errors import BacalhauError, PublishError
from bacalhau.models.job import SpecConfig

logger = logging.getLogger(__name__)

# Between a publish returning and the execution store naming its CID there are a few steps of this
# process (milliseconds); a release treats a CID published this recently as in use, whatever the store says.
RECENT_S = 600.0


class IpfsPublisher:
    """Adds results to the node's IPFS client and pins them, so they stay retrievable until released."""

    def __init__(self, *, client: IpfsClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self._gate = PinGate()
        self._recent: OrderedDict[str, float] = OrderedDict()  # CID -> when last published, oldest first

    async def start(self) -> None:
        """Nothing to do yet: the IPFS client starts on the first IPFS job, so other nodes never pay for it."""

    async def stop(self) -> None:
        """Stop the node's IPFS client (shared with the other ipfs plugin; stopping twice is harmless)."""
        await self._client.stop()

    def is_installed(self) -> bool:
        """True when the node's IPFS client can be used."""
        return self._client.is_available()

    def validate(self, spec: SpecConfig) -> None:
        """The ipfs publisher has no params; any given are ignored, as in Bacalhau."""

    async def publish(
        self, spec: SpecConfig, execution_id: str, job_id: str, results_dir: Path, *, node_id: str = ""
    ) -> SpecConfig:
        """Add and pin `results_dir`; return `{Type: ipfs, Params: {CID, Providers}}`. Idempotent (same CID)."""
        async with self._gate.publishing():
            try:
                await self._client.start()
                cid = await self._client.add(results_dir)
                self._remember(cid)  # `add` pinned it: recent from now on, even if what follows fails
                await self._client.pin(cid)
                providers = await self._client.addresses()
            except BacalhauError as exc:
                raise PublishError(
                    f"could not publish the results of {execution_id} to IPFS: {exc.message}",
                    hint=exc.hint,
                    retryable=True,
                ) from exc
        params: dict[str, object] = {"CID": cid}
        if providers:
            params["Providers"] = providers
        return SpecConfig(Type=PUBLISHER_IPFS, Params=params)

    async def release(
        self, published: Mapping[str, SpecConfig], *, in_use: Callable[[set[str]], set[str]]
    ) -> PinRelease:
        """Unpin the CIDs this node published for the expired executions in `published`, except those
        still in use (see the module docstring). Never raises for an IPFS failure: the executions whose
        CIDs could not be unpinned come back as `pending`."""
        held = {execution_id: cid for execution_id, spec in published.items() if (cid := _published_cid(spec))}
        if not held or not self._client.is_available():
            return PinRelease()  # no client can ever run here: nothing of ours can be unpinned
        async with self._gate.releasing():
            try:
                await self._client.start()
                own = {address.rpartition("/p2p/")[2] for address in await self._client.addresses()}
                ours = {cid for execution_id, cid in held.items() if _provider_ids(published[execution_id]) & own}
                kept = (in_use(ours) | self._recently_published(ours)) if ours else set()
                unpinning = sorted(ours - kept)
                freed = await self._client.unpin(unpinning)
            except BacalhauError as exc:
                logger.warning("results retention: could not unpin expired IPFS results: %s", exc.message)
                return PinRelease(pending=frozenset(held))
        return PinRelease(unpinned=len(unpinning), freed_bytes=freed)

    def _remember(self, cid: str) -> None:
        self._recent[cid] = self._clock()
        self._recent.move_to_end(cid)
        self._forget_old()

    def _recently_published(self, cids: set[str]) -> set[str]:
        self._forget_old()
        return cids & self._recent.keys()

    def _forget_old(self) -> None:
        horizon = self._clock() - RECENT_S
        while self._recent and next(iter(self._recent.values())) < horizon:
            self._recent.popitem(last=False)


def _published_cid(spec: SpecConfig) -> str | None:
    """The CID of an ipfs PublishedResult, or None for another type or a malformed one."""
    cid = spec.param("CID") if spec.is_type(PUBLISHER_IPFS) else None
    return cid if isinstance(cid, str) and is_valid_cid(cid) else None


def _provider_ids(spec: SpecConfig) -> set[str]:
    """The peer IDs of the `Providers` addresses of a PublishedResult (empty when it lists none)."""
    providers = spec.param("Providers")
    if not isinstance(providers, list):
        return set()
    return {str(address).rpartition("/p2p/")[2] for address in providers if "/p2p/" in str(address)} - {""}
