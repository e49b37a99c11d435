"""EmbeddedIpfsNode beyond the conformance suite: its repo config, identity and lifecycle."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import pytest

from bacalhau.ipfs.embedded import EmbeddedIpfsNode
from bacalhau.models.errors import ErrorCode, StorageError
from ipfs_env import NodeFactory, require_libkubo, unreachable_cid


async def test_the_repo_is_configured_for_a_private_loopback_swarm(start_node: NodeFactory, tmp_path: Path) -> None:
    a = await start_node("a")
    peer = (await a.addresses())[0]

    b = await start_node("b", peers=[peer])

    config = json.loads((tmp_path / "b" / "config").read_text())
    port = int((await b.addresses())[0].split("/tcp/")[1].split("/")[0])
    assert config["Addresses"]["Swarm"] == [f"/ip4/127.0.0.1/tcp/{port}"]  # port 0 resolved and kept
    assert config["Bootstrap"] == []
    assert config["Discovery"]["MDNS"]["Enabled"] is False
    assert config["Swarm"]["DisableNatPortMap"] is True
    address, _, peer_id = peer.rpartition("/p2p/")
    assert config["Peering"]["Peers"] == [{"ID": peer_id, "Addrs": [address]}]
    assert (tmp_path / "b" / "config").stat().st_mode & 0o077 == 0  # it holds the private key


async def test_a_restarted_node_keeps_its_identity(tmp_path: Path) -> None:
    require_libkubo()
    async with EmbeddedIpfsNode(tmp_path / "repo") as node:
        first = (await node.addresses())[0].rpartition("/p2p/")[2]
    async with EmbeddedIpfsNode(tmp_path / "repo") as node:
        assert (await node.addresses())[0].rpartition("/p2p/")[2] == first


async def test_a_taken_swarm_port_fails_start_with_a_hint(start_node: NodeFactory) -> None:
    # A plain listener: libp2p sets SO_REUSEPORT, so two Kubo nodes could share a port, but not this.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(StorageError) as caught:
            await start_node("b", swarm_port=port)

    assert str(port) in caught.value.hint
    assert caught.value.code == ErrorCode.ServiceUnavailable


async def test_a_malformed_peer_fails_start(tmp_path: Path) -> None:
    node = EmbeddedIpfsNode(tmp_path / "repo", peers=["/ip4/127.0.0.1/tcp/4001"])

    with pytest.raises(StorageError, match="not a peer multiaddr") as caught:
        await node.start()

    assert caught.value.code == ErrorCode.BadRequest


async def test_calls_before_start_fail_saying_so(tmp_path: Path) -> None:
    node = EmbeddedIpfsNode(tmp_path / "repo")

    for call in (node.addresses(), node.pin("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")):
        with pytest.raises(StorageError, match="not started"):
            await call
    await node.stop()  # stopping a node that never started is fine


def test_is_available_does_not_load_the_library(tmp_path: Path) -> None:
    assert EmbeddedIpfsNode(tmp_path, library_path=tmp_path / "libkubo.so").is_available()


async def test_more_stuck_fetches_than_worker_threads_all_time_out(start_node: NodeFactory, tmp_path: Path) -> None:
    node = await start_node("a")
    stuck = 12  # more than asyncio's default executor has threads on a small machine

    results = await asyncio.gather(
        *(node.get(unreachable_cid(), tmp_path / f"never-{i}", timeout_s=0.5) for i in range(stuck)),
        return_exceptions=True,
    )

    assert all(isinstance(r, StorageError) and r.code == ErrorCode.TimeOut for r in results), results
    assert sorted(os.listdir(tmp_path)) == ["a"]  # no partial destinations
    source = tmp_path / "a-file"
    source.write_bytes(b"the node still works")
    assert await node.cat(await node.add(source)) == b"the node still works"
