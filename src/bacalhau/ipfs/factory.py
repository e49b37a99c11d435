"""The one place an IpfsClient is chosen and built: an embedded node, or a Kubo daemon's RPC API."""

from __future__ import annotations

from pathlib import Path

from bacalhau.ipfs.base import IpfsClient


def ipfs_client(
    endpoint: str, *, repo_dir: Path, swarm_port: int = 0, swarm_host: str = "127.0.0.1", peers: list[str]
) -> IpfsClient:
    """An EmbeddedIpfsNode in `repo_dir` when `endpoint` is empty, else a KuboRpcClient for `endpoint`.

    `peers` (multiaddrs ending in /p2p/<ID>) are dialled at start by either. `repo_dir`, `swarm_host`
    and `swarm_port` only matter to the embedded node. Nothing is started or loaded here.
    Raises StorageError (ConfigurationError) for an endpoint that is not a Kubo RPC address.
    """
    # Imported here so that choosing one never imports the other's dependencies.
    if endpoint.strip():
        from bacalhau.ipfs.rpc import KuboRpcClient

        return KuboRpcClient(endpoint, peers=peers)
    from bacalhau.ipfs.embedded import EmbeddedIpfsNode

    return EmbeddedIpfsNode(repo_dir, swarm_port=swarm_port, swarm_host=swarm_host, peers=peers)
