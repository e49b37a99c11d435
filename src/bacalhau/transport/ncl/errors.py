"""What can go wrong encoding or decoding an NCL message, one class per outcome.

Everything raised by this package on purpose derives from `NclError` (itself a `BacalhauError`), so a
receive loop catches exactly one type: a frame from a peer can never crash it with a `KeyError` or a
`json.JSONDecodeError`. Frame-level problems (what Go's `envelope` package reports as "bad message",
"unsupported encoding", "unsupported message type") derive from `MalformedFrame`; the receiver of a
data-plane message answers them with a nack, a responder with a `BacError`.
"""

from __future__ import annotations

from bacalhau.models.errors import BacalhauError, ErrorCode

COMPONENT = "NCL"

# Bacalhau error codes that have no `ErrorCode` member, as a Go peer sends them in a BacError.
CODE_HANDSHAKE_REQUIRED = "HandshakeRequired"  # pkg/orchestrator/nodes/errors.go: the compute must re-handshake
CODE_CONCURRENT_UPDATE = "ConcurrentUpdate"  # same file: lost a CAS race on the node's live state; retryable


class NclError(BacalhauError):
    """Root of every error of the NCL wire codec."""

    code = ErrorCode.BadRequest
    default_component = COMPONENT


class MalformedFrame(NclError):
    """A received frame cannot be turned into a message; the peer sent something we cannot read."""


class FrameTooShort(MalformedFrame):
    """Fewer than the 5 header bytes (version + CRC-32)."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"bad message: too short ({size} bytes; an NCL frame has a 5-byte header)",
            hint="the sender is not speaking NCL v1 (is it a pre-v1.6 Bacalhau node?)",
        )
        self.size = size


class UnsupportedSchemaVersion(MalformedFrame):
    """The first byte names a serialisation we do not speak (0x02 is Go's protobuf v1, never sent by default)."""

    def __init__(self, version: int) -> None:
        name = "protobuf-v1" if version == 2 else f"0x{version:02x}"
        super().__init__(
            f"unsupported encoding: {name} (schema version byte {version}; only 0x01 json-v1 is supported)",
            hint="configure the peer to use the default JSON serialisation (schema version 1)",
        )
        self.version = version


class ChecksumMismatch(MalformedFrame):
    """The CRC-32 in bytes 1..4 does not match the body: corrupted or truncated in transit."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"bad message: CRC check failed (header 0x{expected:08x}, body 0x{actual:08x})")
        self.expected = expected
        self.actual = actual


class InvalidEnvelope(MalformedFrame):
    """The body after the header is not JSON, or not an object `{"metadata": ..., "payload": ...}`."""


class InvalidMetadata(MalformedFrame):
    """The metadata is not a map of strings to strings (or, when sending, a key/value cannot be a NATS header)."""


class MissingMessageType(MalformedFrame):
    """Neither `Bacalhau-Type` nor the legacy `Type` key names the payload type."""

    def __init__(self) -> None:
        super().__init__(
            "bad message: metadata has no message type (Bacalhau-Type or Type)",
            hint="every NCL message must carry its registered type name in the metadata",
        )


class UnsupportedPayloadEncoding(MalformedFrame):
    """The payload encoding is not `json` (Go's registry knows no other)."""

    def __init__(self, encoding: str) -> None:
        super().__init__(f"unsupported encoding: {encoding!r} (only 'json' payloads are supported)")
        self.encoding = encoding


class UnsupportedMessageType(MalformedFrame):
    """A type name (or a Python class) that is not in the registry: the deliberate outcome for unknown messages."""

    def __init__(self, type_name: str, supported: list[str]) -> None:
        super().__init__(
            f"unsupported message type: {type_name}",
            hint=f"supported types: {', '.join(sorted(supported))}",
        )
        self.type_name = type_name
        self.supported = supported


class InvalidPayload(MalformedFrame):
    """The payload JSON does not fit the registered type's shape (wrong field types, missing Execution...)."""

    def __init__(self, type_name: str, reason: str) -> None:
        super().__init__(f"failed to deserialize {type_name} payload: {reason}")
        self.type_name = type_name


class UnexpectedMessageType(MalformedFrame):
    """A reply of a well-formed but different type than the request called for."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"unexpected payload type: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class MessageTooLarge(NclError):
    """A frame over the size limit, refused before any parsing (receive) or before sending (encode)."""

    code = ErrorCode.ResourceExhausted

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"NCL message of {size} bytes exceeds the {limit}-byte limit",
            hint="make the job spec (or the output it carries) smaller, or raise the transport's max message size",
        )
        self.size = size
        self.limit = limit


class InvalidNodeID(NclError):
    """A node ID that cannot be a NATS subject token (empty, white space, NUL, `.`, `*`, `>`)."""

    code = ErrorCode.ValidationError

    def __init__(self, node_id: str, reason: str) -> None:
        super().__init__(
            f"invalid node ID {node_id!r}: {reason}",
            hint="node IDs become NATS subject tokens: use letters, digits, '-' and '_' only",
        )
        self.node_id = node_id


class InvalidSubject(NclError):
    """A subject that is not one of the NCL subjects this package builds."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"not an NCL subject {subject!r}: {reason}")
        self.subject = subject


class InvalidReply(NclError):
    """A data-plane ack/nack reply that is neither `{}`, `{"error": ...}` nor a no-responders status."""


class RemoteError(NclError):
    """The peer answered a request with a `BacError` envelope; its fields are kept as sent.

    `remote_code` is the peer's code verbatim (Bacalhau has codes we have no enum member for, such as
    `HandshakeRequired`); `code` is our nearest `ErrorCode`.
    """

    def __init__(
        self,
        message: str,
        *,
        remote_code: str,
        component: str,
        hint: str,
        retryable: bool,
        fails_execution: bool,
        http_status_code: int,
        details: dict[str, str],
    ) -> None:
        try:
            code = ErrorCode(remote_code)
        except ValueError:
            code = ErrorCode.UnknownError
        super().__init__(message, code=code, component=component, hint=hint, details=details, retryable=retryable)
        self.remote_code = remote_code
        self.fails_execution = fails_execution
        self.http_status_code = http_status_code

    @property
    def handshake_required(self) -> bool:
        """True when the orchestrator no longer knows this connection: the compute must handshake again."""
        return self.remote_code == CODE_HANDSHAKE_REQUIRED

    @property
    def http_status(self) -> int:
        """The status the peer chose, not one inferred from our code."""
        return self.http_status_code or super().http_status
