"""THE registry of NCL message types: type name <-> payload class, and typed encode/decode on top of it.

The names are Bacalhau's (`pkg/models/messages/constants.go`, `ncl/error_response.go`); a Go peer
dispatches on them, so they must match exactly. A class is looked up by its exact type (BidResult and
ComputeError share a base). An unknown name on receipt raises UnsupportedMessageType: a responder
answers it with a BacError, a data-plane receiver with a nack, never by guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, TypeVar

from bacalhau.transport.ncl import control, data
from bacalhau.transport.ncl import metadata as meta
from bacalhau.transport.ncl.bac_error import BacError
from bacalhau.transport.ncl.envelope import DEFAULT_MAX_MESSAGE_BYTES, Envelope, decode, encode
from bacalhau.transport.ncl.errors import InvalidPayload, UnexpectedMessageType, UnsupportedMessageType
from bacalhau.transport.ncl.payload import NclPayload

P = TypeVar("P", bound=NclPayload)

MESSAGE_TYPES: Final[Mapping[str, type[NclPayload]]] = MappingProxyType(
    {
        # Data plane, orchestrator -> compute.
        "AskForBid": data.AskForBidRequest,
        "BidAccepted": data.BidAcceptedRequest,
        "BidRejected": data.BidRejectedRequest,
        "CancelExecution": data.CancelExecutionRequest,
        # Data plane, compute -> orchestrator.
        "BidResult": data.BidResult,
        "RunResult": data.RunResult,
        "ComputeError": data.ComputeError,
        # Control plane requests (compute -> orchestrator) and responses.
        "transport.HandshakeRequest": control.HandshakeRequest,
        "transport.HeartbeatRequest": control.HeartbeatRequest,
        "transport.UpdateNodeInfoRequest": control.UpdateNodeInfoRequest,
        "transport.ShutdownNoticeRequest": control.ShutdownNoticeRequest,
        "transport.HandshakeResponse": control.HandshakeResponse,
        "transport.HeartbeatResponse": control.HeartbeatResponse,
        "transport.UpdateNodeInfoResponse": control.UpdateNodeInfoResponse,
        "transport.ShutdownNoticeResponse": control.ShutdownNoticeResponse,
        # Managed publisher (compute -> orchestrator, out.requests).
        "managedPublisher.PreSignURLRequest": data.ManagedPublisherPreSignURLRequest,
        "managedPublisher.PreSignURLResponse": data.ManagedPublisherPreSignURLResponse,
        # Error reply to any request.
        "BacError": BacError,
        # Extensions for Python peers, sent only to a peer that announced it understands them.
        "py.ExecutionProgress": data.ExecutionProgress,
    }
)
_NAMES: Final[Mapping[type[NclPayload], str]] = MappingProxyType({cls: name for name, cls in MESSAGE_TYPES.items()})


def type_name(payload: NclPayload | type[NclPayload]) -> str:
    """The registered name of a payload (or payload class); raises UnsupportedMessageType if not registered."""
    cls = payload if isinstance(payload, type) else type(payload)
    name = _NAMES.get(cls)
    if name is None:
        raise UnsupportedMessageType(cls.__qualname__, list(MESSAGE_TYPES))
    return name


def payload_class(name: str) -> type[NclPayload]:
    """The payload class registered under `name`; raises UnsupportedMessageType if none."""
    cls = MESSAGE_TYPES.get(name)
    if cls is None:
        raise UnsupportedMessageType(name, list(MESSAGE_TYPES))
    return cls


@dataclass(frozen=True)
class Message:
    """A received NCL message: its metadata and its typed payload."""

    metadata: dict[str, str]
    payload: NclPayload

    @property
    def type(self) -> str:
        """The registered type name."""
        return meta.message_type(self.metadata)

    @property
    def source(self) -> str:
        """The sender's name (`Bacalhau-Source`), "" if absent."""
        return self.metadata.get(meta.KEY_SOURCE, "")

    @property
    def seq_num(self) -> int | None:
        """The sender's sequence number (`Bacalhau-SeqNum`) of a data-plane message; None if absent or garbled."""
        return meta.seq_num(self.metadata)

    @property
    def event_time_ns(self) -> int | None:
        """The sender's `Bacalhau-EventTime` in Unix ns (informational; may be negative); None if unreadable."""
        return meta.event_time_ns(self.metadata)


def encode_message(
    payload: NclPayload,
    *,
    source: str,
    metadata: Mapping[str, str] | None = None,
    event_time_ns: int | None = None,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> tuple[dict[str, str], bytes]:
    """Encode a typed payload as an NCL frame: `(headers, body)` for a NATS publish or reply.

    A BacError also gets `Bacalhau-StatusCode` and `Bacalhau-ErrorCode`, as Go adds them. Raises
    UnsupportedMessageType for an unregistered class, and what `envelope.encode` raises.
    """
    name = type_name(payload)
    extra = dict(metadata or {})
    if isinstance(payload, BacError):
        extra.update(payload.envelope_metadata())
    return encode(
        name, payload.to_wire(), source=source, metadata=extra, event_time_ns=event_time_ns, max_bytes=max_bytes
    )


def decode_payload(envelope: Envelope) -> NclPayload:
    """Type an envelope's payload by its registered name.

    Keys are matched case-insensitively and unknown keys ignored, as Go's decoder does; a `null` payload
    is the type's zero value. Raises UnsupportedMessageType or InvalidPayload.
    """
    cls = payload_class(envelope.message_type)
    raw: Any = {} if envelope.payload is None else envelope.payload
    try:
        return cls.from_user(raw)
    # pydantic's ValidationError is a ValueError; RecursionError guards hostile nesting.
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidPayload(envelope.message_type, str(exc)) from None


def decode_message(body: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Message:
    """Decode a frame into metadata and typed payload. Raises only NclError subclasses."""
    envelope = decode(body, max_bytes=max_bytes)
    return Message(metadata=envelope.metadata, payload=decode_payload(envelope))


def decode_response(body: bytes, expected: type[P], *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> P:
    """Decode the reply to a request, as Go's `Publisher.Request` does: a BacError reply is raised as
    RemoteError (check `.handshake_required`), another type than `expected` as UnexpectedMessageType."""
    message = decode_message(body, max_bytes=max_bytes)
    payload = message.payload
    if isinstance(payload, BacError):
        raise payload.to_exception()
    # Exact type, as Go compares reflect types; isinstance narrows for the type checker.
    if type(payload) is not expected or not isinstance(payload, expected):
        raise UnexpectedMessageType(type_name(expected), message.type)
    return payload
