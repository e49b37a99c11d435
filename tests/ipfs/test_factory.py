"""ipfs_client(): an empty endpoint gives an embedded node, anything else a Kubo RPC client."""

from __future__ import annotations

from pathlib import Path

import pytest

from bacalhau.ipfs.embedded import EmbeddedIpfsNode
from bacalhau.ipfs.factory import ipfs_client
from bacalhau.ipfs.rpc import KuboRpcClient
from bacalhau.models.errors import StorageError


@pytest.mark.parametrize("endpoint", ["", "  "])
def test_no_endpoint_gives_an_embedded_node_in_the_repo(endpoint: str, tmp_path: Path) -> None:
    client = ipfs_client(endpoint, repo_dir=tmp_path / "ipfs", swarm_port=0, peers=[])

    assert isinstance(client, EmbeddedIpfsNode)
    assert client.repo_dir == (tmp_path / "ipfs").resolve()


def test_an_endpoint_gives_an_rpc_client(tmp_path: Path) -> None:
    client = ipfs_client("/ip4/127.0.0.1/tcp/5001", repo_dir=tmp_path, peers=[])

    assert isinstance(client, KuboRpcClient)
    assert client.base_url == "http://127.0.0.1:5001"


def test_a_malformed_endpoint_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="not a Kubo RPC address"):
        ipfs_client("/ip4/127.0.0.1/udp/5001", repo_dir=tmp_path, peers=[])
