"""Node liveness: heartbeat timeouts, stalls of the orchestrator itself, and the grace after a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.orchestrator.node_harness import FakeMonotonic, wait_for

from bacalhau.models.clock import rfc3339
from bacalhau.models.node import GO_ZERO_TIME, ConnectionStatus
from bacalhau.models.resources import Resources
from bacalhau.orchestrator.node_health import NodeHealthMonitor, default_check_interval_s
from bacalhau.orchestrator.node_store import SQLiteNodeStore
from bacalhau.orchestrator.nodes import NO_RECONNECT, NodeChange, NodeEvent, NodeManager
from factories import FakeClock, make_node_info

TIMEOUT_S = 60.0
CAPACITY = Resources(CPU=2.0, Memory=4_000_000_000)


@pytest.fixture
def store(nodes_db: Path) -> Iterator[SQLiteNodeStore]:
    """This module's store is the node store (the conftest's `store` is the job store)."""
    opened = SQLiteNodeStore(path=nodes_db)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def nodes(store: SQLiteNodeStore, clock: FakeClock, mono: FakeMonotonic, events: list[NodeEvent]) -> NodeManager:
    manager = NodeManager(store=store, disconnect_timeout_s=TIMEOUT_S, clock_ns=clock, monotonic_s=mono)
    manager.on_change(events.append)
    return manager


def join(nodes: NodeManager) -> str:
    info = make_node_info()
    assert nodes.handshake(info).accepted
    return info.node_id


def leaves(events: list[NodeEvent]) -> list[tuple[str, str]]:
    return [(e.node_id, e.reason) for e in events if e.change is NodeChange.LEAVE]


def test_the_check_period_is_a_third_of_the_timeout_within_1s_and_30s() -> None:
    assert default_check_interval_s(60) == 20
    assert default_check_interval_s(1.5) == 1
    assert default_check_interval_s(600) == 30


def test_a_silent_node_is_disconnected_after_the_timeout_and_offers_nothing(
    nodes: NodeManager, clock: FakeClock, mono: FakeMonotonic, events: list[NodeEvent]
) -> None:
    monitor = NodeHealthMonitor(nodes=nodes, monotonic_s=mono)
    silent, alive = join(nodes), join(nodes)
    for _ in range(4):
        mono.advance(15)
        clock.advance(15)
        assert nodes.heartbeat(alive, CAPACITY, Resources())
    assert monitor.check().disconnected == ()  # 60 s exactly is not yet "longer than the timeout"
    mono.advance(1)
    clock.advance(1)
    assert monitor.check().disconnected == (silent,)
    state = nodes.get(silent)
    assert state.connection_state.status is ConnectionStatus.DISCONNECTED
    assert state.connection is ConnectionStatus.DISCONNECTED
    assert state.connection_state.last_error == "heartbeat timeout"
    assert state.connection_state.disconnected_since == rfc3339(clock.now_ns)
    assert state.info.compute_node_info is not None
    assert state.info.compute_node_info.available_capacity == Resources()
    assert nodes.get(alive).connection_state.status is ConnectionStatus.CONNECTED
    assert leaves(events) == [(silent, "heartbeat timeout")]
    assert nodes.heartbeat(silent, CAPACITY, Resources()) is False  # must handshake again


def test_liveness_ignores_the_wall_clock(nodes: NodeManager, clock: FakeClock, mono: FakeMonotonic) -> None:
    monitor = NodeHealthMonitor(nodes=nodes, monotonic_s=mono)
    node_id = join(nodes)
    clock.advance(3600)  # an NTP step of an hour
    assert monitor.check().disconnected == ()
    assert nodes.get(node_id).connection_state.status is ConnectionStatus.CONNECTED


def test_after_a_stall_of_the_orchestrator_nobody_is_disconnected_and_deadlines_move(
    nodes: NodeManager, mono: FakeMonotonic, events: list[NodeEvent]
) -> None:
    monitor = NodeHealthMonitor(nodes=nodes, monotonic_s=mono)
    ids = [join(nodes) for _ in range(5)]
    mono.advance(50)
    for node_id in ids:
        nodes.heartbeat(node_id, CAPACITY, Resources())
    mono.advance(120)  # the orchestrator was paused for two minutes
    result = monitor.check(stalled_s=120)
    assert result.disconnected == () and result.stalled_s == 120
    assert all(nodes.is_connected(n) for n in ids) and leaves(events) == []
    # The stall does not count against them: by the orchestrator's account they were just heard from.
    mono.advance(59)
    assert monitor.check().disconnected == ()
    mono.advance(2)
    assert sorted(monitor.check().disconnected) == sorted(ids)


def test_a_small_delay_of_the_loop_is_not_a_stall(nodes: NodeManager, mono: FakeMonotonic) -> None:
    monitor = NodeHealthMonitor(nodes=nodes, monotonic_s=mono)
    node_id = join(nodes)
    mono.advance(61)
    assert monitor.check(stalled_s=0.5).disconnected == (node_id,)


async def test_the_check_loop_disconnects_a_silent_node(tmp_path: Path) -> None:
    store = SQLiteNodeStore(path=tmp_path / "nodes.db")
    nodes = NodeManager(store=store, disconnect_timeout_s=0.2)
    monitor = NodeHealthMonitor(nodes=nodes, check_interval_s=0.02, probe_interval_s=0.01)
    node_id = join(nodes)
    monitor.start()
    try:
        await wait_for(
            lambda: asyncio.sleep(0, not nodes.is_connected(node_id)), what="the silent node to be disconnected"
        )
        assert nodes.get(node_id).connection_state.last_error == "heartbeat timeout"
    finally:
        await monitor.stop()
        store.close()


async def test_the_check_loop_notices_a_pause_of_the_process(tmp_path: Path) -> None:
    # A paused process sees its monotonic clock jump between two wake-ups.
    jump = {"s": 0.0}
    store = SQLiteNodeStore(path=tmp_path / "nodes.db")
    nodes = NodeManager(store=store, disconnect_timeout_s=30, monotonic_s=lambda: time.monotonic() + jump["s"])
    monitor = NodeHealthMonitor(
        nodes=nodes, monotonic_s=lambda: time.monotonic() + jump["s"], check_interval_s=0.05, probe_interval_s=0.01
    )
    node_id = join(nodes)
    monitor.start()
    try:
        await wait_for(lambda: asyncio.sleep(0, monitor.last_check), what="the loop to run")
        jump["s"] = 300.0
        check = await wait_for(
            lambda: asyncio.sleep(0, monitor.last_check if monitor.last_check and monitor.last_check.stalled_s else None),
            what="a check after the pause",
        )
        assert check.stalled_s >= 299 and check.disconnected == ()
        assert nodes.is_connected(node_id)
    finally:
        await monitor.stop()
        store.close()


async def test_stop_writes_the_heartbeat_times(store: SQLiteNodeStore, nodes_db: Path, nodes: NodeManager, clock: FakeClock) -> None:
    monitor = NodeHealthMonitor(nodes=nodes)
    node_id = join(nodes)
    clock.advance(120)
    nodes.heartbeat(node_id, CAPACITY, Resources())
    monitor.start()
    await monitor.stop()
    reader = SQLiteNodeStore(path=nodes_db)
    try:
        assert reader.load()[0].connection_state.last_heartbeat == rfc3339(clock.now_ns)
    finally:
        reader.close()


# ---- restart grace ------------------------------------------------------------------------------


def restart(path: Path, clock: FakeClock, mono: FakeMonotonic, events: list[NodeEvent]) -> tuple[NodeManager, SQLiteNodeStore]:
    store = SQLiteNodeStore(path=path)
    nodes = NodeManager(store=store, disconnect_timeout_s=TIMEOUT_S, clock_ns=clock, monotonic_s=mono)
    nodes.on_change(events.append)
    return nodes, store


def test_after_a_restart_connected_nodes_wait_for_their_grace_before_they_count_as_lost(
    nodes: NodeManager, store: SQLiteNodeStore, nodes_db: Path, clock: FakeClock, mono: FakeMonotonic
) -> None:
    back, silent = join(nodes), join(nodes)
    store.close()
    events: list[NodeEvent] = []
    restarted, reopened = restart(nodes_db, clock, mono, events)
    try:
        monitor = NodeHealthMonitor(nodes=restarted, monotonic_s=mono)
        assert restarted.awaiting_reconnect() == {back, silent}
        shown = restarted.get(silent).connection_state
        assert shown.status is ConnectionStatus.DISCONNECTED and shown.disconnected_since != GO_ZERO_TIME
        mono.advance(30)
        assert restarted.handshake(restarted.get(back).info).accepted
        assert restarted.awaiting_reconnect() == {silent}
        mono.advance(29)
        assert monitor.check().disconnected == ()
        assert leaves(events) == []
        mono.advance(2)
        assert monitor.check().disconnected == (silent,)
        assert leaves(events) == [(silent, NO_RECONNECT)]
        assert restarted.awaiting_reconnect() == frozenset()
        assert restarted.get(silent).connection_state.last_error == NO_RECONNECT
        assert restarted.is_connected(back)
    finally:
        reopened.close()


def test_a_second_restart_within_the_grace_still_knows_who_was_connected(
    nodes: NodeManager, store: SQLiteNodeStore, nodes_db: Path, clock: FakeClock, mono: FakeMonotonic
) -> None:
    node_id = join(nodes)
    store.close()
    first, first_store = restart(nodes_db, clock, mono, [])
    assert first.awaiting_reconnect() == {node_id}
    first_store.close()  # stopped again before the node came back
    second, second_store = restart(nodes_db, clock, mono, [])
    try:
        assert second.awaiting_reconnect() == {node_id}
    finally:
        second_store.close()


def test_rejecting_a_node_awaiting_reconnect_places_its_work_again(
    nodes: NodeManager, store: SQLiteNodeStore, nodes_db: Path, clock: FakeClock, mono: FakeMonotonic
) -> None:
    node_id = join(nodes)
    store.close()
    events: list[NodeEvent] = []
    restarted, reopened = restart(nodes_db, clock, mono, events)
    try:
        restarted.reject(node_id)
        assert leaves(events) == [(node_id, "node rejected")]
        assert restarted.awaiting_reconnect() == frozenset()
    finally:
        reopened.close()


def test_a_stall_also_extends_the_restart_grace(
    nodes: NodeManager, store: SQLiteNodeStore, nodes_db: Path, clock: FakeClock, mono: FakeMonotonic
) -> None:
    node_id = join(nodes)
    store.close()
    restarted, reopened = restart(nodes_db, clock, mono, [])
    try:
        monitor = NodeHealthMonitor(nodes=restarted, monotonic_s=mono)
        mono.advance(100)
        assert monitor.check(stalled_s=100).disconnected == ()
        mono.advance(59)
        assert monitor.check().disconnected == ()
        assert restarted.awaiting_reconnect() == {node_id}
    finally:
        reopened.close()
