"""What a compute node calls on its link to the orchestrator (OrchestratorService), whatever the link.

Both links (NCL over NATS, and a hybrid node's in-process one) answer the node's own calls alike: its
handshake only starts the link (the link handshakes by itself, on every (re)connect), heartbeats are
the link's own, a static node-info change is sent at once, and every report goes to the link's
`_report`, which stores it before anything else.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bacalhau.transport import info_changes
from bacalhau.transport import messages as m
from bacalhau.transport.ncl.dispatch import Report


class ComputeSide:
    """OrchestratorService for a compute node, over a link that implements start/stop/_report."""

    _sent_info_key: tuple[Any, ...] | None
    _info_due: asyncio.Event

    @property
    def accepts_steps(self) -> bool:
        """Whether final reports may carry the steps before them (see OrchestratorService). A link says
        so when it knows its orchestrator takes them; by default it does not."""
        return False

    async def start(self) -> None:
        """Start the link (it connects and handshakes in the background)."""
        raise NotImplementedError

    async def stop(self, *, reason: str = "node stopping") -> None:
        """Deliver what is pending briefly, tell the orchestrator the node leaves, and close the link."""
        raise NotImplementedError

    def _report(self, message: Report) -> None:
        """Store the report for delivery, in order (never waits for the orchestrator)."""
        raise NotImplementedError

    async def handshake(self, request: m.Handshake) -> m.HandshakeOutcome:
        """The real handshakes happen in the link's own task, on every connect; this only starts it."""
        await self.start()
        return m.HandshakeOutcome(accepted=True)

    async def heartbeat(self, request: m.Heartbeat) -> bool:
        """Nothing to do: the link beats on its own clock, reading the node's live capacity each time."""
        return True

    async def update_node_info(self, request: m.NodeInfoUpdate) -> None:
        """Live capacity goes with each heartbeat; a static change (new labels after a config reload)
        is sent at once instead of at the next node-info check (InfoUpdateInterval, 1m)."""
        if info_changes.static_key(request.node_info) != self._sent_info_key:
            self._info_due.set()

    async def shutdown_notice(self, request: m.ShutdownNotice) -> None:
        """Leave (the same as `stop`)."""
        await self.stop(reason=request.reason or "node stopping")

    async def on_bid_result(self, message: m.BidResult) -> None:
        """Stored, then delivered in order (see `_report`)."""
        self._report(message)

    async def on_execution_progress(self, message: m.ExecutionProgress) -> None:
        """Stored, then delivered in order (see `_report`)."""
        self._report(message)

    async def on_run_result(self, message: m.RunResult) -> None:
        """Stored, then delivered in order (see `_report`)."""
        self._report(message)

    async def on_compute_error(self, message: m.ComputeError) -> None:
        """Stored, then delivered in order (see `_report`)."""
        self._report(message)
