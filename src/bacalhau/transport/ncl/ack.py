"""Data-plane acknowledgements: the plain-JSON reply to each `in.msgs` / `out.msgs` message.

Not an envelope (`pkg/lib/ncl/result.go`): the receiver publishes to the message's reply inbox::

    ack    {}                                   handled (or deliberately dropped): the sender moves on
    nack   {"error": "<text>", "delay": <ns>}   not handled; Go's sender ignores `delay` (a TODO)

and the sender reads, on its `<inbox>.*` subscription, one of those or an empty body with the NATS
header `Status: 503`: nobody is subscribed to the subject (the peer is not connected).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bacalhau.transport.ncl.errors import InvalidReply

ACK_BODY: Final = b"{}"
# The NATS status header of a no-responders reply (nats.go: statusHdr / noResponders).
STATUS_HEADER: Final = "Status"
STATUS_NO_RESPONDERS: Final = "503"


class ReplyOutcome(enum.StrEnum):
    ACK = "ack"
    NACK = "nack"
    NO_RESPONDERS = "no-responders"


@dataclass(frozen=True)
class Reply:
    """What the receiver of a data-plane message answered."""

    outcome: ReplyOutcome
    error: str = ""
    delay_ns: int = 0

    @property
    def ok(self) -> bool:
        """True for an ack: the message is done and may leave the sender's outbox."""
        return self.outcome is ReplyOutcome.ACK


def encode_ack() -> bytes:
    """The ack body, `{}`."""
    return ACK_BODY


def encode_nack(error: str, *, delay_ns: int = 0) -> bytes:
    """A nack body. An empty `error` is replaced: Go omits an empty error, which would read as an ack."""
    result: dict[str, Any] = {"error": error or "message not processed"}
    if delay_ns:
        result["delay"] = delay_ns
    return json.dumps(result, separators=(",", ":")).encode()


def parse_reply(body: bytes, headers: Mapping[str, str] | None = None) -> Reply:
    """Read a reply as Go's `ParseResult` does; raises InvalidReply for anything else.

    Keys match case-insensitively and unknown keys are ignored (Go's decoder); JSON `null` is an ack.
    """
    if not body:
        status = next((v for k, v in (headers or {}).items() if k.lower() == STATUS_HEADER.lower()), "")
        if status.strip().startswith(STATUS_NO_RESPONDERS):
            return Reply(ReplyOutcome.NO_RESPONDERS, error="no responders")
        raise InvalidReply(f"empty reply with headers {dict(headers or {})}")
    try:
        result = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidReply(f"failed to parse reply: {exc}") from None
    if result is None:
        return Reply(ReplyOutcome.ACK)
    if not isinstance(result, dict):
        raise InvalidReply(f"failed to parse reply: a JSON {type(result).__name__}, not an object")
    error = _key(result, "error", "")
    delay = _key(result, "delay", 0)
    if not isinstance(error, str):
        raise InvalidReply(f"failed to parse reply: error is {error!r}, not a string")
    if isinstance(delay, bool) or not isinstance(delay, int):
        raise InvalidReply(f"failed to parse reply: delay is {delay!r}, not an integer")
    if error:
        return Reply(ReplyOutcome.NACK, error=error, delay_ns=delay)
    return Reply(ReplyOutcome.ACK, delay_ns=delay)


def _key(result: dict[str, Any], name: str, default: Any) -> Any:
    """The value of `name`, exact spelling first, then any casing; Go reads `null` as the zero value."""
    value = result[name] if name in result else next((v for k, v in result.items() if k.lower() == name), default)
    return default if value is None else value
