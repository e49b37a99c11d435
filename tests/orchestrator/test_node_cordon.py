"""NodeManager.cordon / uncordon / cordoned: the node-side state of `bacalhau node drain|uncordon`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from tests.orchestrator.node_harness import FakeMonotonic

from bacalhau.models.clock import rfc3339, rfc3339_nano
from bacalhau.models.errors import BadRequestError, ConflictError, DatastoreError, ErrorCode, NotFoundError
from bacalhau.models.node import ConnectionStatus, Membership, NodeState
from bacalhau.orchestrator.node_store import SQLiteNodeStore
from bacalhau.orchestrator.nodes import CORDONED_MESSAGE, NodeChange, NodeEvent, NodeManager
from factories import FakeClock, make_node_info

MINUTE_NS = 60 * 1_000_000_000


class FailingStore(SQLiteNodeStore):
    """The real store, whose writes fail while `failing` is set."""

    failing = False

    def put_many(self, states: Iterable[NodeState]) -> None:
        if self.failing:
            raise DatastoreError("disk full", retryable=True)
        super().put_many(states)


@pytest.fixture
def node_store(nodes_db: Path) -> Iterator[FailingStore]:
    opened = FailingStore(path=nodes_db)
    try:
        yield opened
    finally:
        opened.close()


def manager(store: SQLiteNodeStore, clock: FakeClock, mono: FakeMonotonic, events: list[NodeEvent]) -> NodeManager:
    nodes = NodeManager(store=store, clock_ns=clock, monotonic_s=mono)
    nodes.on_change(events.append)
    return nodes


@pytest.fixture
def nodes(node_store: FailingStore, clock: FakeClock, mono: FakeMonotonic, events: list[NodeEvent]) -> NodeManager:
    return manager(node_store, clock, mono, events)


def join(nodes: NodeManager, node_id: str | None = None) -> str:
    info = make_node_info(node_id=node_id) if node_id else make_node_info()
    assert nodes.handshake(info).accepted
    return info.node_id


def test_cordoning_records_since_deadline_and_message_and_stops_new_work(nodes: NodeManager, clock: FakeClock) -> None:
    node_id = join(nodes)
    assert nodes.is_schedulable(node_id)
    deadline_ns = clock.now_ns + 10 * MINUTE_NS + 123  # nanoseconds kept exactly
    state = nodes.cordon(node_id, deadline_ns=deadline_ns, message="kernel upgrade")
    assert state.cordon is not None
    assert state.cordon.since == rfc3339(clock.now_ns)
    assert state.cordon.deadline == rfc3339_nano(deadline_ns)
    assert state.cordon.message == "kernel upgrade"
    assert nodes.get(node_id).cordon == state.cordon
    assert nodes.cordoned() == {node_id: deadline_ns}
    assert not nodes.is_schedulable(node_id)
    # The other dimensions are untouched: it is still an approved, connected node.
    assert state.membership is Membership.APPROVED and nodes.is_connected(node_id)
    wire = state.to_wire()["Cordon"]
    assert wire == {"Since": rfc3339(clock.now_ns), "Deadline": rfc3339_nano(deadline_ns), "Message": "kernel upgrade"}


def test_a_cordon_without_deadline_has_none_and_a_default_message(nodes: NodeManager) -> None:
    node_id = join(nodes)
    state = nodes.cordon(node_id, deadline_ns=None)
    assert state.cordon is not None and state.cordon.deadline is None and state.cordon.message == CORDONED_MESSAGE
    assert nodes.cordoned() == {node_id: None}
    assert state.to_wire()["Cordon"]["Deadline"] is None


def test_a_node_that_takes_work_shows_a_null_cordon(nodes: NodeManager) -> None:
    node_id = join(nodes)
    assert nodes.get(node_id).to_wire()["Cordon"] is None
    assert nodes.cordoned() == {}


def test_cordon_and_uncordon_emit_events_with_the_full_node_id(nodes: NodeManager, events: list[NodeEvent]) -> None:
    node_id = join(nodes)
    events.clear()
    nodes.cordon(node_id[:8], deadline_ns=None, message="maintenance")
    nodes.uncordon(node_id[:8])
    assert events == [
        NodeEvent(node_id, NodeChange.CORDONED, "maintenance"),
        NodeEvent(node_id, NodeChange.UNCORDONED, "node uncordoned"),
    ]


def test_uncordoning_lets_the_node_take_work_again(nodes: NodeManager) -> None:
    node_id = join(nodes)
    nodes.cordon(node_id, deadline_ns=None)
    state = nodes.uncordon(node_id)
    assert state.cordon is None and nodes.get(node_id).cordon is None
    assert nodes.cordoned() == {}
    assert nodes.is_schedulable(node_id)


def test_uncordoning_a_node_that_is_not_cordoned_is_a_409_conflict(nodes: NodeManager, events: list[NodeEvent]) -> None:
    node_id = join(nodes)
    events.clear()
    with pytest.raises(ConflictError, match=f"^node {node_id[:10]} is not cordoned$") as caught:
        nodes.uncordon(node_id[:10])
    assert caught.value.code is ErrorCode.ConflictNodeState and caught.value.http_status == 409
    assert events == []


def test_cordon_and_uncordon_resolve_a_unique_prefix_and_refuse_unknown_and_ambiguous_ids(nodes: NodeManager) -> None:
    first = join(nodes, "n-aaaa1111")
    join(nodes, "n-aaaa2222")
    assert nodes.cordon("n-aaaa1", deadline_ns=None).info.node_id == first
    assert nodes.cordoned() == {first: None}
    for action in (lambda i: nodes.cordon(i, deadline_ns=None), nodes.uncordon):
        with pytest.raises(BadRequestError, match="ambiguous"):
            action("n-aaaa")
        with pytest.raises(NotFoundError, match="node not found: n-nothere"):
            action("n-nothere")
    assert nodes.cordoned() == {first: None}


def test_draining_a_cordoned_node_again_changes_its_deadline_and_keeps_since(
    nodes: NodeManager, clock: FakeClock, events: list[NodeEvent]
) -> None:
    node_id = join(nodes)
    first = nodes.cordon(node_id, deadline_ns=clock.now_ns + 60 * MINUTE_NS, message="first").cordon
    clock.advance(300)
    events.clear()
    sooner_ns = clock.now_ns + MINUTE_NS
    second = nodes.cordon(node_id, deadline_ns=sooner_ns, message="sooner").cordon
    assert first is not None and second is not None
    assert second.since == first.since and second.deadline == rfc3339_nano(sooner_ns) and second.message == "sooner"
    assert nodes.cordoned() == {node_id: sooner_ns}
    assert events == [NodeEvent(node_id, NodeChange.CORDONED, "sooner")]  # re-evaluated for the new deadline


def test_the_cordon_survives_an_orchestrator_restart(
    node_store: FailingStore, clock: FakeClock, mono: FakeMonotonic, nodes: NodeManager
) -> None:
    drained, cordoned, free = join(nodes), join(nodes), join(nodes)
    deadline_ns = clock.now_ns + 10 * MINUTE_NS + 7
    nodes.cordon(drained, deadline_ns=deadline_ns, message="disk swap")
    nodes.cordon(cordoned, deadline_ns=None)
    before = nodes.get(drained).cordon
    restarted = manager(node_store, clock, mono, [])
    assert restarted.cordoned() == {drained: deadline_ns, cordoned: None}
    assert restarted.get(drained).cordon == before
    assert restarted.get(free).cordon is None
    # Awaiting its reconnect, then back: still cordoned, still no new work.
    assert restarted.handshake(make_node_info(node_id=drained)).accepted
    assert restarted.handshake(make_node_info(node_id=free)).accepted
    assert restarted.get(drained).cordon == before and not restarted.is_schedulable(drained)
    assert restarted.is_schedulable(free)


def test_the_cordon_outlives_disconnection_reconnection_rejection_and_reapproval(
    nodes: NodeManager, mono: FakeMonotonic
) -> None:
    node_id = join(nodes)
    cordon = nodes.cordon(node_id, deadline_ns=None, message="rack move").cordon
    nodes.shutdown(node_id)
    assert nodes.get(node_id).connection_state.status is ConnectionStatus.DISCONNECTED
    join(nodes, node_id)
    mono.advance(nodes.disconnect_timeout_s + 1)
    assert nodes.check_health() == [node_id]
    join(nodes, node_id)
    nodes.reject(node_id)
    nodes.approve(node_id)
    assert nodes.get(node_id).cordon == cordon
    assert nodes.cordoned() == {node_id: None}
    # A cordoned node that is rejected may still be drained again, and uncordoned.
    nodes.reject(node_id)
    assert nodes.cordon(node_id, deadline_ns=None).cordon is not None
    assert nodes.uncordon(node_id).cordon is None


def test_deleting_a_cordoned_node_forgets_its_cordon(nodes: NodeManager) -> None:
    node_id = join(nodes)
    nodes.cordon(node_id, deadline_ns=None)
    nodes.delete(node_id)
    assert nodes.cordoned() == {}
    join(nodes, node_id)  # registers as new
    assert nodes.get(node_id).cordon is None and nodes.is_schedulable(node_id)


def test_a_cordon_that_cannot_be_stored_does_not_take_effect(
    nodes: NodeManager, node_store: FailingStore, events: list[NodeEvent]
) -> None:
    node_id = join(nodes)
    events.clear()
    node_store.failing = True
    with pytest.raises(DatastoreError):
        nodes.cordon(node_id, deadline_ns=None)
    assert nodes.get(node_id).cordon is None and nodes.cordoned() == {} and events == []
    node_store.failing = False
    nodes.cordon(node_id, deadline_ns=None)
    node_store.failing = True
    with pytest.raises(DatastoreError):
        nodes.uncordon(node_id)
    assert nodes.get(node_id).cordon is not None and nodes.cordoned() == {node_id: None}


def test_cordoned_is_a_snapshot_the_caller_cannot_change(nodes: NodeManager) -> None:
    node_id = join(nodes)
    nodes.cordon(node_id, deadline_ns=None)
    snapshot = nodes.cordoned()
    snapshot.clear()
    nodes.uncordon(node_id)
    assert nodes.cordoned() == {} and snapshot == {}
    nodes.cordon(node_id, deadline_ns=5)
    assert snapshot == {}  # taken before: unchanged by later cordons


def test_a_node_in_its_restart_grace_is_stored_connected_when_cordoned(
    node_store: FailingStore, clock: FakeClock, mono: FakeMonotonic, nodes: NodeManager
) -> None:
    node_id = join(nodes)
    restarted = manager(node_store, clock, mono, [])
    assert restarted.is_awaiting_reconnect(node_id)
    restarted.cordon(node_id, deadline_ns=None)
    # Another restart within the grace still waits for it (the cordon write kept it stored CONNECTED).
    again = manager(node_store, clock, mono, [])
    assert again.is_awaiting_reconnect(node_id) and again.cordoned() == {node_id: None}
