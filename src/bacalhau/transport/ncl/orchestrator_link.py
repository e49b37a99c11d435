"""The orchestrator's end of NCL: control requests, every node's data plane, and the ComputeDirectory.

::

    bacalhau.global.compute.*.out.ctrl  ──> handshake ──> OrchestratorService.handshake ──> HandshakeResponse
                                        ──> heartbeat / node info / shutdown notice (HandshakeRequired if unknown)
    bacalhau.global.compute.*.out.msgs  ──> per-node order ──> OrderedReceiver ──> on_bid_result / on_run_result ...
    planner ──> compute(node).ask_for_bid / cancel ──> outbox stream <node> ──> OrderedSender ──> <node>.in.msgs

One wildcard subscription per plane instead of Go's subscription per node (NCL.md §5 pitfall 10):
the data-plane callback only routes each frame to one of a few lanes, by node, so a node's messages
stay in order while a slow store write for one node does not hold up every other node's heartbeat.
Messages for a node that is away wait in the persistent outbox and are replayed after its next
handshake, from the last sequence number it reports having processed.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator
from typing import Any

from bacalhau.models.errors import BacalhauError, ErrorCode
from bacalhau.models.execution import ExecutionLog
from bacalhau.transport import messages as m
from bacalhau.transport.base import ComputeService, OrchestratorService
from bacalhau.transport.ncl import control, convert, dispatch, subjects
from bacalhau.transport.ncl import metadata as meta
from bacalhau.transport.ncl.ack import encode_nack
from bacalhau.transport.ncl.bac_error import COMPONENT_CONNECTION_MANAGER, BacError, handshake_required
from bacalhau.transport.ncl.errors import NclError
from bacalhau.transport.ncl.logstream import LogStreamClient
from bacalhau.transport.ncl.payload import NclPayload
from bacalhau.transport.ncl.receiver import OrderedReceiver, publish_reply
from bacalhau.transport.ncl.registry import Message, decode_message, encode_message, type_name
from bacalhau.transport.ncl.sender import OrderedSender
from bacalhau.transport.outbox import Outbox

log = logging.getLogger(__name__)

# Lanes for data-plane messages: a node always maps to the same lane (its order is kept), and nodes
# on other lanes are not held up by one node's slow handler.
_LANES = 8
# Frames waiting per lane before new ones are refused (nacked): bounds memory under a flood.
_LANE_DEPTH = 10_000
EXTENSIONS = [control.EXTENSION_RECONCILE, control.EXTENSION_PROGRESS, control.EXTENSION_DRAIN, control.EXTENSION_STEPS]


class NclOrchestratorLink:
    """Serves NCL for an orchestrator on an open NATS client. Implements transport.base.ComputeDirectory."""

    def __init__(
        self,
        *,
        nc: Any,
        orchestrator_id: str,
        outbox: Outbox,
        max_message_bytes: int,
        ack_timeout_s: float = 30.0,
    ) -> None:
        self._nc = nc
        self._id = orchestrator_id
        self._service: OrchestratorService | None = None
        self._outbox = outbox
        self._max_bytes = max_message_bytes
        self._ack_timeout_s = ack_timeout_s
        self._source = meta.orchestrator_source(orchestrator_id)
        self._senders: dict[str, OrderedSender] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._receiver = OrderedReceiver(outbox=outbox, handler=self._handle_data, max_message_bytes=max_message_bytes)
        self._lanes: list[asyncio.Queue[tuple[str, bytes, str]]] = [
            asyncio.Queue(maxsize=_LANE_DEPTH) for _ in range(_LANES)
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: list[Any] = []
        self._logs = LogStreamClient(nc=nc)

    @property
    def service(self) -> OrchestratorService:
        """The orchestrator behind this link (given to `start`)."""
        if self._service is None:
            raise BacalhauError("the NCL orchestrator link is not started", component=COMPONENT_CONNECTION_MANAGER)
        return self._service

    async def start(self, service: OrchestratorService) -> None:
        """Serve `service` to every node: subscribe to their control and data subjects.

        The link exists before the orchestrator (which takes it as its ComputeDirectory), so the
        orchestrator's service is given here rather than to the constructor.
        """
        self._service = service
        for index, lane in enumerate(self._lanes):
            self._tasks.append(asyncio.create_task(self._drain(lane), name=f"ncl-orchestrator-lane-{index}"))
        self._subs.append(await self._nc.subscribe(subjects.ORCHESTRATOR_CTRL_SUBSCRIPTION, cb=self._on_ctrl))
        self._subs.append(await self._nc.subscribe(subjects.ORCHESTRATOR_MSGS_SUBSCRIPTION, cb=self._on_msgs))
        # Subscribed at the server, not only in the client's buffer, before anyone is told the link is
        # up: a compute that handshakes at once (a hybrid node's own) would get "no responders" and back
        # off for seconds.
        await self._nc.flush()
        # No subscription on node.management.>: a Go compute's legacy RegisterNode probe then gets "no
        # responders" at once and falls back to NCL (NCL.md §2.1 item 3).

    async def stop(self) -> None:
        """Unsubscribe and stop every node's sender; unsent messages stay in the outbox."""
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # the connection may be closing
                log.debug("unsubscribe failed: %s", exc)
        self._subs.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for sender in list(self._senders.values()):
            await sender.stop()
        self._senders.clear()

    # --- ComputeDirectory --------------------------------------------------------------------------

    def compute(self, node_id: str) -> ComputeService | None:
        """A handle on the node, whether or not it is connected now: what is sent waits in its outbox."""
        try:
            subjects.validate_node_id(node_id)
        except NclError:
            return None
        return _RemoteCompute(self, node_id)

    def node_left(self, node_id: str) -> None:
        """The orchestrator gave the node up (timeout, rejection, shutdown): stop sending to it.

        What waits for it stays in its outbox stream and is sent after its next handshake; until then
        its heartbeats get HandshakeRequired. Saves a sender retrying into the void for every lost node.
        """
        sender = self._senders.pop(node_id, None)
        if sender is not None:
            task = asyncio.get_running_loop().create_task(sender.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    def forget(self, node_id: str) -> None:
        """The node was deleted: drop what waits for it and its numbering (a comeback starts afresh)."""
        self.node_left(node_id)
        self._outbox.drop_stream(node_id)

    def enqueue(self, node_id: str, payload: dispatch.WorkPayload) -> int:
        """Append a message for `node_id` to its outbox stream and wake its sender; returns its seq."""
        frame = dispatch.work_frame(payload, orchestrator_id=self._id, node_id=node_id, max_bytes=self._max_bytes)
        seq = self._outbox.append(node_id, type_name(payload), frame)
        sender = self._senders.get(node_id)
        if sender is not None:
            sender.notify()
        return seq

    def stream_logs(self, node_id: str, request: m.LogStreamRequest) -> AsyncIterator[ExecutionLog]:
        """The execution's log lines from the node, through NATS."""
        return self._logs.stream(node_id, request)

    # --- control plane -----------------------------------------------------------------------------

    async def _on_ctrl(self, msg: Any) -> None:
        if not msg.reply:
            return  # Go's responder drops requests nobody waits for
        try:
            node_id = subjects.node_id_from_subject(msg.subject)
            message = decode_message(msg.data, max_bytes=self._max_bytes)
            response = await self._control(node_id, message)
        except BacalhauError as exc:
            response = BacError.from_error(exc)
        except Exception:
            log.exception("control request on %s failed", msg.subject)
            response = BacError(Cause="internal error while handling the request", Code=str(ErrorCode.InternalError),
                                HTTPStatusCode=500, Component=COMPONENT_CONNECTION_MANAGER)
        extra = {}
        request_id = (msg.headers or {}).get(meta.KEY_MESSAGE_ID)
        if request_id:
            extra[meta.KEY_MESSAGE_ID] = request_id  # Go's responder copies it into the response
        headers, body = encode_message(response, source=meta.SOURCE_ORCHESTRATOR_CONTROL, metadata=extra)
        try:
            await self._nc.publish(msg.reply, body, headers=headers)
        except Exception as exc:
            log.info("could not answer %s: %s", msg.subject, exc)

    async def _control(self, node_id: str, message: Message) -> NclPayload:
        payload = message.payload
        if isinstance(payload, control.HandshakeRequest):
            return await self._handshake(node_id, payload)
        if isinstance(payload, control.HeartbeatRequest):
            _same_node(node_id, payload.node_id)
            alive = await self.service.heartbeat(
                m.Heartbeat(
                    node_id=node_id,
                    available_capacity=payload.available_capacity,
                    queue_used_capacity=payload.queue_used_capacity,
                )
            )
            if not alive or node_id not in self._senders:
                return handshake_required(node_id)
            if payload.last_orchestrator_seq_num:
                self._outbox.acknowledge(node_id, min(payload.last_orchestrator_seq_num, self._outbox.last_seq(node_id)))
            return control.HeartbeatResponse(LastComputeSeqNum=self._outbox.checkpoint(node_id))
        if isinstance(payload, control.UpdateNodeInfoRequest):
            _same_node(node_id, payload.node_info.node_id)
            if node_id not in self._senders:
                return handshake_required(node_id)
            await self.service.update_node_info(m.NodeInfoUpdate(node_info=payload.node_info))
            return control.UpdateNodeInfoResponse(accepted=True)
        if isinstance(payload, control.ShutdownNoticeRequest):
            _same_node(node_id, payload.node_id)
            if node_id not in self._senders:
                return handshake_required(node_id)
            draining = bool(payload.draining)
            await self.service.shutdown_notice(
                m.ShutdownNotice(node_id=node_id, reason=payload.reason, draining=draining)
            )
            if not draining:
                # The node manager's LEAVE usually stopped the sender already (node_left).
                await self._stop_sender(node_id)
            return control.ShutdownNoticeResponse(LastComputeSeqNum=self._outbox.checkpoint(node_id))
        raise BacalhauError(
            f"no handler found for message type: {message.type}", code=ErrorCode.NotFound,
            component=COMPONENT_CONNECTION_MANAGER,
        )

    async def _handshake(self, node_id: str, request: control.HandshakeRequest) -> control.HandshakeResponse:
        _same_node(node_id, request.node_info.node_id)
        outcome = await self.service.handshake(
            m.Handshake(node_info=request.node_info, active_execution_ids=request.active_execution_ids)
        )
        if not outcome.accepted:
            await self._stop_sender(node_id)
            return control.HandshakeResponse(accepted=False, reason=outcome.reason)
        # What the node received from us: trust its checkpoint unless it is ahead of anything we ever
        # sent (our outbox was lost); then restart it from what it acknowledged to us.
        last_sent = self._outbox.last_seq(node_id)
        start = request.last_orchestrator_seq_num
        if start > last_sent:
            start = self._outbox.acked_seq(node_id)
        # What we received from the node: a node that lost its own outbox counts from zero again.
        if request.last_compute_seq_num is not None and request.last_compute_seq_num < self._outbox.checkpoint(node_id):
            log.warning("node %s restarted its message numbering (lost its data?): resetting", node_id)
            self._outbox.reset_checkpoint(node_id, request.last_compute_seq_num)
        await self._stop_sender(node_id)
        sender = OrderedSender(
            nc=self._nc, outbox=self._outbox, stream=node_id, subject=subjects.compute_in_msgs(node_id),
            ack_timeout_s=self._ack_timeout_s,
        )
        self._senders[node_id] = sender
        await sender.start(peer_processed=start)
        for execution_id in outcome.cancel_execution_ids:
            self.enqueue(node_id, convert.cancel_to_ncl(
                m.CancelExecution(execution_id=execution_id, reason="the orchestrator no longer wants this execution")
            ))
        return control.HandshakeResponse(
            accepted=True,
            reason=outcome.reason or control.REASON_NODE_REGISTERED,
            LastComputeSeqNum=self._outbox.checkpoint(node_id),
            LastOrchestratorSeqNum=start,
            Extensions=list(EXTENSIONS),
        )

    async def _stop_sender(self, node_id: str) -> None:
        sender = self._senders.pop(node_id, None)
        if sender is not None:
            await sender.stop()

    # --- data plane --------------------------------------------------------------------------------

    async def _on_msgs(self, msg: Any) -> None:
        try:
            node_id = subjects.node_id_from_subject(msg.subject)
        except NclError as exc:
            log.warning("data message on %s ignored: %s", msg.subject, exc.message)
            return
        lane = self._lanes[zlib.crc32(node_id.encode()) % _LANES]
        if lane.full():
            # Bounded memory whatever the nodes send: refuse now, the sender keeps it and resends later.
            # Its sequence number (mirrored in the headers) keeps the node's later messages waiting
            # behind it, so the order holds.
            seq = meta.seq_num(dict(msg.headers or {}))
            if seq is not None:
                self._receiver.refuse_from(node_id, seq)
            if msg.reply:
                await self._publish(msg.reply, encode_nack("orchestrator busy, resend later", delay_ns=1_000_000_000))
            return
        lane.put_nowait((node_id, msg.data, msg.reply or ""))

    async def _drain(self, lane: asyncio.Queue[tuple[str, bytes, str]]) -> None:
        while True:
            node_id, body, reply = await lane.get()
            await self._receiver.receive(node_id, body, reply, self._publish)

    async def _publish(self, subject: str, body: bytes) -> None:
        await publish_reply(self._nc, subject, body)

    async def _handle_data(self, node_id: str, message: Message) -> None:
        await dispatch.to_orchestrator(self.service, node_id, message)


class _RemoteCompute:
    """The ComputeService of a node reached through NCL: calls become messages in its outbox."""

    def __init__(self, link: NclOrchestratorLink, node_id: str) -> None:
        self._link = link
        self._node_id = node_id

    async def ask_for_bid(self, request: m.AskForBid) -> None:
        self._link.enqueue(self._node_id, dispatch.work_payload(request))

    async def accept_bid(self, request: m.BidAccepted) -> None:
        self._link.enqueue(self._node_id, dispatch.work_payload(request))

    async def cancel_execution(self, request: m.CancelExecution) -> None:
        self._link.enqueue(self._node_id, dispatch.work_payload(request))

    def stream_logs(self, request: m.LogStreamRequest) -> AsyncIterator[ExecutionLog]:
        return self._link.stream_logs(self._node_id, request)


def _same_node(subject_node: str, payload_node: str) -> None:
    """A node speaks only for itself (NCL.md §5 pitfall 14): the subject and payload IDs must agree."""
    if payload_node and payload_node != subject_node:
        raise BacalhauError(
            f"node {subject_node} sent a request for node {payload_node}",
            code=ErrorCode.Unauthorized, component=COMPONENT_CONNECTION_MANAGER,
        )

