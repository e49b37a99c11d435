"""The data plane's messages both ways, as stored frames and as calls: shared by the NCL links (over
NATS) and a hybrid node's local link (in process), so that both store the same frames in the same
outbox streams and handle a stored frame the same way.

    compute report (m.BidResult, ...) ──report_frame──> frame in the compute's outbox "orchestrator"
        stored frame ──to_orchestrator──> OrchestratorService.on_bid_result / on_run_result / ...
    orchestrator work (m.AskForBid, ...) ──work_frame──> frame in the orchestrator's outbox <node id>
        stored frame ──to_compute──> ComputeService.ask_for_bid / accept_bid / cancel_execution
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from bacalhau.transport import messages as m
from bacalhau.transport.base import ComputeService, OrchestratorService
from bacalhau.transport.ncl import convert, data, subjects
from bacalhau.transport.ncl import metadata as meta
from bacalhau.transport.ncl.errors import NclError
from bacalhau.transport.ncl.registry import Message, decode_message, encode_message
from bacalhau.transport.outbox import Frame, Outbox, OutboxEntry

log = logging.getLogger(__name__)

Report = m.BidResult | m.ExecutionProgress | m.RunResult | m.ComputeError
Work = m.AskForBid | m.BidAccepted | m.CancelExecution
WorkPayload = data.AskForBidRequest | data.BidAcceptedRequest | data.CancelExecutionRequest


def report_payload(message: Report, job_type: str) -> data.BidResult | data.ExecutionProgress | data.RunResult | data.ComputeError:
    """A compute report as its NCL payload (`job_type` travels with it, as Go's does)."""
    if isinstance(message, m.BidResult):
        return convert.bid_result_to_ncl(message, job_type)
    if isinstance(message, m.ExecutionProgress):
        return convert.progress_to_ncl(message, job_type)
    if isinstance(message, m.RunResult):
        return convert.run_result_to_ncl(message, job_type)
    return convert.compute_error_to_ncl(message, job_type)


def work_payload(message: Work) -> WorkPayload:
    """Work for a compute node as its NCL payload."""
    if isinstance(message, m.AskForBid):
        return convert.ask_for_bid_to_ncl(message)
    if isinstance(message, m.BidAccepted):
        return data.BidAcceptedRequest(ExecutionID=message.execution_id, Accepted=True)
    return convert.cancel_to_ncl(message)


def report_frame(payload: data.BidResult | data.ExecutionProgress | data.RunResult | data.ComputeError, *,
                 node_id: str, max_bytes: int) -> Callable[[int], Frame]:
    """The frame of a report to the orchestrator, as a function of its sequence number (Outbox.append)."""
    def frame(seq: int) -> Frame:
        return encode_message(payload, source=node_id, metadata=meta.data_plane_metadata(seq), max_bytes=max_bytes)

    return frame


def work_frame(payload: WorkPayload, *, orchestrator_id: str, node_id: str, max_bytes: int) -> Callable[[int], Frame]:
    """The frame of work for compute node `node_id`, as a function of its sequence number."""
    subject = subjects.compute_in_msgs(node_id)
    source = meta.orchestrator_source(orchestrator_id)

    def frame(seq: int) -> Frame:
        return encode_message(payload, source=source, metadata=meta.data_plane_metadata(seq, subject=subject),
                              max_bytes=max_bytes)

    return frame


async def to_orchestrator(service: OrchestratorService, node_id: str, message: Message) -> None:
    """Hand a compute node's data-plane message to the orchestrator, as sent by `node_id`.

    The sender is who the transport says (NCL.md §5 pitfall 14), whatever the payload claims. A type
    with no meaning here is logged and dropped: refusing it would block the node's stream for good.
    """
    payload = message.payload
    if isinstance(payload, data.BidResult):
        await service.on_bid_result(convert.bid_result_from_ncl(payload).model_copy(update={"node_id": node_id}))
    elif isinstance(payload, data.RunResult):
        await service.on_run_result(convert.run_result_from_ncl(payload).model_copy(update={"node_id": node_id}))
    elif isinstance(payload, data.ComputeError):
        await service.on_compute_error(convert.compute_error_from_ncl(payload).model_copy(update={"node_id": node_id}))
    elif isinstance(payload, data.ExecutionProgress):
        try:
            progress = convert.progress_from_ncl(payload)
        except ValueError:
            log.warning("progress with unknown state %s from %s ignored", payload.state, node_id)
            return
        await service.on_execution_progress(progress.model_copy(update={"node_id": node_id}))
    else:
        log.warning("%s from %s has no meaning for an orchestrator: dropped", message.type, node_id)


async def to_compute(compute: ComputeService, message: Message) -> None:
    """Hand the orchestrator's data-plane message to the compute node; other types are logged and dropped."""
    payload = message.payload
    if isinstance(payload, data.AskForBidRequest):
        await compute.ask_for_bid(convert.ask_for_bid_from_ncl(payload))
    elif isinstance(payload, data.CancelExecutionRequest | data.BidRejectedRequest):
        await compute.cancel_execution(convert.cancel_from_ncl(payload))
    elif isinstance(payload, data.BidAcceptedRequest):
        # A pending bid accepted (a Go orchestrator); our own orchestrator offers direct bids only.
        await compute.accept_bid(m.BidAccepted(execution_id=payload.execution_id))
    else:
        log.warning("%s has no meaning for a compute node: dropped", message.type)


def held_execution_ids(active: Iterable[str], outbox: Outbox, stream: str, *, max_bytes: int,
                       execution_id_of: Callable[[OutboxEntry], str] | None = None) -> list[str]:
    """What a compute node holds, for the handshake's reconciliation: executions that have not ended,
    and those whose report (a result finished while cut off, a failure after a restart) still waits in
    the outbox: they are not lost, their news is on its way, and the orchestrator must not fail them first.

    `execution_id_of` reads entries stored in a format of the caller's own ("" : an NCL frame).
    """
    held = list(active)
    seen = set(held)
    acked = outbox.acked_seq(stream)
    while entries := outbox.after(stream, acked, limit=500):
        for entry in entries:
            execution_id = execution_id_of(entry) if execution_id_of is not None else ""
            if not execution_id:
                try:
                    payload = decode_message(entry.body, max_bytes=max_bytes).payload
                except NclError:
                    continue
                execution_id = getattr(payload, "execution_id", "")
            if execution_id and execution_id not in seen:
                seen.add(execution_id)
                held.append(execution_id)
        acked = entries[-1].seq
    return held
