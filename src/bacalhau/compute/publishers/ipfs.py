"""The `ipfs` publisher: an execution's results folder added to IPFS, recorded by its CID.

    results/<execution_id>/ {stdout, stderr, exitCode, <result path names>/}
        --IpfsClient.add--> directory CID (pinned) --> PublishedResult {Type: ipfs, Params: {CID, Providers}}

`CID` is Bacalhau's one param. `Providers` (our addition) lists the swarm addresses of the embedded
node that holds the data, so that `bacalhau job get` can dial it directly on networks without a DHT
(loopback, private clusters); Bacalhau's clients ignore params they do not know.
"""

from __future__ import annotations

from pathlib import Path

from bacalhau.ipfs.base import IpfsClient
from bacalhau.models.constants import PUBLISHER_IPFS
from bacalhau.models.errors import BacalhauError, PublishError
from bacalhau.models.job import SpecConfig


class IpfsPublisher:
    """Adds results to the node's IPFS client and pins them, so they stay retrievable."""

    def __init__(self, *, client: IpfsClient) -> None:
        self._client = client

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
        try:
            await self._client.start()
            cid = await self._client.add(results_dir)
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
