"""A hybrid node's own compute and its orchestrator, linked inside the process.

Bacalhau's hybrid node talks to itself through its own NATS server. Here its compute and its
orchestrator call each other directly, and NCL stays for every other node: the orchestrator reaches
compute nodes through this link's `compute(node_id)`, which answers the local one itself and hands
any other ID to the NCL link. Nothing a user sees changes but the time a job takes.

What NCL guarantees holds, without sockets, decoding, or acknowledgement messages (local_lane.py)::

    compute report ──> compute outbox "orchestrator" (its JSON) ──lane──> OrchestratorService.on_bid_result / ...
    orchestrator work ──> in memory, in order ──lane──> ComputeService.ask_for_bid / ...

Reports are stored before they are delivered, as over NCL: a result that finished just before a crash
reaches the orchestrator after the restart. Work is not: the orchestrator stored the executions before
sending, and a crash takes the compute down with it, so the handshake after the restart finds every
execution the compute never received and the orchestrator places it again (over NCL the stored
AskForBid would arrive after that same reconciliation, to a run whose result is then discarded).

    start() ──> handshake (node info; held executions, those with reports waiting included) ──refused──> backoff
                   │ accepted: both lanes deliver (first what the outbox kept), cancels for what is not wanted
                   v
               CONNECTED ── heartbeat every Interval (capacity), node info on change ── refused ──> handshake again

The lanes start only after an accepted handshake, as NCL's senders do, so a kill -9 and a restart
reconcile exactly as over NATS: the handshake lists what the compute holds, the orchestrator fails
what it lost and cancels what it no longer wants, then what waited in the outboxes is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from bacalhau.models.errors import BacalhauError
from bacalhau.models.execution import ExecutionLog
from bacalhau.models.node import NodeInfo
from bacalhau.models.resources import Resources
from bacalhau.transport import info_changes
from bacalhau.transport import messages as m
from bacalhau.transport.backoff import Backoff
from bacalhau.transport.base import ComputeDirectory, ComputeService, OrchestratorService
from bacalhau.transport.compute_side import ComputeSide
from bacalhau.transport.local_lane import OutboxLane
from bacalhau.transport.ncl import dispatch
from bacalhau.transport.ncl.compute_link import ORCHESTRATOR_STREAM, LinkStatus
from bacalhau.transport.ncl.registry import Message, type_name
from bacalhau.transport.outbox import Outbox, OutboxEntry

log = logging.getLogger(__name__)

COMPONENT = "LocalLink"
# The outbox type of a report stored by this link (its JSON), apart from NCL frames of an earlier run.
_LOCAL_TYPE = "local/"
_REPORTS: dict[str, type[dispatch.Report]] = {
    cls.__name__: cls for cls in (m.BidResult, m.ExecutionProgress, m.RunResult, m.ComputeError)
}
_SHUTDOWN_FLUSH_S = 2.0
_NO_LONGER_WANTED = "the orchestrator no longer wants this execution"


def reframe_local_reports(outbox: Outbox, *, node_id: str, max_bytes: int, job_type: Callable[[str], str]) -> int:
    """Reports a LocalLink stored (its JSON) and that were not delivered, rewritten in place as the NCL
    frames an NCL link sends; returns how many. For a compute whose data directory an in-process hybrid
    used before (an upgrade to Compute.SeparateProcess, or a crash then the other setting): the NCL
    sender would send the JSON as it is, the orchestrator would refuse it, and every later report
    would wait behind it."""
    count = 0
    acked = outbox.acked_seq(ORCHESTRATOR_STREAM)
    while entries := outbox.after(ORCHESTRATOR_STREAM, acked, limit=500):
        for entry in entries:
            cls = _REPORTS.get(entry.type.removeprefix(_LOCAL_TYPE)) if entry.type.startswith(_LOCAL_TYPE) else None
            if cls is None:
                continue
            message = cls.model_validate_json(entry.body)
            payload = dispatch.report_payload(message, job_type(message.execution_id))
            outbox.replace(ORCHESTRATOR_STREAM, entry.seq, type_name(payload),
                           dispatch.report_frame(payload, node_id=node_id, max_bytes=max_bytes))
            count += 1
        acked = entries[-1].seq
    return count


class LocalLink(ComputeSide):
    """Implements OrchestratorService for the node's compute and ComputeDirectory for its orchestrator."""

    def __init__(
        self,
        *,
        node_id: str,
        remote: ComputeDirectory,
        max_message_bytes: int,
        heartbeat_interval_s: float = 15.0,
        info_update_interval_s: float = 60.0,
        reconnect_backoff: Backoff | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_id = node_id
        self._remote = remote
        self._max_bytes = max_message_bytes
        self._heartbeat_s = heartbeat_interval_s
        self._info_s = info_update_interval_s
        self._rng = rng or random.Random()
        self._backoff = reconnect_backoff or Backoff(base_s=min(10.0, heartbeat_interval_s), max_s=120.0, rng=self._rng)
        self._clock = clock
        self._to_compute = OutboxLane(outbox=None, stream=node_id, max_message_bytes=max_message_bytes,
                                      name=f"local-work-{node_id}")
        self._to_orchestrator: OutboxLane | None = None
        self._compute_outbox: Outbox | None = None
        self._service: OrchestratorService | None = None
        self._compute: ComputeService | None = None
        self._node_info: Callable[[], NodeInfo] | None = None
        self._active: Callable[[], list[str]] = list
        self._handle = _LocalCompute(self)
        self._sent_info_key: tuple[Any, ...] | None = None
        self._sent_counters_key: object = None
        self._info_due = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self.status = LinkStatus.CREATED
        self.last_error = ""
        self.connected = asyncio.Event()
        # What node.py watches on any compute link; nothing in the process can refuse this one for good.
        self.failed = asyncio.Event()
        self.fatal_error: BacalhauError | None = None
        self.handshakes = 0

    @property
    def accepts_steps(self) -> bool:
        """Whether the orchestrator behind this link (this process's own) takes steps."""
        return self._service is not None and self._service.accepts_steps

    # --- wiring ------------------------------------------------------------------------------------

    def serve(self, service: OrchestratorService) -> None:
        """The orchestrator behind the link (it exists after the link, which is its directory)."""
        self._service = service

    def attach(
        self,
        compute: ComputeService,
        *,
        outbox: Outbox,
        node_info: Callable[[], NodeInfo],
        active_executions: Callable[[], list[str]],
    ) -> None:
        """The compute node behind the link and its outbox (set before `start`)."""
        self._compute = compute
        self._compute_outbox = outbox
        self._to_orchestrator = OutboxLane(outbox=outbox, stream=ORCHESTRATOR_STREAM, replay=self._replay_report,
                                           max_message_bytes=self._max_bytes, name=f"local-reports-{self.node_id}",
                                           decode=self._stored_report)
        self._node_info = node_info
        self._active = active_executions

    # --- ComputeDirectory (the orchestrator's side) ---------------------------------------------------

    def compute(self, node_id: str) -> ComputeService | None:
        """This node's own compute, or another node through NCL."""
        return self._handle if node_id == self.node_id else self._remote.compute(node_id)

    def node_left(self, node_id: str) -> None:
        """The orchestrator gave a node up. This one: deliver nothing more to it until it handshakes again
        (its next heartbeat is refused), as NCL stops its sender; work meanwhile waits in the outbox."""
        if node_id != self.node_id:
            node_left = getattr(self._remote, "node_left", None)
            if node_left is not None:
                node_left(node_id)
            return
        self._in_background(self._to_compute.stop())

    def forget(self, node_id: str) -> None:
        """The node was deleted: drop what waits for it."""
        if node_id != self.node_id:
            forget = getattr(self._remote, "forget", None)
            if forget is not None:
                forget(node_id)
            return
        self._in_background(self._to_compute.discard())

    # --- OrchestratorService (the compute's side): compute_side.ComputeSide, over _report -----------

    # --- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start handshaking in the background; returns at once."""
        if self._task is None:
            self.status = LinkStatus.DISCONNECTED
            self._task = asyncio.create_task(self._run(), name=f"local-link-{self.node_id}")

    async def announce_drain(self, *, reason: str = "node draining") -> bool:
        """Tell the orchestrator this node drains: no new work for it; what it runs stays."""
        if self.status is not LinkStatus.CONNECTED:
            return False
        await self._orchestrator().shutdown_notice(m.ShutdownNotice(node_id=self.node_id, reason=reason, draining=True))
        return True

    async def stop(self, *, reason: str = "node stopping") -> None:
        """Deliver pending reports briefly, tell the orchestrator the node leaves, and stop."""
        if self.status is LinkStatus.STOPPED:
            return
        lane = self._to_orchestrator
        if self.status is LinkStatus.CONNECTED:
            if lane is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_SHUTDOWN_FLUSH_S):
                        await lane.idle.wait()
            try:
                await self._orchestrator().shutdown_notice(m.ShutdownNotice(node_id=self.node_id, reason=reason))
            except BacalhauError as exc:
                log.info("could not tell the orchestrator the node leaves: %s", exc)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._stop_lanes()
        await asyncio.gather(*self._stopping, return_exceptions=True)
        self.connected.clear()
        self.status = LinkStatus.STOPPED

    async def _run(self) -> None:
        while True:
            try:
                accepted = await self._handshake()
            except BacalhauError as exc:
                accepted = False
                self.last_error = str(exc)
                log.info("handshake with the orchestrator failed: %s", exc)
            except Exception as exc:  # a bug on either side must not end the link: NCL would retry too
                accepted = False
                self.last_error = f"internal error: {exc}"
                log.exception("handshake with the orchestrator failed")
            if accepted:
                self._backoff.reset()
                await self._connected_loop()
                self.status = LinkStatus.DISCONNECTED
                self.connected.clear()
                await self._stop_lanes()
                continue
            await asyncio.sleep(self._backoff.next_delay_s())

    async def _handshake(self) -> bool:
        if self._node_info is None or self._compute_outbox is None or self._to_orchestrator is None:
            raise BacalhauError("the local link has no compute node attached", component=COMPONENT)
        info = self._node_info()
        held = dispatch.held_execution_ids(self._active(), self._compute_outbox, ORCHESTRATOR_STREAM,
                                           max_bytes=self._max_bytes, execution_id_of=self._stored_execution_id)
        outcome = await self._orchestrator().handshake(m.Handshake(node_info=info, active_execution_ids=held))
        if not outcome.accepted:
            self.last_error = f"handshake rejected by orchestrator due to {outcome.reason}"
            log.warning("%s", self.last_error)
            return False
        self.handshakes += 1
        self._sent_info_key, self._sent_counters_key = info_changes.static_key(info), info_changes.counters_key(info)
        self._to_compute.start()
        for execution_id in outcome.cancel_execution_ids:
            self.send_work(m.CancelExecution(execution_id=execution_id, reason=_NO_LONGER_WANTED))
        self._to_orchestrator.start()
        self.last_error = ""
        self.status = LinkStatus.CONNECTED
        self.connected.set()
        log.info("connected to the orchestrator in this process (%s)", outcome.reason or "accepted")
        return True

    async def _connected_loop(self) -> None:
        """Heartbeats and node-info checks until the orchestrator refuses a heartbeat."""
        now = self._clock()
        next_beat = now + self._rng.uniform(0.1, 1.0) * self._heartbeat_s
        next_info = now + self._info_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(next_beat, next_info) - self._clock())):
                    await self._info_due.wait()
            now = self._clock()
            try:
                if now >= next_beat:
                    next_beat = now + self._heartbeat_s
                    if not await self._beat():
                        log.info("the orchestrator asks for a new handshake")
                        return
                if now >= next_info or self._info_due.is_set():
                    periodic = now >= next_info
                    self._info_due.clear()
                    next_info = now + self._info_s
                    await self._send_info_if_changed(periodic=periodic)
            except BacalhauError as exc:
                log.warning("the orchestrator refused a request of its own compute: %s", exc.message)
            except Exception:  # as an InternalError answer over NCL: logged, the heartbeats go on
                log.exception("a request of the compute to its orchestrator failed")

    async def _beat(self) -> bool:
        compute = self._node_info().compute_node_info if self._node_info is not None else None
        available = compute.available_capacity if compute is not None else Resources()
        queued = compute.queue_capacity if compute is not None else Resources()
        return await self._orchestrator().heartbeat(
            m.Heartbeat(node_id=self.node_id, available_capacity=available, queue_used_capacity=queued)
        )

    async def _send_info_if_changed(self, *, periodic: bool) -> None:
        if self._node_info is None:
            return
        info = self._node_info()
        key, counters = info_changes.static_key(info), info_changes.counters_key(info)
        if key == self._sent_info_key and (not periodic or counters == self._sent_counters_key):
            return
        await self._orchestrator().update_node_info(m.NodeInfoUpdate(node_info=info))
        self._sent_info_key, self._sent_counters_key = key, counters

    async def _stop_lanes(self) -> None:
        if self._to_orchestrator is not None:
            await self._to_orchestrator.stop()
        await self._to_compute.stop()

    def _in_background(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    # --- messages ----------------------------------------------------------------------------------

    def _report(self, message: dispatch.Report) -> None:
        lane = self._to_orchestrator
        if lane is None:
            raise BacalhauError("the local link has no compute node attached", component=COMPONENT)
        # Stored as the message's own JSON (pydantic-core), not an NCL frame: nobody but this link reads
        # it back, after a crash, and the frame's encoding cost more than the rest of the append.
        body = message.model_dump_json(by_alias=True).encode()
        lane.append(_LOCAL_TYPE + type(message).__name__, lambda _seq: ({}, body),
                    functools.partial(self._deliver_report, message))

    def _stored_report(self, entry: OutboxEntry) -> Callable[[], Awaitable[None]] | None:
        """The delivery of a report this link stored; None for an NCL frame (stored before this link)."""
        cls = _REPORTS.get(entry.type.removeprefix(_LOCAL_TYPE)) if entry.type.startswith(_LOCAL_TYPE) else None
        if cls is None:
            return None
        message = cls.model_validate_json(entry.body).model_copy(update={"node_id": self.node_id})
        return functools.partial(self._deliver_report, message)

    @staticmethod
    def _stored_execution_id(entry: OutboxEntry) -> str:
        if not entry.type.startswith(_LOCAL_TYPE):
            return ""
        try:
            return str(json.loads(entry.body).get("ExecutionID") or "")
        except ValueError:
            return ""

    async def _deliver_report(self, message: dispatch.Report) -> None:
        service = self._orchestrator()
        if isinstance(message, m.BidResult):
            await service.on_bid_result(message)
        elif isinstance(message, m.ExecutionProgress):
            await service.on_execution_progress(message)
        elif isinstance(message, m.RunResult):
            await service.on_run_result(message)
        else:
            await service.on_compute_error(message)

    async def _replay_report(self, message: Message) -> None:
        await dispatch.to_orchestrator(self._orchestrator(), self.node_id, message)

    def send_work(self, message: dispatch.Work) -> None:
        """Queue work for the compute, in memory (see the module docstring), delivered in order once connected."""
        self._to_compute.enqueue(functools.partial(self._deliver_work, message))

    async def _deliver_work(self, message: dispatch.Work) -> None:
        compute = self._own_compute()
        if isinstance(message, m.AskForBid):
            await compute.ask_for_bid(message)
        elif isinstance(message, m.BidAccepted):
            await compute.accept_bid(message)
        else:
            await compute.cancel_execution(message)

    def _orchestrator(self) -> OrchestratorService:
        if self._service is None:
            raise BacalhauError("the orchestrator is not ready", component=COMPONENT, retryable=True)
        return self._service

    def _own_compute(self) -> ComputeService:
        if self._compute is None:
            raise BacalhauError("the compute node is not ready", component=COMPONENT, retryable=True)
        return self._compute

    def stream_logs(self, request: m.LogStreamRequest) -> AsyncIterator[ExecutionLog]:
        """The execution's log lines, straight from the compute node."""
        return self._own_compute().stream_logs(request)


class _LocalCompute:
    """The ComputeService the orchestrator holds for its own compute: calls become lane messages."""

    def __init__(self, link: LocalLink) -> None:
        self._link = link

    async def ask_for_bid(self, request: m.AskForBid) -> None:
        """Queued for the compute, in order with the rest of its work."""
        self._link.send_work(request)

    async def accept_bid(self, request: m.BidAccepted) -> None:
        """Queued for the compute, in order with the rest of its work."""
        self._link.send_work(request)

    async def cancel_execution(self, request: m.CancelExecution) -> None:
        """Queued for the compute, in order with the rest of its work."""
        self._link.send_work(request)

    def stream_logs(self, request: m.LogStreamRequest) -> AsyncIterator[ExecutionLog]:
        """Straight from the compute node."""
        return self._link.stream_logs(request)
