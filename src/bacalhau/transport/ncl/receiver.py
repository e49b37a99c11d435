"""The data-plane receiver: decode, drop duplicates by sequence number, handle, checkpoint, then ack.

::

    frame ──decode──> bad frame: nack {"error": why}        (never raises into the NATS read loop)
            │
            └──> Bacalhau-SeqNum <= checkpoint(peer)? ──yes──> ack (a replay: handled before)
                        │no
                        └──> handler(message) ──ok──> set_checkpoint(peer, seq) ──> ack
                                     └──raises──> nack {"error", "delay"} (the sender resends later)

The ack goes out only after the handler returned, i.e. after what it stored was committed: acking
first would let the sender forget a message a crash then loses (NCL.md §5 pitfall 4). A peer
without sequence numbers (never the case for NCL senders) is handled without duplicate detection.
Messages of one peer are handled one at a time, in order: after a refusal, later messages of that
peer are refused too until the refused one comes again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bacalhau.models.errors import BacalhauError
from bacalhau.transport.ncl.ack import encode_ack, encode_nack
from bacalhau.transport.ncl.errors import NclError
from bacalhau.transport.ncl.registry import Message, decode_message
from bacalhau.transport.outbox import Outbox

log = logging.getLogger(__name__)

Handler = Callable[[str, Message], Awaitable[None]]
"""Called with the peer's stream name and the decoded message; raises to refuse it (nack)."""

# Go's subscriber backs off 100 ms -> 5 s by consecutive failures; the delay is advisory.
_NACK_DELAY_NS = 100_000_000
_MAX_NACK_DELAY_NS = 5_000_000_000


class OrderedReceiver:
    """Handles data-plane messages, remembering per peer the last sequence number handled."""

    def __init__(self, *, outbox: Outbox, handler: Handler, max_message_bytes: int) -> None:
        self._outbox = outbox
        self._handler = handler
        self._max_bytes = max_message_bytes
        self._failures: dict[str, int] = {}
        # Per peer, the sequence number of a refused message: later ones wait until it is resent.
        self._blocked: dict[str, int] = {}
        # Counters for diagnostics and tests.
        self.handled = 0
        self.duplicates = 0
        self.refused = 0

    async def receive(self, stream: str, data: bytes, reply: str, publish: Callable[[str, bytes], Awaitable[None]]) -> None:
        """Process one frame from the peer `stream` and answer on `reply` (if any) through `publish`."""
        try:
            answer = await self._process(stream, data)
        except Exception:  # a bug must not kill the subscription: refuse and let the sender retry
            log.exception("handling a message from %s failed", stream)
            answer = encode_nack("internal error while handling the message", delay_ns=self._delay(stream))
        if reply:
            try:
                await publish(reply, answer)
            except Exception as exc:  # the link dropped: the sender times out and resends
                log.info("could not answer %s: %s", stream, exc)

    async def _process(self, stream: str, data: bytes) -> bytes:
        try:
            message = decode_message(data, max_bytes=self._max_bytes)
        except NclError as exc:
            self.refused += 1
            log.warning("refused a malformed message from %s: %s", stream, exc.message)
            return encode_nack(exc.message)
        seq = message.seq_num
        if seq is not None and seq <= self._outbox.checkpoint(stream):
            self.duplicates += 1
            return encode_ack()
        blocked = self._blocked.get(stream)
        if seq is not None and blocked is not None and seq > blocked:
            # An earlier message was refused and will be resent: handling this one first would break
            # the order, and the checkpoint would then hide the earlier one as a "duplicate".
            self.refused += 1
            return encode_nack(f"waiting for message {blocked} first", delay_ns=self._delay(stream))
        try:
            await self._handler(stream, message)
        except BacalhauError as exc:
            self.refused += 1
            if seq is not None:
                self._blocked[stream] = seq
            log.info("%s from %s not handled: %s", message.type, stream, exc.message)
            return encode_nack(exc.message, delay_ns=self._delay(stream))
        self._failures.pop(stream, None)
        self._blocked.pop(stream, None)
        if seq is not None:
            self._outbox.set_checkpoint(stream, seq)
        self.handled += 1
        return encode_ack()

    def refuse_from(self, stream: str, seq: int) -> None:
        """Message `seq` of `stream` was refused before it reached `receive` (e.g. a full queue): later
        messages of that peer wait until it comes again, as after a refusal by the handler."""
        blocked = self._blocked.get(stream)
        self._blocked[stream] = seq if blocked is None else min(blocked, seq)

    def _delay(self, stream: str) -> int:
        failures = self._failures.get(stream, 0) + 1
        self._failures[stream] = failures
        return int(min(_MAX_NACK_DELAY_NS, _NACK_DELAY_NS * 2 ** min(failures - 1, 20)))


async def publish_reply(nc: Any, subject: str, body: bytes) -> None:
    """Answer a data-plane message: a plain publish (Msg.respond would echo the request's headers)."""
    await nc.publish(subject, body)
