"""The compute node's end of NCL: connect, handshake, heartbeat, report through the outbox, take work.

::

            start()
               │
         DISCONNECTED ──connect (retries forever, jittered)──> subscribe <id>.in.msgs, log stream
               ▲                                                   │
               │                              HandshakeRequest (node info, active executions, checkpoints)
               │                                  │ rejected: wait (10 s -> 2 min, jittered), try again
               │                                  ▼ accepted
               └── HandshakeRequired / 5 missed ── CONNECTED: sender replays the outbox after what the
                   heartbeats / link lost          orchestrator processed; heartbeats every Interval
                                                   (the first one jittered), node info on change

Reports never wait for the link: they are appended to the persistent outbox (surviving a kill -9 of
this process) and leave when connected. Work keeps running while disconnected; the node reconciles on
every handshake (it lists its non-terminal executions; the orchestrator answers with cancellations).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from bacalhau.models.errors import BacalhauError, ErrorCode
from bacalhau.models.execution import ExecutionLog
from bacalhau.models.node import NodeInfo
from bacalhau.models.resources import Resources
from bacalhau.transport import info_changes
from bacalhau.transport import messages as m
from bacalhau.transport.backoff import Backoff
from bacalhau.transport.base import ComputeService
from bacalhau.transport.compute_side import ComputeSide
from bacalhau.transport.nats_connection import NatsConnection
from bacalhau.transport.ncl import control, dispatch, subjects
from bacalhau.transport.ncl.errors import RemoteError
from bacalhau.transport.ncl.logstream import LogStreamServer
from bacalhau.transport.ncl.payload import NclPayload
from bacalhau.transport.ncl.receiver import OrderedReceiver, publish_reply
from bacalhau.transport.ncl.registry import Message, decode_response, encode_message, type_name
from bacalhau.transport.ncl.sender import OrderedSender
from bacalhau.transport.ncl.wire_types import format_wire_time
from bacalhau.transport.outbox import Outbox

log = logging.getLogger(__name__)

ORCHESTRATOR_STREAM = "orchestrator"
COMPONENT = "ComputeConnection"
_SHUTDOWN_FLUSH_S = 2.0


class LinkStatus(enum.StrEnum):
    """Where the compute node stands with its orchestrator."""

    CREATED = "created"
    DISCONNECTED = "disconnected"
    CONNECTED = "connected"
    STOPPED = "stopped"


class NclComputeLink(ComputeSide):
    """Connects one compute node to its orchestrator. Implements transport.base.OrchestratorService."""

    def __init__(
        self,
        *,
        connection: NatsConnection,
        node_id: str,
        outbox: Outbox,
        max_message_bytes: int,
        heartbeat_interval_s: float = 15.0,
        info_update_interval_s: float = 60.0,
        request_timeout_s: float = 10.0,
        heartbeat_miss_factor: int = 5,
        reconnect_backoff: Backoff | None = None,
        ack_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._connection = connection
        self.node_id = subjects.validate_node_id(node_id)
        self._outbox = outbox
        self._max_bytes = max_message_bytes
        self._heartbeat_s = heartbeat_interval_s
        self._info_s = info_update_interval_s
        self._request_timeout_s = request_timeout_s
        self._miss_factor = heartbeat_miss_factor
        self._rng = rng or random.Random()
        self._backoff = reconnect_backoff or Backoff(base_s=min(10.0, heartbeat_interval_s), max_s=120.0, rng=self._rng)
        self._ack_timeout_s = ack_timeout_s
        self._clock = clock
        self.status = LinkStatus.CREATED
        self.last_error = ""
        self.connected = asyncio.Event()
        self._info_due = asyncio.Event()  # a static node-info change to send before the next check
        # Set when the link gave up for good (e.g. the orchestrator refused our token); see fatal_error.
        self.failed = asyncio.Event()
        self.fatal_error: BacalhauError | None = None
        self._compute: ComputeService | None = None
        self._node_info: Callable[[], NodeInfo] | None = None
        self._active: Callable[[], list[str]] = list
        self._job_type: Callable[[str], str] = lambda _execution_id: ""
        self._before_start: Callable[[], None] | None = None
        self._extensions: set[str] = set()
        self._sent_info_key: tuple[Any, ...] | None = None
        self._sent_counters_key: object = None
        self._nc: Any = None
        self._sender: OrderedSender | None = None
        self._task: asyncio.Task[None] | None = None
        self._log_server: LogStreamServer | None = None
        self._receiver = OrderedReceiver(outbox=outbox, handler=self._handle, max_message_bytes=max_message_bytes)
        self.handshakes = 0

    def attach(
        self,
        compute: ComputeService,
        *,
        node_info: Callable[[], NodeInfo],
        active_executions: Callable[[], list[str]],
        job_type: Callable[[str], str],
        before_start: Callable[[], None] | None = None,
    ) -> None:
        """The compute node behind this link (set before `start`). `before_start` runs once, at `start`:
        the node's store is open then, and nothing has been sent yet."""
        self._compute = compute
        self._node_info = node_info
        self._active = active_executions
        self._job_type = job_type
        self._before_start = before_start

    async def start(self) -> None:
        """Start connecting in the background; returns at once (the orchestrator may not be up yet)."""
        if self._task is None:
            if self._before_start is not None:
                self._before_start()
            self.status = LinkStatus.DISCONNECTED
            self._task = asyncio.create_task(self._run(), name=f"ncl-compute-{self.node_id}")

    async def announce_drain(self, *, reason: str = "node draining") -> bool:
        """Tell the orchestrator this node starts draining (no new work for it; what it runs stays).

        Only an orchestrator that announced EXTENSION_DRAIN is told (a Go one would read the notice as
        "gone now" and replace everything at once). Returns True when the orchestrator took it: the
        node's hand-backs may follow, and no new work will be placed here.
        """
        if self.status is not LinkStatus.CONNECTED or self._nc is None:
            return False
        if control.EXTENSION_DRAIN not in self._extensions:
            return False
        try:
            await self._request(
                control.ShutdownNoticeRequest(
                    NodeID=self.node_id, Reason=reason, Draining=True,
                    LastOrchestratorSeqNum=self._outbox.checkpoint(ORCHESTRATOR_STREAM),
                ),
                control.ShutdownNoticeResponse,
                timeout_s=min(2.0, self._request_timeout_s),
            )
        except (TimeoutError, BacalhauError) as exc:
            log.warning("could not announce the drain to the orchestrator: %s", exc)
            return False
        return True

    async def stop(self, *, reason: str = "node stopping") -> None:
        """Flush pending reports briefly, tell the orchestrator we leave, and close the link."""
        if self.status is LinkStatus.STOPPED:
            return
        if self.status is LinkStatus.CONNECTED and self._nc is not None:
            if self._sender is not None:
                self._sender.notify()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._sender.drained.wait(), _SHUTDOWN_FLUSH_S)
            with contextlib.suppress(BacalhauError, asyncio.TimeoutError):
                await self._request(
                    control.ShutdownNoticeRequest(
                        NodeID=self.node_id, Reason=reason,
                        LastOrchestratorSeqNum=self._outbox.checkpoint(ORCHESTRATOR_STREAM),
                    ),
                    control.ShutdownNoticeResponse,
                    timeout_s=min(2.0, self._request_timeout_s),
                )
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._stop_data_plane()
        if self._log_server is not None:
            await self._log_server.stop()
        await self._connection.close()
        self.status = LinkStatus.STOPPED

    # --- OrchestratorService (called by the compute node) -------------------------------------------

    # handshake, heartbeat, update_node_info, shutdown_notice and the reports: compute_side.ComputeSide

    @property
    def accepts_steps(self) -> bool:
        """Whether the orchestrator of the current connection announced `steps` (ours; a Go one does not)."""
        return control.EXTENSION_STEPS in self._extensions

    async def on_execution_progress(self, message: m.ExecutionProgress) -> None:
        # A Go orchestrator nacks types it does not know, which would block every later report:
        # progress goes only to an orchestrator that announced it, and is dropped while unknown.
        if control.EXTENSION_PROGRESS in self._extensions:
            self._report(message)

    async def on_run_result(self, message: m.RunResult) -> None:
        await self._report_final(message)

    async def on_compute_error(self, message: m.ComputeError) -> None:
        await self._report_final(message)

    async def _report_final(self, message: m.RunResult | m.ComputeError) -> None:
        if message.steps and not self.accepts_steps:
            # Held while the link was up to an orchestrator that takes steps; this one (after a
            # reconnect) gets each as its own report first, as a compute without steps sends them.
            # (A final report already in the outbox with its steps is sent as stored.)
            for step in message.steps:
                report = m.step_report(message.execution_id, message.job_id, step)
                if isinstance(report, m.BidResult):
                    self._report(report)
                else:
                    await self.on_execution_progress(report)
            message = message.model_copy(update={"steps": []})
        self._report(message)

    def _report(self, message: dispatch.Report) -> None:
        payload = dispatch.report_payload(message, self._job_type(message.execution_id))
        frame = dispatch.report_frame(payload, node_id=self.node_id, max_bytes=self._max_bytes)
        self._outbox.append(ORCHESTRATOR_STREAM, type_name(payload), frame)
        if self._sender is not None:
            self._sender.notify()

    # --- connection management ---------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            self._nc = await self._connection.connect()
        except BacalhauError as exc:
            # Only what retrying cannot fix ends up here (a refused token): the node must not sit
            # silently disconnected, so the error is kept for whoever runs the node to report.
            self.fatal_error = exc
            self.failed.set()
            log.error("cannot join the orchestrator: %s", exc.message)
            return
        await self._nc.subscribe(subjects.compute_in_msgs(self.node_id), cb=self._on_msg)
        if self._compute is not None:
            self._log_server = LogStreamServer(nc=self._nc, node_id=self.node_id, stream_logs=self._stream_logs)
            await self._log_server.start()
        while True:
            try:
                accepted = await self._handshake()
            except (BacalhauError, TimeoutError) as exc:
                accepted = False
                self.last_error = str(exc)
                log.info("handshake with the orchestrator failed: %s", exc)
            if accepted:
                self._backoff.reset()
                await self._connected_loop()
                self.status = LinkStatus.DISCONNECTED
                self.connected.clear()
                await self._stop_data_plane()
                delay = self._rng.uniform(0, min(1.0, self._heartbeat_s))
            else:
                delay = self._backoff.next_delay_s()
            await asyncio.sleep(delay)

    async def _handshake(self) -> bool:
        if self._node_info is None:
            raise BacalhauError("the compute link has no node attached", component=COMPONENT)
        info = self._node_info()
        response = await self._request(
            control.HandshakeRequest(
                NodeInfo=info,
                StartTime=format_wire_time(time.time_ns()),
                LastOrchestratorSeqNum=self._outbox.checkpoint(ORCHESTRATOR_STREAM),
                ActiveExecutionIDs=self._held_execution_ids(),
                LastComputeSeqNum=self._outbox.last_seq(ORCHESTRATOR_STREAM),
            ),
            control.HandshakeResponse,
        )
        if not response.accepted:
            self.last_error = f"handshake rejected by orchestrator due to {response.reason}"
            log.warning("%s", self.last_error)
            return False
        self.handshakes += 1
        # "Always trust the orchestrator" (Go): it says from where it sends, and that is our checkpoint.
        self._outbox.reset_checkpoint(ORCHESTRATOR_STREAM, response.starting_orchestrator_seq_num)
        self._extensions = set(response.extensions or [])
        self._sent_info_key, self._sent_counters_key = info_changes.static_key(info), info_changes.counters_key(info)
        self._sender = OrderedSender(
            nc=self._nc, outbox=self._outbox, stream=ORCHESTRATOR_STREAM,
            subject=subjects.compute_out_msgs(self.node_id), ack_timeout_s=self._ack_timeout_s,
        )
        await self._sender.start(peer_processed=min(response.last_compute_seq_num,
                                                    self._outbox.last_seq(ORCHESTRATOR_STREAM)))
        self.last_error = ""
        self.status = LinkStatus.CONNECTED
        self.connected.set()
        log.info("connected to the orchestrator (%s)", response.reason or "accepted")
        return True

    def _held_execution_ids(self) -> list[str]:
        return dispatch.held_execution_ids(self._active(), self._outbox, ORCHESTRATOR_STREAM, max_bytes=self._max_bytes)

    async def _connected_loop(self) -> None:
        """Heartbeats and node-info checks until the orchestrator asks for a new handshake or goes silent."""
        now = self._clock()
        last_ok = now
        # The first heartbeat is jittered so that nodes connecting together do not beat together.
        next_beat = now + self._rng.uniform(0.1, 1.0) * self._heartbeat_s
        next_info = now + self._info_s
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can turn a cancel (stop()) arriving as it
            # times out into a TimeoutError, which would keep this loop, and stop(), waiting forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(next_beat, next_info) - self._clock())):
                    await self._info_due.wait()
            now = self._clock()
            try:
                if now >= next_beat:
                    next_beat = now + self._heartbeat_s
                    if await self._beat():
                        last_ok = self._clock()
                if now >= next_info or self._info_due.is_set():
                    periodic = now >= next_info
                    self._info_due.clear()
                    next_info = now + self._info_s
                    await self._send_info_if_changed(periodic=periodic)
            except RemoteError as exc:
                if exc.handshake_required:
                    log.info("the orchestrator asks for a new handshake")
                    return
                log.warning("orchestrator refused a control request: %s", exc.message)
            if self._clock() - last_ok > self._miss_factor * self._heartbeat_s:
                self.last_error = f"no heartbeat answered for {self._miss_factor * self._heartbeat_s:g}s"
                log.warning("%s: reconnecting", self.last_error)
                return

    async def _beat(self) -> bool:
        # Live numbers at every beat: the orchestrator places work by them.
        compute = self._node_info().compute_node_info if self._node_info is not None else None
        available = compute.available_capacity if compute is not None else Resources()
        queued = compute.queue_capacity if compute is not None else Resources()
        try:
            await self._request(
                control.HeartbeatRequest(
                    NodeID=self.node_id, AvailableCapacity=available, QueueUsedCapacity=queued,
                    LastOrchestratorSeqNum=self._outbox.checkpoint(ORCHESTRATOR_STREAM),
                ),
                control.HeartbeatResponse,
            )
        except RemoteError:
            raise
        except (BacalhauError, TimeoutError) as exc:
            log.info("heartbeat failed: %s", exc)
            return False
        return True

    async def _send_info_if_changed(self, *, periodic: bool = False) -> None:
        """Send the node info when its static part changed; at the periodic check (InfoUpdateInterval)
        also when only its counters did (the input cache's hits: `node describe` shows them)."""
        if self._node_info is None:
            return
        info = self._node_info()
        key, counters = info_changes.static_key(info), info_changes.counters_key(info)
        if key == self._sent_info_key and (not periodic or counters == self._sent_counters_key):
            return
        response = await self._request(control.UpdateNodeInfoRequest(NodeInfo=info), control.UpdateNodeInfoResponse)
        if response.accepted:
            self._sent_info_key, self._sent_counters_key = key, counters

    async def _request(self, payload: NclPayload, expected: type[Any], *, timeout_s: float | None = None) -> Any:
        headers, body = encode_message(payload, source=self.node_id, max_bytes=self._max_bytes)
        try:
            reply = await self._nc.request(
                subjects.compute_out_ctrl(self.node_id), body, headers=headers,
                timeout=timeout_s or self._request_timeout_s,
            )
        except TimeoutError:
            raise
        except Exception as exc:  # nats-py: NoRespondersError, ConnectionClosedError, ...
            raise BacalhauError(
                f"orchestrator not reachable: {type(exc).__name__}: {exc}".rstrip(": "),
                code=ErrorCode.NetworkFailure, component=COMPONENT, retryable=True,
            ) from exc
        return decode_response(reply.data, expected, max_bytes=self._max_bytes)

    async def _stop_data_plane(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            await sender.stop()

    # --- inbound data plane ------------------------------------------------------------------------

    async def _on_msg(self, msg: Any) -> None:
        await self._receiver.receive(ORCHESTRATOR_STREAM, msg.data, msg.reply or "", self._publish)

    async def _publish(self, subject: str, body: bytes) -> None:
        await publish_reply(self._nc, subject, body)

    async def _handle(self, stream: str, message: Message) -> None:
        compute = self._compute
        if compute is None:
            raise BacalhauError("compute node not ready", component=COMPONENT, retryable=True)
        await dispatch.to_compute(compute, message)

    def _stream_logs(self, request: m.LogStreamRequest) -> AsyncIterator[ExecutionLog]:
        if self._compute is None:
            raise BacalhauError("compute node not ready", component=COMPONENT)
        return self._compute.stream_logs(request)
