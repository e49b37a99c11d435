"""An orchestrator that speaks NCL v1 the way a Go Bacalhau v1.9 orchestrator does, for interop tests.

The mirror of go_compute_peer.py: written only from the protocol description (/work/shared/NCL.md §1.2-1.9,
§2.1), never from our transport code. Nothing here imports `bacalhau.*`; frames are built by hand with the
helpers of go_compute_peer.py (json + zlib.crc32 + struct) and sent with raw nats-py, so a passing test means
our compute understands the bytes a Go orchestrator puts on the wire.

What a Go v1.9 orchestrator does, and what this peer does (NCL.md §1.7)::

    subscribe bacalhau.global.compute.*.out.ctrl        ("orchestrator-control" responder)
        transport.HandshakeRequest      -> transport.HandshakeResponse {accepted, reason, LastComputeSeqNum,
                                           LastOrchestratorSeqNum}; then subscribe ...<id>.out.msgs (data plane)
        transport.HeartbeatRequest      -> transport.HeartbeatResponse {LastComputeSeqNum}
                                           (or BacError HandshakeRequired once `require_handshake()` was called)
        transport.UpdateNodeInfoRequest -> transport.UpdateNodeInfoResponse {accepted: true}
        transport.ShutdownNoticeRequest -> transport.ShutdownNoticeResponse {LastComputeSeqNum}
    ...<id>.out.msgs: decode, record, ack `{}` to the reply subject (plain JSON, no headers, as nats.go Respond)
    publish(): AskForBid / BidAccepted / BidRejected / CancelExecution on ...<id>.in.msgs with
        Bacalhau-SeqNum / Bacalhau-MessageID and reply = <inbox>.<uuid4>; wait for the ack
    NOT subscribed: node.management.> (a v1.9 compute's legacy RegisterNode probe gets "no responders")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats
from go_compute_peer import (
    KEY_ERROR_CODE,
    KEY_MESSAGE_ID,
    KEY_SEQ,
    KEY_STATUS_CODE,
    Ack,
    FrameError,
    decode_frame,
    encode_frame,
    end_other_tasks,
    parse_ack,
    subject_in_msgs,
    subject_out_msgs,
)
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

T = TypeVar("T")

CTRL_WILDCARD = "bacalhau.global.compute.*.out.ctrl"
CONTROL_SOURCE = "orchestrator-control"
KEY_SUBJECT = "Bacalhau-Subject"
ACK_WAIT_S = 30.0  # Go's ordered publisher AckWait


@dataclass
class Inbound:
    """A message the compute sent: a control request (out.ctrl) or a data-plane message (out.msgs)."""

    subject: str
    reply: str
    headers: dict[str, str]
    meta: dict[str, str]
    payload: Any
    at: float
    answered_with: bytes = b""
    decode_error: str | None = None

    @property
    def type(self) -> str:
        """The message's `Bacalhau-Type` (or legacy `Type`)."""
        return self.meta.get("Bacalhau-Type") or self.meta.get("Type", "")

    @property
    def seq(self) -> int | None:
        """The compute's `Bacalhau-SeqNum` (None if absent or not a number)."""
        raw = self.meta.get(KEY_SEQ)
        return int(raw) if raw is not None and raw.isdigit() else None

    @property
    def execution_id(self) -> str:
        """`ExecutionID` of a data-plane payload ('' if none)."""
        return str(self.payload.get("ExecutionID", "")) if isinstance(self.payload, dict) else ""


@dataclass
class Records:
    """Everything the peer saw, in arrival order."""

    ctrl: list[Inbound] = field(default_factory=list)
    msgs: list[Inbound] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class GoStyleOrchestrator:
    """A Go-shaped NCL v1 orchestrator: control responder, per-node data plane, acked publishes."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.records = Records()
        self.handshake_required = False  # when True, heartbeats get BacError HandshakeRequired
        self.last_compute_seq: dict[str, int] = {}
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="go-orchestrator", daemon=True)
        self._nc: NATS | None = None
        self._inbox = ""
        self._pending_acks: dict[str, asyncio.Future[Msg]] = {}
        self._data_planes: set[str] = set()

    # -- thread plumbing -------------------------------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=timeout_s)
        except TimeoutError:
            future.cancel()
            raise

    def start(self) -> GoStyleOrchestrator:
        """Connect and subscribe to the control wildcard (and the ack inbox)."""
        self._thread.start()
        self._call(self._start_async(), timeout_s=15.0)
        return self

    async def _start_async(self) -> None:
        self._nc = await nats.connect(
            self.nats_url, name="go-style-orchestrator", max_reconnect_attempts=-1, reconnect_time_wait=0.2
        )
        await self._nc.subscribe(CTRL_WILDCARD, cb=self._on_ctrl)
        self._inbox = self._nc.new_inbox()
        await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_ack)
        await self._nc.flush()

    def close(self) -> None:
        """Close the NATS connection and stop the peer's loop."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._close_async(), timeout_s=10.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10.0)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()

    async def _close_async(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None
        await end_other_tasks()

    def _record(self, bucket: list[Inbound], item: Inbound) -> None:
        with self._cond:
            bucket.append(item)
            self._cond.notify_all()

    # -- waiting ---------------------------------------------------------------------------------------------
    def wait_for(self, what: str, probe: Callable[[Records], T | None], timeout_s: float) -> T:
        """Block until `probe(records)` is truthy; fail with `what` and a summary at the deadline."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                result = probe(self.records)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}\n{self.summary()}")
                self._cond.wait(remaining)

    def stays_absent(self, probe: Callable[[Records], Any], within_s: float) -> Any:
        """Wait `within_s` and return the first truthy `probe(records)` seen (None if nothing happened)."""
        deadline = time.monotonic() + within_s
        with self._cond:
            while True:
                result = probe(self.records)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def ctrl_of(self, msg_type: str) -> list[Inbound]:
        """Control requests of `msg_type` received so far."""
        with self._cond:
            return [m for m in self.records.ctrl if m.type == msg_type]

    def msgs_snapshot(self) -> list[Inbound]:
        """Data-plane messages received so far."""
        with self._cond:
            return list(self.records.msgs)

    def summary(self) -> str:
        """What the peer has seen, for assertion messages."""
        with self._cond:
            ctrl = [f"  ctrl {m.type} at {m.at:.2f}" for m in self.records.ctrl[-15:]]
            msgs = [
                f"  msg {m.type} seq={m.meta.get(KEY_SEQ)} exec={m.execution_id} payload={json.dumps(m.payload)[:300]}"
                for m in self.records.msgs
            ]
            errs = [f"  error {e}" for e in self.records.errors]
        return "peer saw:\n" + "\n".join([*ctrl, *msgs, *errs])

    # -- control responder (NCL.md §1.7) -----------------------------------------------------------------------
    def require_handshake(self, on: bool = True) -> None:
        """From now on, answer heartbeats with BacError HandshakeRequired (until the next handshake)."""
        with self._cond:
            self.handshake_required = on

    @staticmethod
    def handshake_required_error(node_id: str) -> dict[str, Any]:
        """BacError payload of Go's NewErrHandshakeRequired (NCL.md §1.4)."""
        return {
            "Cause": f"node {node_id} not connected - handshake required",
            "Hint": "",
            "Retryable": True,
            "FailsExecution": False,
            "Component": "ConnectionManager",
            "HTTPStatusCode": 428,
            "Details": None,
            "Code": "HandshakeRequired",
        }

    async def _on_ctrl(self, msg: Msg) -> None:
        headers = dict(msg.headers or {})
        try:
            meta, payload = decode_frame(msg.data)
        except FrameError as exc:
            self._record(
                self.records.ctrl,
                Inbound(msg.subject, msg.reply, headers, {}, None, time.monotonic(), decode_error=str(exc)),
            )
            return
        inbound = Inbound(msg.subject, msg.reply, headers, meta, payload, time.monotonic())
        node_id = msg.subject.split(".")[3]
        body = payload if isinstance(payload, dict) else {}
        extra: dict[str, str] = {}
        if KEY_MESSAGE_ID in headers:  # responder.go copies the request's message ID
            extra[KEY_MESSAGE_ID] = headers[KEY_MESSAGE_ID]
        response_type: str
        response: Any
        if inbound.type == "transport.HandshakeRequest":
            node_id = str((body.get("NodeInfo") or {}).get("NodeID") or node_id)
            reconnect = node_id in self._data_planes
            await self._setup_data_plane(node_id)
            with self._cond:
                self.handshake_required = False
            response_type = "transport.HandshakeResponse"
            response = {
                "accepted": True,
                "reason": "node reconnected" if reconnect else "node registered",
                "LastComputeSeqNum": 0,
                "LastOrchestratorSeqNum": 0,
            }
        elif inbound.type == "transport.HeartbeatRequest":
            if self.handshake_required:
                response_type = "BacError"
                response = self.handshake_required_error(str(body.get("NodeID") or node_id))
                extra[KEY_STATUS_CODE] = "428"
                extra[KEY_ERROR_CODE] = "HandshakeRequired"
            else:
                response_type = "transport.HeartbeatResponse"
                response = {"LastComputeSeqNum": self.last_compute_seq.get(node_id, 0)}
        elif inbound.type == "transport.UpdateNodeInfoRequest":
            response_type, response = "transport.UpdateNodeInfoResponse", {"accepted": True}
        elif inbound.type == "transport.ShutdownNoticeRequest":
            response_type = "transport.ShutdownNoticeResponse"
            response = {"LastComputeSeqNum": self.last_compute_seq.get(node_id, 0)}
        else:
            response_type = "BacError"
            response = {
                "Cause": f"no handler found for message type: {inbound.type}",
                "Hint": "",
                "Retryable": False,
                "FailsExecution": False,
                "Component": "",
                "HTTPStatusCode": 404,
                "Details": None,
                "Code": "NotFound",
            }
            extra[KEY_STATUS_CODE] = "404"
            extra[KEY_ERROR_CODE] = "NotFound"
        resp_meta, data = encode_frame(response_type, response, source=CONTROL_SOURCE, extra_meta=extra)
        inbound.answered_with = data
        self._record(self.records.ctrl, inbound)
        if msg.reply and self._nc is not None:
            await self._nc.publish(msg.reply, data, headers=resp_meta)

    async def _setup_data_plane(self, node_id: str) -> None:
        if node_id in self._data_planes or self._nc is None:
            return
        self._data_planes.add(node_id)
        await self._nc.subscribe(subject_out_msgs(node_id), cb=self._on_data)
        await self._nc.flush()

    # -- data plane: compute -> orchestrator ---------------------------------------------------------------------
    async def _on_data(self, msg: Msg) -> None:
        headers = dict(msg.headers or {})
        try:
            meta, payload = decode_frame(msg.data)
        except FrameError as exc:
            answer = json.dumps({"error": str(exc), "delay": 100_000_000}).encode()
            self._record(
                self.records.msgs,
                Inbound(msg.subject, msg.reply, headers, {}, None, time.monotonic(), answer, decode_error=str(exc)),
            )
            if msg.reply and self._nc is not None:
                await self._nc.publish(msg.reply, answer)
            return
        inbound = Inbound(msg.subject, msg.reply, headers, meta, payload, time.monotonic(), answered_with=b"{}")
        node_id = msg.subject.split(".")[3]
        if inbound.seq is not None:
            self.last_compute_seq[node_id] = inbound.seq
        self._record(self.records.msgs, inbound)
        if msg.reply and self._nc is not None:
            await self._nc.publish(msg.reply, b"{}")

    # -- data plane: orchestrator -> compute -------------------------------------------------------------------
    def publish(self, node_id: str, msg_type: str, payload: Any, *, seq: int) -> Ack:
        """Publish on `...<node_id>.in.msgs` with `Bacalhau-SeqNum` = seq and a reply inbox; return the ack."""
        meta, data = encode_frame(
            msg_type,
            payload,
            source=f"orchestrator-{node_id}",
            extra_meta={KEY_SEQ: str(seq), KEY_MESSAGE_ID: f"seq-{seq}", KEY_SUBJECT: subject_in_msgs(node_id)},
        )
        return self._call(self._publish_async(subject_in_msgs(node_id), data, meta), timeout_s=ACK_WAIT_S + 5)

    async def _publish_async(self, subject: str, data: bytes, headers: dict[str, str]) -> Ack:
        assert self._nc is not None, "start() first"
        reply = f"{self._inbox}.{uuid.uuid4()}"
        future: asyncio.Future[Msg] = self._loop.create_future()
        self._pending_acks[reply] = future
        try:
            await self._nc.publish(subject, data, reply=reply, headers=headers)
            msg = await asyncio.wait_for(future, ACK_WAIT_S)
        finally:
            self._pending_acks.pop(reply, None)
        return parse_ack(msg.data, dict(msg.headers or {}))

    async def _on_ack(self, msg: Msg) -> None:
        future = self._pending_acks.get(msg.subject)
        if future is not None and not future.done():
            future.set_result(msg)
