"""NodeManager: handshakes, heartbeats, node info, membership events and persistence across restarts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest
from tests.orchestrator.node_harness import FakeMonotonic

from bacalhau.models.clock import rfc3339
from bacalhau.models.errors import ConfigurationError
from bacalhau.models.node import NODE_TYPE_REQUESTER, ConnectionStatus, Membership, NodeInfo, NodeState
from bacalhau.models.resources import Resources
from bacalhau.orchestrator.node_store import SQLiteNodeStore
from bacalhau.orchestrator.nodes import AWAITING_RECONNECT, NodeChange, NodeEvent, NodeManager
from factories import FakeClock, make_node_info

AVAILABLE = Resources(CPU=1.5, Memory=2_000_000_000, Disk=10_000_000_000)
QUEUED = Resources(CPU=0.5, Memory=500_000_000)


class CountingStore(SQLiteNodeStore):
    """The real store, counting the writes that reach it."""

    writes = 0

    def put_many(self, states: Iterable[NodeState]) -> None:
        self.writes += 1
        super().put_many(states)

    def put_heartbeats(self, last_heartbeats: Mapping[str, str]) -> None:
        self.writes += 1
        super().put_heartbeats(last_heartbeats)


@pytest.fixture
def store(nodes_db: Path) -> Iterator[CountingStore]:
    """This module's store is the node store (the conftest's `store` is the job store)."""
    opened = CountingStore(path=nodes_db)
    try:
        yield opened
    finally:
        opened.close()


def manager(
    store: SQLiteNodeStore, clock: FakeClock, mono: FakeMonotonic, events: list[NodeEvent], *, manual: bool = False
) -> NodeManager:
    nodes = NodeManager(store=store, manual_approval=manual, clock_ns=clock, monotonic_s=mono)
    nodes.on_change(events.append)
    return nodes


@pytest.fixture
def nodes(store: CountingStore, clock: FakeClock, mono: FakeMonotonic, events: list[NodeEvent]) -> NodeManager:
    return manager(store, clock, mono, events)


def stored(path: Path) -> list[NodeState]:
    """What another process opening the file would read."""
    reader = SQLiteNodeStore(path=path)
    try:
        return reader.load()
    finally:
        reader.close()


def join(nodes: NodeManager, info: NodeInfo | None = None) -> str:
    info = info or make_node_info()
    assert nodes.handshake(info).accepted
    return info.node_id


def test_heartbeat_from_an_unknown_node_asks_for_a_handshake(nodes: NodeManager) -> None:
    assert nodes.heartbeat("n-unknown", AVAILABLE, QUEUED) is False


def test_heartbeat_from_a_rejected_node_asks_for_a_handshake_that_is_refused(nodes: NodeManager) -> None:
    info = make_node_info()
    join(nodes, info)
    nodes.reject(info.node_id)
    assert nodes.heartbeat(info.node_id, AVAILABLE, QUEUED) is False
    admission = nodes.handshake(info)
    assert (admission.accepted, admission.reason) == (False, "node has been rejected")


def test_heartbeat_after_a_shutdown_notice_asks_for_a_handshake(nodes: NodeManager) -> None:
    node_id = join(nodes)
    nodes.shutdown(node_id)
    state = nodes.get(node_id)
    assert state.connection_state.status is ConnectionStatus.DISCONNECTED
    assert state.connection_state.last_error == "graceful shutdown"
    assert nodes.heartbeat(node_id, AVAILABLE, QUEUED) is False


def test_heartbeats_show_live_capacity_and_time_in_the_node_list(nodes: NodeManager, clock: FakeClock) -> None:
    node_id = join(nodes)
    clock.advance(15)
    assert nodes.heartbeat(node_id, AVAILABLE, QUEUED) is True
    [state] = nodes.list()
    assert state.connection_state.last_heartbeat == rfc3339(clock.now_ns)
    assert state.info.compute_node_info is not None
    assert state.info.compute_node_info.available_capacity == AVAILABLE
    assert state.info.compute_node_info.queue_capacity == QUEUED
    wire = state.to_wire()["Info"]["ComputeNodeInfo"]
    assert wire["AvailableCapacity"]["CPU"] == 1.5 and wire["QueueCapacity"]["CPU"] == 0.5


def test_a_node_that_is_not_a_compute_node_is_refused(nodes: NodeManager) -> None:
    admission = nodes.handshake(make_node_info(node_type=NODE_TYPE_REQUESTER))
    assert (admission.accepted, admission.reason) == (False, "node is not a compute node")
    assert nodes.list() == []


def test_a_reconnecting_node_keeps_its_membership(
    store: CountingStore, clock: FakeClock, mono: FakeMonotonic, events: list[NodeEvent]
) -> None:
    nodes = manager(store, clock, mono, events, manual=True)
    info = make_node_info()
    assert nodes.handshake(info).reason == "node registered"
    assert nodes.get(info.node_id).membership is Membership.PENDING
    nodes.approve(info.node_id)
    nodes.shutdown(info.node_id)
    assert nodes.handshake(info).reason == "node reconnected"
    state = nodes.get(info.node_id)
    assert (state.membership, state.connection_state.status) == (Membership.APPROVED, ConnectionStatus.CONNECTED)
    assert state.connection_state.last_error == ""


def test_a_deleted_node_that_handshakes_again_is_registered_as_new(
    store: CountingStore, clock: FakeClock, mono: FakeMonotonic, events: list[NodeEvent]
) -> None:
    nodes = manager(store, clock, mono, events, manual=True)
    info = make_node_info()
    join(nodes, info)
    nodes.approve(info.node_id)
    nodes.delete(info.node_id)
    assert nodes.handshake(info).reason == "node registered"
    assert nodes.get(info.node_id).membership is Membership.PENDING


def test_membership_and_known_nodes_survive_a_restart(
    store: CountingStore, nodes_db: Path, clock: FakeClock, mono: FakeMonotonic, events: list[NodeEvent]
) -> None:
    nodes = manager(store, clock, mono, events, manual=True)
    approved, pending, rejected, gone = (make_node_info() for _ in range(4))
    for info in (approved, pending, rejected, gone):
        join(nodes, info)
    nodes.approve(approved.node_id)
    nodes.reject(rejected.node_id)
    nodes.shutdown(gone.node_id)
    store.close()

    reopened = SQLiteNodeStore(path=nodes_db)
    try:
        check_restarted(manager(reopened, clock, mono, [], manual=True), approved, pending, rejected, gone)
    finally:
        reopened.close()


def check_restarted(restarted: NodeManager, approved: NodeInfo, pending: NodeInfo, rejected: NodeInfo, gone: NodeInfo) -> None:
    shown = {s.info.node_id: s for s in restarted.list()}
    assert {k: s.membership for k, s in shown.items()} == {
        approved.node_id: Membership.APPROVED,
        pending.node_id: Membership.PENDING,
        rejected.node_id: Membership.REJECTED,
        gone.node_id: Membership.PENDING,
    }
    # Nobody is connected to a fresh orchestrator; why, per node.
    assert {k: (s.connection_state.status, s.connection_state.last_error) for k, s in shown.items()} == {
        approved.node_id: (ConnectionStatus.DISCONNECTED, AWAITING_RECONNECT),
        pending.node_id: (ConnectionStatus.DISCONNECTED, AWAITING_RECONNECT),
        rejected.node_id: (ConnectionStatus.DISCONNECTED, "node rejected"),
        gone.node_id: (ConnectionStatus.DISCONNECTED, "graceful shutdown"),
    }
    assert all(s.connection is ConnectionStatus.DISCONNECTED for s in shown.values())
    assert restarted.heartbeat(approved.node_id, AVAILABLE, QUEUED) is False  # handshake first
    assert restarted.handshake(rejected).reason == "node has been rejected"
    assert restarted.handshake(pending).accepted
    assert restarted.get(pending.node_id).membership is Membership.PENDING


def test_heartbeats_are_written_in_batches_not_one_write_each(
    store: CountingStore, nodes_db: Path, clock: FakeClock, mono: FakeMonotonic, events: list[NodeEvent]
) -> None:
    nodes = manager(store, clock, mono, events)
    ids = [join(nodes) for _ in range(3)]
    writes_after_handshakes = store.writes
    for _ in range(100):
        clock.advance(15)
        for node_id in ids:
            assert nodes.heartbeat(node_id, AVAILABLE, QUEUED)
    assert store.writes == writes_after_handshakes


async def test_flush_writes_the_latest_heartbeat_times(
    store: CountingStore, nodes_db: Path, clock: FakeClock, mono: FakeMonotonic, events: list[NodeEvent]
) -> None:
    nodes = manager(store, clock, mono, events)
    ids = [join(nodes) for _ in range(3)]
    clock.advance(600)
    for node_id in ids:
        nodes.heartbeat(node_id, AVAILABLE, QUEUED)
    writes = store.writes
    await nodes.flush(chunk=2)
    assert store.writes == writes + 2  # 3 nodes in chunks of 2
    await nodes.flush()
    assert store.writes == writes + 2  # nothing new to write
    assert {s.connection_state.last_heartbeat for s in stored(nodes_db)} == {rfc3339(clock.now_ns)}


def test_node_info_updates_are_ignored_for_unknown_and_rejected_nodes(nodes: NodeManager) -> None:
    nodes.update_info(make_node_info(node_id="n-unknown"))
    assert nodes.list() == []
    info = make_node_info()
    join(nodes, info)
    nodes.update_info(info.model_copy(update={"labels": {"zone": "b"}}))
    assert nodes.get(info.node_id).info.labels == {"zone": "b"}
    nodes.reject(info.node_id)
    nodes.update_info(info.model_copy(update={"labels": {"zone": "c"}}))
    assert nodes.get(info.node_id).info.labels == {"zone": "b"}


def test_joins_and_leaves_are_announced(
    store: CountingStore, clock: FakeClock, mono: FakeMonotonic, events: list[NodeEvent]
) -> None:
    nodes = manager(store, clock, mono, events, manual=True)
    a, b, c = (join(nodes) for _ in range(3))
    assert [(e.node_id, e.change) for e in events] == [(n, NodeChange.JOIN) for n in (a, b, c)]
    events.clear()
    nodes.approve(a)  # a connected node that may now take work
    nodes.reject(b)  # connected: its executions must be placed again
    nodes.delete(c)
    nodes.shutdown(a)
    assert [(e.node_id, e.change, e.reason) for e in events] == [
        (a, NodeChange.JOIN, "node approved"),
        (b, NodeChange.LEAVE, "node rejected"),
        (c, NodeChange.LEAVE, "node deleted"),
        (a, NodeChange.LEAVE, "graceful shutdown"),
    ]
    events.clear()
    nodes.approve(b)  # disconnected: nothing to announce
    nodes.reject(a)  # already disconnected: nothing left to place again
    nodes.delete(a)
    assert events == []


def test_a_non_positive_disconnect_timeout_is_refused(store: CountingStore) -> None:
    with pytest.raises(ConfigurationError, match="DisconnectTimeout must be positive"):
        NodeManager(store=store, disconnect_timeout_s=0)


# ---- drain: a node stopping on purpose ------------------------------------------------------------


def test_a_draining_node_stays_connected_but_takes_no_new_work(nodes: NodeManager, events: list[NodeEvent]) -> None:
    node_id = join(nodes)
    events.clear()
    nodes.drain(node_id)
    assert nodes.get(node_id).connection_state.status is ConnectionStatus.CONNECTED
    assert not nodes.is_schedulable(node_id)
    assert nodes.draining() == frozenset({node_id})
    assert events == []  # not a LEAVE: its executions stay where they are
    assert nodes.heartbeat(node_id, AVAILABLE, QUEUED) is True


def test_a_node_that_drained_then_left_is_awaited_for_the_disconnect_timeout(
    nodes: NodeManager, mono: FakeMonotonic
) -> None:
    node_id = join(nodes)
    nodes.drain(node_id)
    nodes.shutdown(node_id)
    state = nodes.get(node_id)
    assert state.connection_state.status is ConnectionStatus.DISCONNECTED
    assert nodes.awaiting_reconnect() == frozenset({node_id}) and nodes.draining() == frozenset()
    mono.advance(nodes.disconnect_timeout_s + 1)
    assert nodes.check_health() == [node_id]
    assert nodes.awaiting_reconnect() == frozenset()


def test_a_drained_node_that_comes_back_is_schedulable_again(nodes: NodeManager) -> None:
    info = make_node_info()
    join(nodes, info)
    nodes.drain(info.node_id)
    nodes.shutdown(info.node_id)
    join(nodes, info)
    assert nodes.is_schedulable(info.node_id)
    assert nodes.awaiting_reconnect() == frozenset() and nodes.draining() == frozenset()


def test_a_plain_shutdown_notice_is_not_awaited(nodes: NodeManager) -> None:
    # Bacalhau's own notice (a Go node, no drain first): gone at once, as in Bacalhau.
    node_id = join(nodes)
    nodes.shutdown(node_id)
    assert nodes.awaiting_reconnect() == frozenset()
