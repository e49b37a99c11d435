"""The two sides of the orchestrator <-> compute link, as Protocols.

Neither side imports the other: both only know these Protocols and the messages of `messages.py`. The
link between them is NCL over NATS (`transport/ncl/`): the orchestrator's `NclOrchestratorLink` is its
ComputeDirectory, and a compute node's `NclComputeLink` is its OrchestratorService. A hybrid node links
its own compute in process (`local_link.LocalLink`, both Protocols at once) and serves NCL to the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from bacalhau.models.execution import ExecutionLog
from bacalhau.transport.messages import (
    AskForBid,
    BidAccepted,
    BidResult,
    CancelExecution,
    ComputeError,
    ExecutionProgress,
    Handshake,
    HandshakeOutcome,
    Heartbeat,
    LogStreamRequest,
    NodeInfoUpdate,
    RunResult,
    ShutdownNotice,
)


class ComputeService(Protocol):
    """What the orchestrator asks of one compute node."""

    async def ask_for_bid(self, request: AskForBid) -> None:
        """Offer an execution. Returns once the offer is recorded; the answer arrives as a BidResult.

        Idempotent: offering an execution the node already holds does nothing.
        """
        ...

    async def accept_bid(self, request: BidAccepted) -> None:
        """Start an execution offered as a pending bid (DesiredState Pending). Idempotent."""
        ...

    async def cancel_execution(self, request: CancelExecution) -> None:
        """Stop an execution promptly. Idempotent; unknown IDs are ignored."""
        ...

    def stream_logs(self, request: LogStreamRequest) -> AsyncIterator[ExecutionLog]:
        """Yield the execution's output lines; with `follow`, keep yielding until it ends.

        Raises NotFoundError if the node does not know the execution.
        """
        ...


class OrchestratorService(Protocol):
    """What compute nodes tell the orchestrator. Every call is idempotent per execution state."""

    # Whether a final report (RunResult, ComputeError) may carry the steps before it (`Steps`), which
    # the orchestrator records as if each had come on its own. A compute node then holds its progress
    # reports a moment (compute/reports.py): an execution that ends meanwhile sends one report, not
    # three. Ours; a Go orchestrator gets every report on its own, as Bacalhau sends them.
    @property
    def accepts_steps(self) -> bool: ...

    async def handshake(self, request: Handshake) -> HandshakeOutcome:
        """Register or re-register a compute node, reconcile its executions, and say whether it may join.

        A rejected node gets `accepted=False` with Bacalhau's reason. Idempotent: a repeated handshake
        of a connected node refreshes it.
        """
        ...

    async def heartbeat(self, request: Heartbeat) -> bool:
        """Record that the node is alive (on the orchestrator's clock) with its current capacity.

        False when the orchestrator does not consider the node connected (unknown, disconnected,
        rejected, or the orchestrator restarted): the node must handshake again.
        """
        ...

    async def update_node_info(self, request: NodeInfoUpdate) -> None:
        """Replace the node's advertised info (capacity, queue length)."""
        ...

    async def shutdown_notice(self, request: ShutdownNotice) -> None:
        """The node is stopping on purpose: mark it disconnected now instead of after the timeout."""
        ...

    async def on_bid_result(self, message: BidResult) -> None: ...

    async def on_execution_progress(self, message: ExecutionProgress) -> None: ...

    async def on_run_result(self, message: RunResult) -> None: ...

    async def on_compute_error(self, message: ComputeError) -> None: ...


class ComputeDirectory(Protocol):
    """How the orchestrator reaches a compute node by its ID."""

    def compute(self, node_id: str) -> ComputeService | None:
        """The node's service, or None if it is not connected."""
        ...
