"""`job logs` across nodes: Bacalhau's NATS log stream between the orchestrator and a compute node.

Not NCL and not enveloped (NCL.md §1.14, `pkg/nats/proxy/logstream_*.go`, `pkg/nats/stream/*`)::

    orchestrator (consumer)                                   compute (producer)
      sub _SINBOX.<nuid>.<token> and _HEARTBEAT._SINBOX.<nuid>
      pub node.compute.<id>.ExecutionLogs/v1  ───────────────>  {consumerId, streamId, heartBeatRequestSub,
          reply _SINBOX.<nuid>.<token>                           body: base64 ExecutionLogsRequest,
                                                                 window: 16, ackSubject: _SACK.<nuid>.<token>}
                              <────────────  {"type":1,"data": base64 {"value": {Type, Line}}}  per item
      _SACK.<nuid>.<token>  ──> {"consumed": n}  every few items taken by the client ({"closed": true}: gone)
                              <────────────  {"type":2,"closeError":{"Code":1000,"Text":""}}  at the end
      _HEARTBEAT._SINBOX.<nuid> <── every 10 s: {"ActiveStreamIds": {subject: [ids]}}
                                ──> {"NonActiveStreamIds": {subject: [ids the consumer dropped]}}

Flow control (`window`, `ackSubject`, the `_SACK` messages) is ours, not Bacalhau's, and both ends
work without it: Go ignores unknown fields. Our producer never has more than `window` data frames
unacknowledged, so a slow websocket client makes the compute node stop reading the log file instead
of making either node buffer it. Acknowledgements carry the cumulative count, so a lost one is made
good by the next; the consumer repeats its count while it waits, so no loss can stall the stream. A
producer that ignores the window (Bacalhau's own) is bounded on our side by `LEGACY_BUFFER_BYTES`:
past it the stream ends with an error rather than dropping lines silently.

A consumer that went away (the user pressed Ctrl+C) says so on the ack subject, or answers nothing or
lists the stream as non-active, and the producer stops following the execution. A node that is not
connected gives "no responders".
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import logging
import secrets
import string
from collections.abc import AsyncIterator, Callable
from typing import Any

from bacalhau.models.errors import BacalhauError, ErrorCode, NotFoundError
from bacalhau.models.execution import ExecutionLog
from bacalhau.transport import messages as m
from bacalhau.transport.ncl import subjects
from bacalhau.transport.ncl.ack import STATUS_HEADER, STATUS_NO_RESPONDERS

log = logging.getLogger(__name__)

TYPE_DATA = 1
TYPE_CLOSE = 2
CLOSE_NORMAL = 1000
CLOSE_BAD_REQUEST = 4000
CLOSE_INTERNAL = 5000
HEARTBEAT_INTERVAL_S = 10.0
HEARTBEAT_TIMEOUT_S = 5.0
# Data frames in flight per stream (each at most ~90 KiB: a 64 KiB item, JSON-escaped, base64): ~1.5 MiB.
FLOW_WINDOW_FRAMES = 16
# The consumer acknowledges every this many frames taken (a quarter window keeps the pipe full).
ACK_EVERY_FRAMES = 4
# A consumer waiting this long for a frame repeats its count (in case an acknowledgement was lost).
ACK_REPEAT_S = 1.0
MAX_WINDOW_FRAMES = 1024
# What a producer without flow control (Bacalhau's Go compute node) may get ahead of the client.
LEGACY_BUFFER_BYTES = 16 * 1024 * 1024
_ALPHABET = string.ascii_letters + string.digits
COMPONENT = "LogStream"


def _nuid(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _b64json(value: Any) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


class LogStreamClient:
    """The consumer side (orchestrator): one NATS stream per `stream()` call."""

    def __init__(self, *, nc: Any) -> None:
        self._nc = nc

    async def stream(self, node_id: str, request: m.LogStreamRequest) -> AsyncIterator[ExecutionLog]:
        """Yield the execution's log items from `node_id`; raises NotFoundError/BacalhauError on failure.

        Each item is acknowledged once the caller asks for the next one, so the producer runs at most
        `FLOW_WINDOW_FRAMES` ahead of the caller. Closing the generator tells the producer to stop.
        """
        nuid, token = _nuid(22), _nuid(8)
        reply = f"_SINBOX.{nuid}.{token}"
        ack_subject = f"_SACK.{nuid}.{token}"
        heartbeat_subject = f"_HEARTBEAT._SINBOX.{nuid}"
        target = subjects.execution_logs(node_id)
        frames = _FrameBuffer(max_bytes=LEGACY_BUFFER_BYTES)

        async def on_heartbeat(msg: Any) -> None:
            # Everything the producer lists is still wanted while this generator runs.
            with contextlib.suppress(Exception):
                await self._nc.publish(msg.reply, json.dumps({"NonActiveStreamIds": {}}).encode())

        consumed = 0
        acked = 0

        async def acknowledge(**extra: bool) -> None:
            nonlocal acked
            acked = consumed
            with contextlib.suppress(Exception):
                await self._nc.publish(ack_subject, json.dumps({"consumed": consumed, **extra}).encode())

        subs = [await self._nc.subscribe(reply, cb=frames.put)]
        subs.append(await self._nc.subscribe(heartbeat_subject, cb=on_heartbeat))
        ended = False
        try:
            body = {
                "consumerId": f"_SINBOX.{nuid}.",
                "streamId": token,
                "heartBeatRequestSub": heartbeat_subject,
                "body": _b64json({"ExecutionID": request.execution_id, "NodeID": node_id,
                                  "Tail": request.tail, "Follow": request.follow}),
                "window": FLOW_WINDOW_FRAMES,
                "ackSubject": ack_subject,
            }
            await self._nc.publish(target, json.dumps(body).encode(), reply=reply)
            while True:
                msg = await frames.get(idle_s=ACK_REPEAT_S)
                if msg is None:
                    if consumed:
                        await acknowledge()
                    continue
                if msg is _OVERFLOW:
                    raise BacalhauError(
                        f"compute node {node_id} sent logs faster than the client reads them, without flow "
                        "control: the stream was cut rather than buffered without bound",
                        code=ErrorCode.ResourceExhausted, component=COMPONENT, retryable=True,
                        hint="read the logs again (a faster reader keeps up), or upgrade the compute node",
                    )
                if not msg.data:
                    status = (msg.headers or {}).get(STATUS_HEADER, "")
                    if status.startswith(STATUS_NO_RESPONDERS):
                        raise BacalhauError(
                            f"compute node {node_id} is not connected: its logs cannot be read now",
                            code=ErrorCode.NetworkFailure, component=COMPONENT, retryable=True,
                        )
                    continue
                frame = json.loads(msg.data)
                if frame.get("type") == TYPE_CLOSE:
                    ended = True
                    close = frame.get("closeError") or {}
                    code = int(close.get("Code", CLOSE_NORMAL) or CLOSE_NORMAL)
                    if code == CLOSE_NORMAL:
                        return
                    text = str(close.get("Text") or "log stream failed")
                    if code == CLOSE_BAD_REQUEST:
                        raise NotFoundError(text, component=COMPONENT)
                    raise BacalhauError(text, component=COMPONENT)
                value = json.loads(base64.b64decode(frame.get("data") or b"e30="))
                if value.get("error"):
                    raise BacalhauError(str(value["error"]), component=COMPONENT)
                item = ExecutionLog.model_validate(value.get("value") or {})
                del msg, frame, value  # hold one copy of the item while the caller sends it, not three
                yield item
                consumed += 1
                if consumed - acked >= ACK_EVERY_FRAMES:
                    await acknowledge()
        finally:
            if not ended:  # the caller went away (or failed): the producer stops now, not at its next heartbeat
                await asyncio.shield(acknowledge(closed=True))
            for sub in subs:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()


_OVERFLOW = object()  # in a _FrameBuffer: where frames started to be dropped


class _FrameBuffer:
    """Frames received and not yet taken, bounded in bytes; past the bound, `_OVERFLOW` and nothing more."""

    def __init__(self, *, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._frames: collections.deque[Any] = collections.deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._overflowed = False

    async def put(self, msg: Any) -> None:
        """The subscription callback: never blocks (a blocked callback makes nats-py drop silently)."""
        if self._overflowed:
            return
        size = len(msg.data or b"")
        if self._bytes + size > self._max_bytes:
            self._overflowed = True
            self._frames.append(_OVERFLOW)  # the reader reports it after the frames that fitted
        else:
            self._frames.append(msg)
            self._bytes += size
        self._ready.set()

    async def get(self, *, idle_s: float) -> Any:
        """The next frame (or `_OVERFLOW`), or None if none arrived within `idle_s`."""
        if not self._frames:
            self._ready.clear()
            try:
                async with asyncio.timeout(idle_s):
                    await self._ready.wait()
            except TimeoutError:
                return None
        msg = self._frames.popleft()
        if msg is not _OVERFLOW:
            self._bytes -= len(msg.data or b"")
        return msg


class LogStreamServer:
    """The producer side (compute): answers log requests with the node's `stream_logs`."""

    def __init__(self, *, nc: Any, node_id: str, stream_logs: Callable[[m.LogStreamRequest], AsyncIterator[ExecutionLog]]) -> None:
        self._nc = nc
        self._node_id = node_id
        self._stream_logs = stream_logs
        self._sub: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Subscribe to this node's log-stream subject."""
        self._sub = await self._nc.subscribe(subjects.execution_logs(self._node_id), cb=self._on_request)

    async def stop(self) -> None:
        """Stop answering and end every stream in progress."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_request(self, msg: Any) -> None:
        if not msg.reply:
            return
        task = asyncio.create_task(self._serve(msg.reply, msg.data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reply: str, raw: bytes) -> None:
        try:
            envelope = json.loads(raw)
            request = json.loads(base64.b64decode(envelope["body"]))
            stream_id = str(envelope.get("streamId", ""))
            heartbeat_subject = str(envelope.get("heartBeatRequestSub", ""))
            logs_request = m.LogStreamRequest(
                execution_id=str(request.get("ExecutionID", "")),
                follow=bool(request.get("Follow", False)),
                tail=bool(request.get("Tail", False)),
            )
            credit = _Credit.from_envelope(envelope)
        except (ValueError, KeyError, TypeError) as exc:
            await self._close(reply, CLOSE_BAD_REQUEST, f"malformed log stream request: {exc}")
            return
        acks = None
        if credit.ack_subject:
            acks = await self._nc.subscribe(credit.ack_subject, cb=credit.on_ack)
        pump = asyncio.create_task(self._pump(reply, logs_request, credit))
        watchdog = asyncio.create_task(self._watch_consumer(heartbeat_subject, stream_id))
        gone = asyncio.create_task(credit.closed.wait())
        try:
            # Whichever ends first: the log ends (pump), or the consumer went away (it said so, or the
            # watchdog found out), which also stops a follow of an execution that prints nothing.
            await asyncio.wait({pump, watchdog, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watchdog, gone):
                task.cancel()
            await asyncio.gather(pump, watchdog, gone, return_exceptions=True)
            if acks is not None:
                with contextlib.suppress(Exception):
                    await acks.unsubscribe()

    async def _pump(self, reply: str, request: m.LogStreamRequest, credit: _Credit) -> None:
        try:
            items = self._stream_logs(request)
            try:
                async for item in items:
                    await credit.acquire()  # waits while the consumer has `window` frames not yet taken
                    frame = {"type": TYPE_DATA, "data": _b64json({"value": item.to_wire()})}
                    await self._nc.publish(reply, json.dumps(frame).encode())
            finally:
                # A cancelled pump closes the log files now, not at garbage collection.
                aclose = getattr(items, "aclose", None)
                if aclose is not None:
                    await aclose()
            await self._close(reply, CLOSE_NORMAL, "")
        except NotFoundError as exc:
            await self._close(reply, CLOSE_BAD_REQUEST, exc.message)
        except BacalhauError as exc:
            await self._close(reply, CLOSE_INTERNAL, exc.message)

    async def _watch_consumer(self, heartbeat_subject: str, stream_id: str) -> None:
        """Return when the consumer no longer wants the stream (gone, or lists it as non-active)."""
        if not heartbeat_subject:
            await asyncio.Event().wait()
        target = subjects.execution_logs(self._node_id)
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)
            ask = json.dumps({"ActiveStreamIds": {target: [stream_id]}}).encode()
            try:
                answer = await self._nc.request(heartbeat_subject, ask, timeout=HEARTBEAT_TIMEOUT_S)
                dropped = json.loads(answer.data or b"{}").get("NonActiveStreamIds") or {}
            except Exception:
                return
            if stream_id in (dropped.get(target) or []):
                return

    async def _close(self, reply: str, code: int, text: str) -> None:
        frame = {"type": TYPE_CLOSE, "closeError": {"Code": code, "Text": text}}
        with contextlib.suppress(Exception):
            await self._nc.publish(reply, json.dumps(frame).encode())


class _Credit:
    """How many more data frames the consumer accepts, from the cumulative counts it acknowledges.

    Without a window in the request (Bacalhau's consumer), `acquire` never waits: such a consumer has
    no way to say it fell behind, as in Bacalhau.
    """

    def __init__(self, *, window: int, ack_subject: str) -> None:
        self.window = window
        self.ack_subject = ack_subject
        self.closed = asyncio.Event()
        self._sent = 0
        self._consumed = 0
        self._changed = asyncio.Event()

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> _Credit:
        """The flow control a request asks for; ValueError if its fields are unusable."""
        window = int(envelope.get("window") or 0)
        ack_subject = str(envelope.get("ackSubject") or "")
        if not window or not ack_subject:
            return cls(window=0, ack_subject="")
        if not 0 < window <= MAX_WINDOW_FRAMES:
            raise ValueError(f"window {window} is not between 1 and {MAX_WINDOW_FRAMES}")
        if any(token in ("", "*", ">") for token in ack_subject.split(".")) or any(c.isspace() for c in ack_subject):
            raise ValueError(f"ackSubject {ack_subject!r} is not a plain subject")
        return cls(window=window, ack_subject=ack_subject)

    async def on_ack(self, msg: Any) -> None:
        """An acknowledgement: {"consumed": n} (cumulative), with "closed": true when the consumer left."""
        try:
            ack = json.loads(msg.data or b"{}")
            consumed = int(ack.get("consumed") or 0)
        except (ValueError, TypeError, AttributeError):
            return
        self._consumed = max(self._consumed, consumed)
        if ack.get("closed"):
            self.closed.set()
        self._changed.set()

    async def acquire(self) -> None:
        """Wait until one more frame may be sent, and count it as sent."""
        while self.window and self._sent - self._consumed >= self.window:
            self._changed.clear()
            await self._changed.wait()
        self._sent += 1
