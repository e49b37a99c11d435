"""Ordered, at-least-once delivery of one outbox stream to a handler in the same process.

What NCL's sender and receiver do over NATS (outbox.py, ncl/sender.py, ncl/receiver.py), for a peer
that lives in this process: each message is appended to the persistent outbox first, so a `kill -9`
loses nothing acknowledged to its caller, but it is handed over as the object it is, with no encoding
on the way, no socket and no acknowledgement message::

    append(type, frame, call) ──> outbox (one INSERT) ──> running? queue ──> call() one at a time, in order
                                                           stopped: waits in the outbox
    start() ──> what the outbox holds after the last acknowledged (decoded, `replay`) ──> then the queue
    delivered ──> acknowledged in the outbox at most ACK_INTERVAL_S later, and at `stop`

A handler that raises is called again with the same message after a backoff (100 ms -> 5 s), and the
messages behind it wait: the order is kept, as NCL's receiver keeps it by refusing what follows a
refused message. After a crash, what was delivered but not yet acknowledged is delivered again;
every handler of the link takes a message it has seen as the duplicate it is (the calls are
idempotent per execution state), as it does for NCL's replays.

A lane without an outbox keeps its messages in memory only, across stops, until they are delivered:
for messages whose loss in a crash the receiver's own reconciliation covers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from bacalhau.transport.ncl.errors import NclError
from bacalhau.transport.ncl.registry import Message, decode_message
from bacalhau.transport.outbox import Frame, Outbox, OutboxEntry

log = logging.getLogger(__name__)

ACK_INTERVAL_S = 0.5
_RETRY_FIRST_S = 0.1
_RETRY_MAX_S = 5.0
_PAGE = 100

Call = Callable[[], Awaitable[None]]


class OutboxLane:
    """Delivers the messages of `stream` to `replay` (stored frames) or to their own call (live ones).

    With `outbox=None` nothing is stored: messages wait in memory while the lane is stopped and are
    delivered after the next start; a crash loses them (for work the receiver's reconciliation covers).
    """

    def __init__(self, *, outbox: Outbox | None, stream: str, max_message_bytes: int, name: str,
                 replay: Callable[[Message], Awaitable[None]] | None = None,
                 decode: Callable[[OutboxEntry], Call | None] | None = None) -> None:
        """`replay` hands over a stored NCL frame, `decode` a stored entry of the caller's own format;
        a lane without an outbox stores nothing and needs neither."""
        self._outbox = outbox
        self._stream = stream
        self._replay = replay
        # Stored entries in a format of the caller's own (None: not one of them, an NCL frame).
        self._decode = decode
        self._max_bytes = max_message_bytes
        self._name = name
        self._queue: deque[tuple[int, Call]] = deque()
        self._wake = asyncio.Event()
        # True: appends are queued; False: the backlog is still read from the outbox.
        self._live = outbox is None
        self._seq = 0  # numbering of a lane without an outbox
        self._delivered = 0
        self._acked = 0
        self._ack_handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()  # nothing queued and nothing being delivered
        self.retries = 0

    @property
    def running(self) -> bool:
        """Whether messages are being delivered (between `start` and `stop`)."""
        return self._task is not None

    def append(self, msg_type: str, frame: Callable[[int], Frame], call: Call) -> int:
        """Store the message, then deliver it with `call` (when running; otherwise at the next start)."""
        if self._outbox is None:
            return self.enqueue(call)
        return self._queue_live(self._outbox.append(self._stream, msg_type, frame), call)

    def enqueue(self, call: Call) -> int:
        """A lane without an outbox: deliver `call` in turn (nothing to encode, nothing stored)."""
        self._seq += 1
        return self._queue_live(self._seq, call)

    def _queue_live(self, seq: int, call: Call) -> int:
        if self._live:
            self._queue.append((seq, call))
            if self._task is not None:
                self.idle.clear()
                self._wake.set()
        return seq

    def start(self) -> None:
        """Deliver what the outbox holds after the last acknowledged message, then new ones. Idempotent."""
        if self._task is not None:
            return
        if self._outbox is not None:
            self._live = False
            self._queue.clear()
            self._delivered = self._acked = self._outbox.acked_seq(self._stream)
        self.idle.clear()
        self._wake.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"lane-{self._name}")

    async def stop(self, *, flush_s: float = 0.0) -> None:
        """Stop delivering (after up to `flush_s` for what is queued); acknowledge what was delivered.
        What was not delivered waits for the next start (in the outbox, or here). Idempotent."""
        task = self._task
        if task is None:
            return
        if flush_s > 0:
            try:
                async with asyncio.timeout(flush_s):
                    await self.idle.wait()
            except TimeoutError:
                log.warning("%s: %d message(s) not delivered before stopping; they wait for the next start",
                            self._name, len(self._queue))
        if self._task is not task:
            return  # another stop finished it meanwhile (and perhaps a start began anew)
        self._task = None
        if self._outbox is not None:
            self._live = False  # the outbox has it all: the next start reads it from there
        task.cancel()
        # Now, not after the await: a start() made meanwhile counts from what is acknowledged here.
        self.acknowledge()
        await asyncio.gather(task, return_exceptions=True)

    async def discard(self) -> None:
        """Stop, and drop what waits in memory (its receiver is gone for good)."""
        await self.stop()
        self._queue.clear()

    def acknowledge(self) -> None:
        """Forget, in the outbox, the messages delivered so far (done lazily after each delivery)."""
        if self._ack_handle is not None:
            self._ack_handle.cancel()
            self._ack_handle = None
        if self._outbox is not None and self._delivered > self._acked:
            self._outbox.acknowledge(self._stream, self._delivered)
            self._acked = self._delivered

    async def _run(self) -> None:
        while True:
            if not self._live:
                batch = self._backlog()
                if not batch:
                    # Nothing stored is left undelivered: from here on `append` queues, and since no
                    # await lies between the empty read and this switch, no message falls in between.
                    self._live = True
                    continue
                for seq, call in batch:
                    await self._deliver(seq, call)
            elif self._queue:
                seq, call = self._queue[0]
                await self._deliver(seq, call)
                self._queue.popleft()  # only once handled: a stop meanwhile leaves it for the next start
            else:
                self.idle.set()
                self._wake.clear()
                await self._wake.wait()

    def _backlog(self) -> list[tuple[int, Call]]:
        assert self._outbox is not None
        batch: list[tuple[int, Call]] = []
        for entry in self._outbox.after(self._stream, self._delivered, limit=_PAGE):
            try:
                call = self._decode(entry) if self._decode is not None else None
                if call is None:
                    if self._replay is None:
                        raise ValueError("an NCL frame, and this lane replays none")
                    call = functools.partial(self._replay, decode_message(entry.body, max_bytes=self._max_bytes))
            except (NclError, ValueError) as exc:
                log.warning("%s: stored message %d cannot be read (%s): skipped", self._name, entry.seq, exc)
                batch.append((entry.seq, _nothing))
                continue
            batch.append((entry.seq, call))
        return batch

    async def _deliver(self, seq: int, call: Call) -> None:
        delay = _RETRY_FIRST_S
        while True:
            try:
                await call()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the handler refused it: again later, nothing behind it first
                self.retries += 1
                log.warning("%s: message %d not handled (%s); trying again in %.1fs", self._name, seq, exc, delay)
                await asyncio.sleep(delay)
                delay = min(_RETRY_MAX_S, delay * 2)
        self._delivered = seq
        if self._outbox is not None and self._ack_handle is None:
            self._ack_handle = asyncio.get_running_loop().call_later(ACK_INTERVAL_S, self.acknowledge)


async def _nothing() -> None:
    return None
