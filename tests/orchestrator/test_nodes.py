"""NodeManager: approve, reject and delete as Bacalhau's nodes manager does them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bacalhau.models.clock import rfc3339
from bacalhau.models.errors import ConflictError, ErrorCode, NotFoundError
from bacalhau.models.node import ConnectionStatus, Membership, NodeInfo
from bacalhau.orchestrator.node_store import SQLiteNodeStore
from bacalhau.orchestrator.nodes import NodeManager
from factories import FakeClock, make_node_info


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def nodes(clock: FakeClock, tmp_path: Path) -> Iterator[NodeManager]:
    store = SQLiteNodeStore(path=tmp_path / "orchestrator" / "nodes.db")
    try:
        yield NodeManager(store=store, manual_approval=True, clock_ns=clock)
    finally:
        store.close()


def register(nodes: NodeManager, info: NodeInfo | None = None) -> str:
    info = info or make_node_info()
    assert nodes.handshake(info).accepted
    return info.node_id


def test_approving_a_pending_node_approves_it(nodes: NodeManager) -> None:
    node_id = register(nodes)
    assert nodes.get(node_id).membership is Membership.PENDING
    nodes.approve(node_id)
    assert nodes.get(node_id).membership is Membership.APPROVED


def test_approving_an_approved_node_is_a_409_conflict_naming_the_node(nodes: NodeManager) -> None:
    node_id = register(nodes)
    nodes.approve(node_id)
    with pytest.raises(ConflictError) as caught:
        nodes.approve(node_id[:10])
    assert caught.value.message == f"node {node_id[:10]} already approved"
    assert caught.value.code is ErrorCode.ConflictNodeState and caught.value.http_status == 409
    assert caught.value.component == "NodesManager"


def test_rejecting_disconnects_the_node_with_a_reason(nodes: NodeManager, clock: FakeClock) -> None:
    node_id = register(nodes)
    clock.now_ns += 5_000_000_000
    rejected_at = clock.now_ns
    state = nodes.reject(node_id)
    assert state.membership is Membership.REJECTED
    assert state.connection is ConnectionStatus.DISCONNECTED
    assert state.connection_state.status is ConnectionStatus.DISCONNECTED
    assert state.connection_state.last_error == "node rejected"
    assert state.connection_state.disconnected_since == rfc3339(rejected_at)


def test_rejecting_a_rejected_node_is_a_409_conflict(nodes: NodeManager) -> None:
    node_id = register(nodes)
    nodes.reject(node_id)
    with pytest.raises(ConflictError, match=f"^node {node_id} already rejected$") as caught:
        nodes.reject(node_id)
    assert caught.value.code is ErrorCode.ConflictNodeState


def test_a_rejected_node_that_reconnects_stays_rejected_and_disconnected(nodes: NodeManager) -> None:
    info = make_node_info()
    register(nodes, info)
    nodes.reject(info.node_id)
    assert not nodes.handshake(info).accepted
    nodes.update_info(info)
    state = nodes.get(info.node_id)
    assert state.membership is Membership.REJECTED
    assert state.connection_state.status is ConnectionStatus.DISCONNECTED


def test_a_rejected_node_can_be_approved_again(nodes: NodeManager) -> None:
    node_id = register(nodes)
    nodes.reject(node_id)
    nodes.approve(node_id)
    assert nodes.get(node_id).membership is Membership.APPROVED


def test_deleting_forgets_the_node(nodes: NodeManager) -> None:
    node_id = register(nodes)
    nodes.delete(node_id)
    with pytest.raises(NotFoundError, match=f"node not found: {node_id}"):
        nodes.get(node_id)
    with pytest.raises(NotFoundError):
        nodes.delete(node_id)
