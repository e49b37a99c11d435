"""`job logs` across nodes: Bacalhau's NATS log stream between the orchestrator and a compute node.

Not NCL and not enveloped (NCL.md §1.14, `pkg/nats/proxy/logstream_*.go`, `pkg/nats/stream/*`)::

    orchestrator (consumer)                                   compute (producer)
      sub _SINBOX.<nuid>.<token> and _HEARTBEAT._SINBOX.<nuid>
      pub node.compute.<id>.ExecutionLogs/v1  ───────────────>  {consumerId, streamId, heartBeatRequestSub,
          reply _SINBOX.<nuid>.<token>                           body: base64 ExecutionLogsRequest}
                              <────────────  {"type":1,"data": base64 {"value": {Type, Line}}}  per line
                              <────────────  {"type":2,"closeError":{"Code":1000,"Text":""}}  at the end
      _HEARTBEAT._SINBOX.<nuid> <── every 10 s: {"ActiveStreamIds": {subject: [ids]}}
                                ──> {"NonActiveStreamIds": {subject: [ids the consumer dropped]}}

A consumer that went away (the user pressed Ctrl+C) answers nothing or lists the stream as non-active,
and the producer stops following the execution. A node that is not connected gives "no responders".
"""

from __future__ import annotations

import asyncio
import base64
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
        """Yield the execution's log lines from `node_id`; raises NotFoundError/BacalhauError on failure."""
        nuid, token = _nuid(22), _nuid(8)
        reply = f"_SINBOX.{nuid}.{token}"
        heartbeat_subject = f"_HEARTBEAT._SINBOX.{nuid}"
        target = subjects.execution_logs(node_id)
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def on_frame(msg: Any) -> None:
            await queue.put(msg)

        async def on_heartbeat(msg: Any) -> None:
            # Everything the producer lists is still wanted while this generator runs.
            with contextlib.suppress(Exception):
                await self._nc.publish(msg.reply, json.dumps({"NonActiveStreamIds": {}}).encode())

        frames = await self._nc.subscribe(reply, cb=on_frame)
        beats = await self._nc.subscribe(heartbeat_subject, cb=on_heartbeat)
        try:
            body = {
                "consumerId": f"_SINBOX.{nuid}.",
                "streamId": token,
                "heartBeatRequestSub": heartbeat_subject,
                "body": _b64json({"ExecutionID": request.execution_id, "NodeID": node_id,
                                  "Tail": request.tail, "Follow": request.follow}),
            }
            await self._nc.publish(target, json.dumps(body).encode(), reply=reply)
            while True:
                msg = await queue.get()
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
                yield ExecutionLog.model_validate(value.get("value") or {})
        finally:
            for sub in (frames, beats):
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()


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
        except (ValueError, KeyError, TypeError) as exc:
            await self._close(reply, CLOSE_BAD_REQUEST, f"malformed log stream request: {exc}")
            return
        pump = asyncio.create_task(self._pump(reply, logs_request))
        watchdog = asyncio.create_task(self._watch_consumer(heartbeat_subject, stream_id))
        try:
            # Whichever ends first: the log ends (pump), or the consumer went away (watchdog), which
            # also stops a follow of an execution that prints nothing.
            await asyncio.wait({pump, watchdog}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watchdog):
                task.cancel()
            await asyncio.gather(pump, watchdog, return_exceptions=True)

    async def _pump(self, reply: str, request: m.LogStreamRequest) -> None:
        try:
            async for line in self._stream_logs(request):
                frame = {"type": TYPE_DATA, "data": _b64json({"value": line.to_wire()})}
                await self._nc.publish(reply, json.dumps(frame).encode())
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
