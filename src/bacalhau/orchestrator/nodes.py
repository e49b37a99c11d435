"""The orchestrator's view of compute nodes: registration, approval, heartbeats, connection state.

    handshake ──> APPROVED (or PENDING with ManualApproval) + CONNECTED
    heartbeat / node-info update ──> LastHeartbeat refreshed
    no heartbeat for DisconnectTimeout ──> DISCONNECTED (executions there are rescheduled)
    `node approve` ──> APPROVED          (already APPROVED: 409 ConflictNodeState)
    `node reject`  ──> REJECTED + DISCONNECTED, LastError "node rejected"; its handshakes are refused
                                         (already REJECTED: 409 ConflictNodeState)
    `node delete`  ──> forgotten (a compute node that handshakes again comes back)

Node records live in memory: compute nodes re-register on every (re)connect, so nothing is lost
when the orchestrator restarts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bacalhau.models.clock import rfc3339
from bacalhau.models.errors import BadRequestError, ConflictError, ErrorCode, NotFoundError
from bacalhau.models.node import ConnectionStatus, Membership, NodeInfo, NodeState

_COMPONENT = "NodesManager"


def _conflict(message: str) -> ConflictError:
    # Bacalhau's NewErrNodeAlreadyApproved/Rejected: code ConflictNodeState, HTTP 409, the ID as given.
    return ConflictError(message, code=ErrorCode.ConflictNodeState, component=_COMPONENT)


class NodeManager:
    """Holds every known node's state. Not thread-safe; used from the event loop only."""

    def __init__(self, *, manual_approval: bool = False, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._nodes: dict[str, NodeState] = {}
        self._manual_approval = manual_approval
        self._clock_ns = clock_ns

    def register(self, info: NodeInfo) -> NodeState:
        """Add or refresh a node on (re)connect; an existing membership decision is kept."""
        now = rfc3339(self._clock_ns())
        existing = self._nodes.get(info.node_id)
        if existing is not None and existing.membership is Membership.REJECTED:
            # Bacalhau refuses a rejected node's handshake ("node has been rejected"): it stays down.
            return existing
        membership = (
            existing.membership
            if existing is not None
            else (Membership.PENDING if self._manual_approval else Membership.APPROVED)
        )
        state = NodeState(info=info, membership=membership, connection=ConnectionStatus.CONNECTED)
        state.connection_state.status = ConnectionStatus.CONNECTED
        state.connection_state.connected_since = now
        state.connection_state.last_heartbeat = now
        self._nodes[info.node_id] = state
        return state

    def update_info(self, info: NodeInfo) -> None:
        state = self._nodes.get(info.node_id)
        if state is None:
            self.register(info)
            return
        if state.membership is Membership.REJECTED:
            return
        state.info = info
        state.connection_state.last_heartbeat = rfc3339(self._clock_ns())

    def mark_disconnected(self, node_id: str, reason: str = "") -> None:
        state = self._nodes.get(node_id)
        if state is None:
            return
        state.connection = ConnectionStatus.DISCONNECTED
        state.connection_state.status = ConnectionStatus.DISCONNECTED
        state.connection_state.disconnected_since = rfc3339(self._clock_ns())
        state.connection_state.last_error = reason

    def list(self) -> list[NodeState]:
        return [self._nodes[k] for k in sorted(self._nodes)]

    def get(self, node_id: str) -> NodeState:
        """A node by full ID or unique prefix. NotFoundError / BadRequestError (ambiguous)."""
        if node_id in self._nodes:
            return self._nodes[node_id]
        matches = [k for k in self._nodes if k.startswith(node_id)] if node_id else []
        if len(matches) == 1:
            return self._nodes[matches[0]]
        if len(matches) > 1:
            raise BadRequestError(f"node ID prefix {node_id!r} is ambiguous: {', '.join(sorted(matches))}")
        raise NotFoundError(f"node not found: {node_id}", component=_COMPONENT)

    def approve(self, node_id: str) -> NodeState:
        """Let a pending (or rejected) node take work. ConflictError when it is already approved."""
        state = self.get(node_id)
        if state.membership is Membership.APPROVED:
            raise _conflict(f"node {node_id} already approved")
        state.membership = Membership.APPROVED
        return state

    def reject(self, node_id: str) -> NodeState:
        """Mark a node REJECTED and DISCONNECTED ("node rejected"). ConflictError when already rejected."""
        state = self.get(node_id)
        if state.membership is Membership.REJECTED:
            raise _conflict(f"node {node_id} already rejected")
        state.membership = Membership.REJECTED
        self.mark_disconnected(state.info.node_id, "node rejected")
        return state

    def delete(self, node_id: str) -> None:
        state = self.get(node_id)
        del self._nodes[state.info.node_id]
