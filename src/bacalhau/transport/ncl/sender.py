"""The data-plane sender: one outbox stream published to one subject, in order, each message acked.

::

    outbox.append ──notify()──> publish seq N with reply <inbox>.<N> ──ack {}──> outbox.acknowledge(N)
                                      │                                   │
                                      └── nack / no responders / no ack within ack_timeout_s
                                             └──> forget what is in flight, wait (jittered backoff),
                                                  publish again from the last acknowledged seq

An ack frees its message at once in memory; the outbox forgets it (a DELETE and a COMMIT, the cost of
a whole message again) at most ACK_PERSIST_S later, with whatever else was acked meanwhile, and at
`stop`. A crash in between only sends those messages again after the restart, which the receiver
takes as the duplicates they are (below): nothing acknowledged is lost, nothing is handled twice.

At most `window` messages are in flight. NATS keeps a connection's messages in order and the receiver
handles one at a time, so acks come back in order; a replay re-sends messages the receiver may already
have handled, which it recognises by `Bacalhau-SeqNum` and acknowledges without handling again. Like
Go's ordered publisher (`pkg/lib/ncl/publisher_ordered.go`), acks are plain JSON on a reply inbox;
unlike it, a failure is retried from the persistent outbox instead of being dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import sqlite3
from typing import Any

from bacalhau.models.errors import DatastoreError
from bacalhau.transport.backoff import Backoff
from bacalhau.transport.ncl.ack import Reply, ReplyOutcome, parse_reply
from bacalhau.transport.ncl.errors import InvalidReply
from bacalhau.transport.outbox import Outbox

log = logging.getLogger(__name__)

DEFAULT_ACK_TIMEOUT_S = 30.0  # Go's ordered publisher AckWait
DEFAULT_WINDOW = 64
# How long an acknowledged message may stay in the outbox before it is deleted with the others acked
# since (see the module docstring).
ACK_PERSIST_S = 0.5
_STOP_WAIT_S = 5.0


class SenderStatus(enum.StrEnum):
    """Lifecycle of an OrderedSender."""

    CREATED = "created"
    RUNNING = "running"
    BACKING_OFF = "backing-off"
    STOPPED = "stopped"


class _Rewind(Exception):
    """Internal: the in-flight window failed; publish again from the last acknowledged message."""


class OrderedSender:
    """Publishes `stream` of `outbox` to `subject` on the NATS client `nc` until stopped."""

    def __init__(
        self,
        *,
        nc: Any,
        outbox: Outbox,
        stream: str,
        subject: str,
        ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S,
        window: int = DEFAULT_WINDOW,
        backoff: Backoff | None = None,
    ) -> None:
        self._nc = nc
        self._outbox = outbox
        self.stream = stream
        self.subject = subject
        self._ack_timeout_s = ack_timeout_s
        self._window = max(1, window)
        self._backoff = backoff or Backoff(base_s=0.2, max_s=10.0)
        self.status = SenderStatus.CREATED
        self._wake = asyncio.Event()
        # Set while everything appended so far is acknowledged (shutdown waits on it).
        self.drained = asyncio.Event()
        self._inflight: dict[int, asyncio.Future[Reply]] = {}
        self._acked = 0  # highest sequence number acknowledged by the peer
        self._persisted = 0  # ... and forgotten by the outbox
        self._persist_handle: asyncio.TimerHandle | None = None
        self._generation = 0  # the outbox stream's generation this sender's acks belong to
        self._inbox = ""
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None
        # Counters for `node describe`-style diagnostics and tests.
        self.published = 0
        self.rewinds = 0

    async def start(self, *, peer_processed: int = 0) -> None:
        """Begin publishing after `peer_processed`, the last sequence number the peer says it handled.

        Everything up to it leaves the outbox now: the peer has it, whether or not its acks arrived.
        """
        if self._task is not None:
            return
        if peer_processed:
            self._outbox.acknowledge(self.stream, peer_processed)
        self._acked = self._persisted = self._outbox.acked_seq(self.stream)
        self._generation = self._outbox.generation(self.stream)
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_reply)
        self.status = SenderStatus.RUNNING
        self._task = asyncio.create_task(self._run(), name=f"ncl-sender-{self.stream}")

    def notify(self) -> None:
        """New messages were appended to the stream: publish them."""
        self.drained.clear()
        self._wake.set()

    async def stop(self) -> None:
        """Stop publishing; unacknowledged messages stay in the outbox for the next start. Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # Bounded: a stop must never hang a reconnect, whatever the task is stuck on.
            done, _ = await asyncio.wait({task}, timeout=_STOP_WAIT_S)
            if not done:
                log.warning("sender for %s did not stop within %gs; abandoning it", self.subject, _STOP_WAIT_S)
        self._persist_acks()
        self._fail_inflight()
        if self._sub is not None:
            with contextlib.suppress(Exception):  # the connection may already be closed
                await self._sub.unsubscribe()
            self._sub = None
        self.status = SenderStatus.STOPPED

    @property
    def acked(self) -> int:
        """The highest sequence number the peer acknowledged (the outbox may still hold it a moment)."""
        return self._acked

    @property
    def in_flight(self) -> int:
        """Messages published and not yet acknowledged."""
        return len(self._inflight)

    async def _run(self) -> None:
        while True:
            try:
                await self._publish_window()
                self._backoff.reset()
            except _Rewind as exc:
                self.rewinds += 1
                self._fail_inflight()
                delay = self._backoff.next_delay_s()
                log.info("resending %s from seq %d in %.1fs: %s", self.subject, self._acked + 1, delay, exc)
                self.status = SenderStatus.BACKING_OFF
                await asyncio.sleep(delay)
                self.status = SenderStatus.RUNNING

    async def _publish_window(self) -> None:
        """Publish and await acks until the outbox is drained, then wait to be notified."""
        sent_upto = self._acked
        while True:
            room = self._window - len(self._inflight)
            entries = self._outbox.after(self.stream, sent_upto, limit=room) if room > 0 else []
            for entry in entries:
                future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
                self._inflight[entry.seq] = future
                try:
                    await self._nc.publish(self.subject, entry.body, reply=f"{self._inbox}.{entry.seq}",
                                           headers=entry.headers or None)
                except Exception as exc:  # connection closed or reconnecting with a full buffer
                    raise _Rewind(f"publish failed: {exc}") from exc
                self.published += 1
                sent_upto = entry.seq
            if self._inflight:
                await self._await_oldest()
                continue
            self._wake.clear()
            # Re-check after clearing: a notify() between the read and the clear is not lost.
            if self._outbox.after(self.stream, sent_upto, limit=1):
                continue
            self.drained.set()
            await self._wake.wait()

    async def _await_oldest(self) -> None:
        seq = min(self._inflight)
        future = self._inflight[seq]
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancel that arrives in the
            # same step as the ack (CPython gh-86296), and stop() then waited forever for this task.
            async with asyncio.timeout(self._ack_timeout_s):
                reply = await asyncio.shield(future)
        except TimeoutError:
            raise _Rewind(f"no ack for seq {seq} within {self._ack_timeout_s:g}s") from None
        del self._inflight[seq]
        if reply.outcome is ReplyOutcome.NO_RESPONDERS:
            raise _Rewind("no responders: the peer is not listening")
        if not reply.ok:
            raise _Rewind(f"peer refused seq {seq}: {reply.error}")
        self._acked = max(self._acked, seq)
        if self._persist_handle is None:
            self._persist_handle = asyncio.get_running_loop().call_later(ACK_PERSIST_S, self._persist_acks)

    def _persist_acks(self) -> None:
        """Let the outbox forget what was acknowledged so far (see the module docstring)."""
        if self._persist_handle is not None:
            self._persist_handle.cancel()
            self._persist_handle = None
        if self._acked <= self._persisted:
            return
        if self._outbox.generation(self.stream) != self._generation:
            # The stream was dropped since (its peer deleted): numbered from 1 again, its next messages
            # would be deleted unsent by these acks.
            self._persisted = self._acked
            return
        try:
            self._outbox.acknowledge(self.stream, self._acked)
        except (DatastoreError, sqlite3.Error) as exc:  # the messages stay; the next ack or stop tries again
            log.warning("could not forget the messages %s acknowledged: %s", self.subject, exc)
            return
        self._persisted = self._acked

    def _on_reply_now(self, subject: str, data: bytes, headers: dict[str, str] | None) -> None:
        token = subject.rsplit(".", 1)[-1]
        try:
            seq = int(token)
        except ValueError:
            log.warning("reply on unexpected subject %s ignored", subject)
            return
        future = self._inflight.get(seq)
        if future is None or future.done():
            return  # a late reply to a message already given up on (it will be resent)
        try:
            future.set_result(parse_reply(data, headers))
        except InvalidReply as exc:
            future.set_result(Reply(ReplyOutcome.NACK, error=exc.message))

    async def _on_reply(self, msg: Any) -> None:
        self._on_reply_now(msg.subject, msg.data, msg.headers)

    def _fail_inflight(self) -> None:
        for future in self._inflight.values():
            if not future.done():
                future.cancel()
        self._inflight.clear()
