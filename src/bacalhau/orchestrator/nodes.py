"""The orchestrator's view of compute nodes: registration, approval, liveness, connection state.

Connection state of one node (membership is a separate dimension: PENDING / APPROVED / REJECTED)::

                      handshake (not REJECTED, NodeType Compute)
     (unknown) ───────────────────────────────────────────────> CONNECTED <──┐
                                                                   │         │ handshake
          heartbeat timeout ("heartbeat timeout"), shutdown notice │         │
          ("graceful shutdown"), `node reject` ("node rejected")   v         │
                                                              DISCONNECTED ──┘
     `node delete`: forgotten; a node that handshakes again is new (default membership)

     orchestrator restart: a node stored CONNECTED is shown DISCONNECTED and *awaiting reconnect*
       re-handshake within the grace ──> CONNECTED, its executions kept
       grace over ──> DISCONNECTED for good, node-leave emitted

Cordon, a third dimension set only by operators (`bacalhau node drain|uncordon`), stored with the node::

     takes work ──drain [deadline]──> CORDONED ──uncordon──> takes work
                                        │  ^
                                        └──┘ drain again: new deadline and message, `Since` kept

A cordoned node gets no new work; what runs there is moved off at its deadline (never, without one).
It survives disconnections, re-handshakes, rejection, re-approval and orchestrator restarts; deleting
the node ends it. (Not to be confused with `drain()`: a compute node announcing its own shutdown.)

Every CONNECTED -> DISCONNECTED change (and the end of a restart grace) emits a LEAVE event, every
handshake and every approval of a connected node a JOIN event, every drain a CORDONED event and every
uncordon an UNCORDONED event; `node_events.NodeReEvaluator` turns them into evaluations. Liveness uses
only the orchestrator's monotonic clock (a compute's clock, or a step of the wall clock, must never
disconnect anyone); wall-clock times are for display and for drain deadlines (which must outlive a restart).

Membership, connection and cordon changes are written to the NodeStore at once; heartbeat times and
node-info updates are kept in memory and written in batches by `flush()` (a write per heartbeat would be
667 writes/s at 10,000 nodes). Not thread-safe: used from the event loop only.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from bacalhau.locality.index import HoldingsIndex
from bacalhau.models.clock import parse_rfc3339_ns, rfc3339, rfc3339_nano
from bacalhau.models.data_holdings import summarised
from bacalhau.models.errors import (
    BacalhauError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ErrorCode,
    NotFoundError,
)
from bacalhau.models.node import (
    NODE_TYPE_COMPUTE,
    ComputeNodeInfo,
    ConnectionState,
    ConnectionStatus,
    Membership,
    NodeCordon,
    NodeInfo,
    NodeState,
)
from bacalhau.models.resources import Resources
from bacalhau.orchestrator.node_store import NodeStore

log = logging.getLogger(__name__)

_COMPONENT = "NodesManager"

HEARTBEAT_TIMEOUT = "heartbeat timeout"
GRACEFUL_SHUTDOWN = "graceful shutdown"
NODE_REJECTED = "node rejected"
AWAITING_RECONNECT = "orchestrator restarted: waiting for the node to reconnect"
NO_RECONNECT = "did not reconnect after the orchestrator restarted"
CORDONED_MESSAGE = "node drain requested"


class NodeChange(enum.Enum):
    JOIN = "join"  # handshake, or approval of a connected node: it may take (or keep) work
    LEAVE = "leave"  # it will not finish what it holds: its executions must be placed again
    CORDONED = "cordoned"  # an operator drained it (or changed its deadline): no new work, its own to move
    UNCORDONED = "uncordoned"  # an operator let it take work again
    UPDATED = "updated"  # what decides where jobs fit changed (labels, engines, capacity): re-evaluate


@dataclass(frozen=True)
class NodeEvent:
    node_id: str
    change: NodeChange
    reason: str = ""


@dataclass(frozen=True)
class Admission:
    """The answer to a handshake, with Bacalhau's reasons."""

    accepted: bool
    reason: str


@dataclass
class _Tracked:
    state: NodeState
    # Orchestrator monotonic time of the last handshake or heartbeat.
    last_seen_s: float = 0.0
    # Set after an orchestrator restart for a node that was CONNECTED: when it counts as lost.
    grace_deadline_s: float | None = None
    heartbeat_dirty: bool = False
    record_dirty: bool = False


def _conflict(message: str) -> ConflictError:
    # Bacalhau's NewErrNodeAlreadyApproved/Rejected: code ConflictNodeState, HTTP 409, the ID as given.
    return ConflictError(message, code=ErrorCode.ConflictNodeState, component=_COMPONENT)


def _deadline_ns(cordon: NodeCordon) -> int | None:
    return None if cordon.deadline is None else parse_rfc3339_ns(cordon.deadline)


def _placement_facts(info: NodeInfo) -> tuple[object, ...]:
    """What decides whether a job fits a node, apart from its free capacity (which heartbeats move)."""
    compute = info.compute_node_info
    if compute is None:
        return (sorted(info.labels.items()),)
    return (
        sorted(info.labels.items()),
        sorted(compute.execution_engines),
        sorted(compute.publishers),
        sorted(compute.storage_sources),
        compute.max_capacity,
        compute.max_job_requirements,
    )


def _index_holdings(index: HoldingsIndex, info: NodeInfo) -> NodeInfo:
    """Index what the node reports holding; return its info with only the summary of it (the entries
    live in the index: node list and the node store would otherwise carry 512 keys per node)."""
    compute = info.compute_node_info
    holdings = compute.data_holdings if compute is not None else None
    index.report(info.node_id, holdings)
    if compute is None or holdings is None:
        return info
    return info.model_copy(update={"compute_node_info": compute.model_copy(update={"data_holdings": summarised(holdings)})})


def _clear_capacity(state: NodeState) -> None:
    # A node that is not connected offers nothing (Bacalhau clears its live capacity too).
    if state.info.compute_node_info is not None:
        state.info.compute_node_info.available_capacity = Resources()
        state.info.compute_node_info.queue_capacity = Resources()


class _StatesById(Mapping[str, NodeState]):
    def __init__(self, nodes: dict[str, _Tracked]) -> None:
        self._nodes = nodes

    def __getitem__(self, node_id: str) -> NodeState:
        return self._nodes[node_id].state

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)


@dataclass
class _Listeners:
    handlers: list[Callable[[NodeEvent], None]] = field(default_factory=list)

    def emit(self, event: NodeEvent) -> None:
        for handler in self.handlers:
            try:
                handler(event)
            except Exception:
                # A listener's bug must not undo a state change that is already stored.
                log.exception("node event listener failed on %s", event)


class NodeManager:
    """Every known node's state, its liveness, and the events its changes produce."""

    def __init__(
        self,
        *,
        store: NodeStore,
        manual_approval: bool = False,
        disconnect_timeout_s: float = 60.0,
        restart_grace_s: float | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        monotonic_s: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load the stored nodes; those stored CONNECTED wait `restart_grace_s` (default: the disconnect
        timeout) from now to reconnect. ConfigurationError if the timeout is not positive.
        """
        if disconnect_timeout_s <= 0:
            raise ConfigurationError(
                f"Orchestrator.NodeManager.DisconnectTimeout must be positive, got {disconnect_timeout_s}s",
                hint="set it to a duration such as 1m",
            )
        self._store = store
        self._manual_approval = manual_approval
        self.disconnect_timeout_s = disconnect_timeout_s
        self._clock_ns = clock_ns
        self._monotonic_s = monotonic_s
        self._listeners = _Listeners()
        self._nodes: dict[str, _Tracked] = {}
        self._order: list[str] | None = None  # node IDs sorted, rebuilt when one joins or leaves
        # CONNECTED nodes that announced they are stopping: no new work, their executions stay. In
        # memory only: a restart of either side ends the drain (the node re-handshakes or is gone).
        self._draining: set[str] = set()
        # The nodes with a grace_deadline_s, kept in step with it: read once per evaluation, so it
        # must not cost a pass over the whole fleet.
        self._awaiting: set[str] = set()
        # Cordoned node -> its drain deadline (Unix ns, None: none), kept in step with NodeState.cordon
        # for the same reason.
        self._cordoned: dict[str, int | None] = {}
        # What input data each node reports holding (and was just given): placement ranks by it.
        self.holdings = HoldingsIndex()
        grace_until = monotonic_s() + (disconnect_timeout_s if restart_grace_s is None else restart_grace_s)
        now = rfc3339(clock_ns())
        for state in store.load():
            tracked = _Tracked(state=state)
            if state.connection_state.status is ConnectionStatus.CONNECTED:
                # Shown DISCONNECTED until it re-handshakes; the stored record keeps CONNECTED so that
                # another restart within the grace still knows the node was connected.
                self._set_status(state, ConnectionStatus.DISCONNECTED, AWAITING_RECONNECT, now)
                tracked.grace_deadline_s = grace_until
                self._awaiting.add(state.info.node_id)
            if state.cordon is not None:
                self._cordoned[state.info.node_id] = _deadline_ns(state.cordon)
            self._nodes[state.info.node_id] = tracked
            self._order = None

    def on_change(self, handler: Callable[[NodeEvent], None]) -> None:
        """Call `handler` (synchronously; it must not block) on every NodeEvent."""
        self._listeners.handlers.append(handler)

    # ---- what compute nodes report --------------------------------------------------------------

    def handshake(self, info: NodeInfo) -> Admission:
        """Admit a compute node (CONNECTED, membership kept on reconnect) or refuse it.

        Refused: a REJECTED node ("node has been rejected"), a node that is not a compute node
        ("node is not a compute node"). Writes the record before answering; DatastoreError if it cannot.
        """
        node_id = info.node_id
        existing = self._nodes.get(node_id)
        if existing is not None and existing.state.membership is Membership.REJECTED:
            return Admission(False, "node has been rejected")
        if info.node_type != NODE_TYPE_COMPUTE:
            return Admission(False, "node is not a compute node")
        now = rfc3339(self._clock_ns())
        if existing is not None:
            membership = existing.state.membership
        else:
            membership = Membership.PENDING if self._manual_approval else Membership.APPROVED
        info = _index_holdings(self.holdings, info)
        state = NodeState(
            # A copy: heartbeats update the capacities in place, and the message is the sender's.
            Info=info.model_copy(deep=True),
            Membership=membership,
            Connection=ConnectionStatus.CONNECTED,
            ConnectionState=ConnectionState(
                Status=ConnectionStatus.CONNECTED, ConnectedSince=now, LastHeartbeat=now
            ),
            # An operator's cordon outlasts the node's restarts (unlike its own drain() notice).
            Cordon=existing.state.cordon if existing is not None else None,
        )
        self._store.put(state)
        self._nodes[node_id] = _Tracked(state=state, last_seen_s=self._monotonic_s())
        self._order = None
        self._draining.discard(node_id)  # a node that handshakes again is back for good
        self._awaiting.discard(node_id)
        self._listeners.emit(NodeEvent(node_id, NodeChange.JOIN, "node reconnected" if existing else "node registered"))
        if existing is not None and _placement_facts(existing.state.info) != _placement_facts(info):
            # Restarted with other labels or engines: the jobs it runs may no longer fit it.
            self._listeners.emit(NodeEvent(node_id, NodeChange.UPDATED, "node info changed"))
        return Admission(True, "node reconnected" if existing else "node registered")

    def heartbeat(self, node_id: str, available: Resources, queued: Resources) -> bool:
        """Record that a CONNECTED node is alive, with its current capacity. O(1), no I/O.

        False (the node must handshake again) if it is unknown, not CONNECTED, or REJECTED.
        """
        tracked = self._nodes.get(node_id)
        if tracked is None:
            return False
        state = tracked.state
        if state.membership is Membership.REJECTED or state.connection_state.status is not ConnectionStatus.CONNECTED:
            return False
        tracked.last_seen_s = self._monotonic_s()
        state.connection_state.last_heartbeat = rfc3339(self._clock_ns())
        if state.info.compute_node_info is None:
            state.info.compute_node_info = ComputeNodeInfo()
        state.info.compute_node_info.available_capacity = available
        state.info.compute_node_info.queue_capacity = queued
        tracked.heartbeat_dirty = True
        return True

    def update_info(self, info: NodeInfo) -> None:
        """Replace a known node's advertised info (written lazily). Unknown and REJECTED nodes are ignored.

        Not a sign of life: only handshakes and heartbeats are (as in Bacalhau).
        """
        tracked = self._nodes.get(info.node_id)
        if tracked is None or tracked.state.membership is Membership.REJECTED:
            return
        changed = _placement_facts(tracked.state.info) != _placement_facts(info)
        tracked.state.info = _index_holdings(self.holdings, info).model_copy(deep=True)
        if tracked.state.connection_state.status is not ConnectionStatus.CONNECTED:
            _clear_capacity(tracked.state)
        tracked.record_dirty = True
        if changed and tracked.state.connection_state.status is ConnectionStatus.CONNECTED:
            # Queued jobs may fit now, daemon jobs may now cover it (or no longer).
            self._listeners.emit(NodeEvent(info.node_id, NodeChange.UPDATED, "node info changed"))

    def drain(self, node_id: str) -> None:
        """The node is stopping but finishes (or hands back) what it runs: no new work for it, nothing
        of its own is failed. Ignored unless CONNECTED; ends when it leaves or handshakes again."""
        tracked = self._nodes.get(node_id)
        if tracked is not None and tracked.state.connection_state.status is ConnectionStatus.CONNECTED:
            self._draining.add(node_id)

    def draining(self) -> frozenset[str]:
        """The nodes draining now (see drain)."""
        return frozenset(self._draining)

    def shutdown(self, node_id: str) -> None:
        """The node said it is stopping: DISCONNECTED at once ("graceful shutdown"). Ignored unless CONNECTED.

        A node that drained first stopped on purpose and is likely restarting: like the nodes after an
        orchestrator restart, it is awaited for the disconnect timeout (its executions are not lost
        meanwhile, and jobs with nowhere else to go wait for it instead of failing).
        """
        tracked = self._nodes.get(node_id)
        if tracked is not None and tracked.state.connection_state.status is ConnectionStatus.CONNECTED:
            drained = node_id in self._draining
            self._disconnect(tracked, GRACEFUL_SHUTDOWN)
            if drained:
                tracked.grace_deadline_s = self._monotonic_s() + self.disconnect_timeout_s
                self._awaiting.add(node_id)

    # ---- liveness (driven by node_health.NodeHealthMonitor) -------------------------------------

    def check_health(self) -> list[str]:
        """Disconnect CONNECTED nodes silent for longer than the timeout ("heartbeat timeout") and end
        the restart grace of nodes that did not come back. Returns the IDs that left."""
        now = self._monotonic_s()
        left: list[str] = []
        for node_id, tracked in list(self._nodes.items()):
            if tracked.grace_deadline_s is not None:
                if now >= tracked.grace_deadline_s:
                    tracked.grace_deadline_s = None
                    self._awaiting.discard(node_id)
                    self._disconnect(tracked, NO_RECONNECT)
                    left.append(node_id)
                continue
            if (
                tracked.state.connection_state.status is ConnectionStatus.CONNECTED
                and now - tracked.last_seen_s > self.disconnect_timeout_s
            ):
                log.info("node %s: no heartbeat for %.0fs, marking it disconnected", node_id, now - tracked.last_seen_s)
                self._disconnect(tracked, HEARTBEAT_TIMEOUT)
                left.append(node_id)
        return left

    def extend_deadlines(self, by_s: float) -> None:
        """The orchestrator itself was stalled for `by_s`: nobody could be heard meanwhile, so that time
        does not count against any node (nor against a restart grace)."""
        now = self._monotonic_s()
        for tracked in self._nodes.values():
            tracked.last_seen_s = min(now, tracked.last_seen_s + by_s)
            if tracked.grace_deadline_s is not None:
                tracked.grace_deadline_s += by_s

    async def flush(self, *, chunk: int = 500) -> None:
        """Write what changed lazily (heartbeat times, node info), in transactions of `chunk` nodes.

        Heartbeats keep arriving between the chunks: each chunk is written as it is when its turn comes,
        and a node deleted or re-registered meanwhile is skipped (its record was written by that change).
        """
        records = [t for t in self._nodes.values() if t.record_dirty]
        for start in range(0, len(records), chunk):
            part = [t for t in records[start : start + chunk] if self._nodes.get(t.state.info.node_id) is t]
            self._store.put_many([self._stored_form(t) for t in part])
            for tracked in part:
                tracked.record_dirty = tracked.heartbeat_dirty = False
            await asyncio.sleep(0)  # let heartbeats in between chunks
        beating = [t for t in self._nodes.values() if t.heartbeat_dirty]
        for start in range(0, len(beating), chunk):
            part = [t for t in beating[start : start + chunk] if self._nodes.get(t.state.info.node_id) is t]
            self._store.put_heartbeats({t.state.info.node_id: t.state.connection_state.last_heartbeat for t in part})
            for tracked in part:
                tracked.heartbeat_dirty = False
            await asyncio.sleep(0)

    # ---- queries --------------------------------------------------------------------------------

    def list(self) -> list[NodeState]:
        """Every known node, by ID."""
        # Sorted once per change of membership, not once per evaluation.
        if self._order is None:
            self._order = sorted(self._nodes)
        return [self._nodes[k].state for k in self._order]

    def by_id(self) -> Mapping[str, NodeState]:
        """Every known node by full ID: a live view, O(1) to get (a scheduler's lookups by ID must not
        cost a pass over the fleet per evaluation)."""
        return _StatesById(self._nodes)

    def get(self, node_id: str) -> NodeState:
        """A node by full ID or unique prefix. NotFoundError / BadRequestError (ambiguous)."""
        return self._resolve(node_id).state

    def is_connected(self, node_id: str) -> bool:
        """CONNECTED now (whatever its membership)."""
        tracked = self._nodes.get(node_id)
        return tracked is not None and tracked.state.connection_state.status is ConnectionStatus.CONNECTED

    def is_schedulable(self, node_id: str) -> bool:
        """CONNECTED, APPROVED, not draining and not cordoned: new executions may be placed there."""
        tracked = self._nodes.get(node_id)
        return (
            self.is_connected(node_id)
            and tracked is not None
            and tracked.state.membership is Membership.APPROVED
            and node_id not in self._draining
            and node_id not in self._cordoned
        )

    def is_awaiting_reconnect(self, node_id: str) -> bool:
        """In its restart grace: not CONNECTED, but its executions are not lost (yet)."""
        tracked = self._nodes.get(node_id)
        return tracked is not None and tracked.grace_deadline_s is not None

    def awaiting_reconnect(self) -> frozenset[str]:
        """The nodes in their restart grace."""
        return frozenset(self._awaiting)

    # ---- membership (the `node approve|reject|delete` API) --------------------------------------

    def approve(self, node_id: str) -> NodeState:
        """Let a pending (or rejected) node take work. ConflictError when it is already approved."""
        tracked = self._resolve(node_id)
        state = tracked.state
        if state.membership is Membership.APPROVED:
            raise _conflict(f"node {node_id} already approved")
        updated = state.model_copy(deep=True)
        updated.membership = Membership.APPROVED
        self._store.put(self._stored_form(tracked, updated))
        state.membership = Membership.APPROVED
        if state.connection_state.status is ConnectionStatus.CONNECTED:
            self._listeners.emit(NodeEvent(state.info.node_id, NodeChange.JOIN, "node approved"))
        return state

    def reject(self, node_id: str) -> NodeState:
        """REJECTED + DISCONNECTED ("node rejected"); if it was connected (or awaiting reconnect) its
        executions are placed again. ConflictError when already rejected."""
        tracked = self._resolve(node_id)
        state = tracked.state
        if state.membership is Membership.REJECTED:
            raise _conflict(f"node {node_id} already rejected")
        was_live = self._is_live(tracked)
        updated = state.model_copy(deep=True)
        updated.membership = Membership.REJECTED
        self._set_status(updated, ConnectionStatus.DISCONNECTED, NODE_REJECTED, rfc3339(self._clock_ns()))
        _clear_capacity(updated)
        self._store.put(updated)
        tracked.state, tracked.grace_deadline_s = updated, None
        self._awaiting.discard(updated.info.node_id)
        self.holdings.forget(updated.info.node_id)  # it takes no work: its data attracts none
        tracked.record_dirty = tracked.heartbeat_dirty = False
        if was_live:
            self._listeners.emit(NodeEvent(updated.info.node_id, NodeChange.LEAVE, NODE_REJECTED))
        return updated

    def delete(self, node_id: str) -> None:
        """Forget a node; if it was connected (or awaiting reconnect) its executions are placed again.
        A node that handshakes again later is registered as new."""
        tracked = self._resolve(node_id)
        full_id = tracked.state.info.node_id
        self._store.delete(full_id)
        del self._nodes[full_id]
        self._awaiting.discard(full_id)
        self._draining.discard(full_id)
        self._cordoned.pop(full_id, None)
        self.holdings.forget(full_id)
        self._order = None
        if self._is_live(tracked):
            self._listeners.emit(NodeEvent(full_id, NodeChange.LEAVE, "node deleted"))

    # ---- cordon (the `node drain|uncordon` API) --------------------------------------------------

    def cordon(self, node_id: str, *, deadline_ns: int | None, message: str = "") -> NodeState:
        """Give the node (full ID or unique prefix) no new work; at `deadline_ns` (Unix ns, wall clock;
        None: never) what still runs there is moved off. Stored before it takes effect; emits CORDONED.

        Any membership and connection state may be cordoned. On a cordoned node: a new deadline and
        message, `Since` kept. NotFoundError / BadRequestError (ambiguous prefix) / DatastoreError.
        """
        tracked = self._resolve(node_id)
        state = tracked.state
        full_id = state.info.node_id
        cordon = NodeCordon(
            Since=state.cordon.since if state.cordon is not None else rfc3339(self._clock_ns()),
            Deadline=None if deadline_ns is None else rfc3339_nano(deadline_ns),
            Message=message or CORDONED_MESSAGE,
        )
        updated = state.model_copy(deep=True)
        updated.cordon = cordon
        self._store.put(self._stored_form(tracked, updated))
        state.cordon = cordon
        self._cordoned[full_id] = deadline_ns
        log.info("node %s cordoned (drain deadline %s): %s", full_id, cordon.deadline or "none", cordon.message)
        self._listeners.emit(NodeEvent(full_id, NodeChange.CORDONED, cordon.message))
        return state

    def uncordon(self, node_id: str) -> NodeState:
        """Let a cordoned node (full ID or unique prefix) take work again; emits UNCORDONED.
        ConflictError (409) when it is not cordoned; NotFoundError / BadRequestError / DatastoreError."""
        tracked = self._resolve(node_id)
        state = tracked.state
        if state.cordon is None:
            raise _conflict(f"node {node_id} is not cordoned")
        full_id = state.info.node_id
        updated = state.model_copy(deep=True)
        updated.cordon = None
        self._store.put(self._stored_form(tracked, updated))
        state.cordon = None
        del self._cordoned[full_id]
        log.info("node %s uncordoned", full_id)
        self._listeners.emit(NodeEvent(full_id, NodeChange.UNCORDONED, "node uncordoned"))
        return state

    def now_ns(self) -> int:
        """The wall clock (Unix ns) of the node records: drain deadlines given as durations count from it."""
        return self._clock_ns()

    def cordoned(self) -> dict[str, int | None]:
        """Every cordoned node's ID -> its drain deadline (Unix ns; None: no deadline). A copy: as cheap
        as the (few) cordoned nodes, whatever the size of the fleet."""
        return dict(self._cordoned)

    # ---- internals ------------------------------------------------------------------------------

    def _resolve(self, node_id: str) -> _Tracked:
        if node_id in self._nodes:
            return self._nodes[node_id]
        matches = [k for k in self._nodes if k.startswith(node_id)] if node_id else []
        if len(matches) == 1:
            return self._nodes[matches[0]]
        if len(matches) > 1:
            raise BadRequestError(f"node ID prefix {node_id!r} is ambiguous: {', '.join(sorted(matches))}")
        raise NotFoundError(f"node not found: {node_id}", component=_COMPONENT)

    @staticmethod
    def _is_live(tracked: _Tracked) -> bool:
        return tracked.grace_deadline_s is not None or tracked.state.connection_state.status is ConnectionStatus.CONNECTED

    @staticmethod
    def _set_status(state: NodeState, status: ConnectionStatus, reason: str, now: str) -> None:
        state.connection = status
        state.connection_state.status = status
        if status is ConnectionStatus.DISCONNECTED:
            state.connection_state.disconnected_since = now
            state.connection_state.last_error = reason

    @staticmethod
    def _stored_form(tracked: _Tracked, state: NodeState | None = None) -> NodeState:
        state = state or tracked.state
        if tracked.grace_deadline_s is None:
            return state
        # Still in its restart grace: keep it stored CONNECTED (see __init__).
        stored = state.model_copy(deep=True)
        stored.connection = stored.connection_state.status = ConnectionStatus.CONNECTED
        return stored

    def _disconnect(self, tracked: _Tracked, reason: str) -> None:
        state = tracked.state
        self._draining.discard(state.info.node_id)
        self._set_status(state, ConnectionStatus.DISCONNECTED, reason, rfc3339(self._clock_ns()))
        _clear_capacity(state)
        try:
            self._store.put(state)
            tracked.record_dirty = tracked.heartbeat_dirty = False
        except BacalhauError:
            # The node is gone whether or not the disk agrees: act on it now, write it at the next flush.
            log.exception("node %s: could not store its disconnection; retrying at the next flush", state.info.node_id)
            tracked.record_dirty = True
        self._listeners.emit(NodeEvent(state.info.node_id, NodeChange.LEAVE, reason))
