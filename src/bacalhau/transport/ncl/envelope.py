"""The NCL v1 frame: a version byte, a CRC-32, and a JSON envelope of metadata and payload.

Layout of the body of every NCL message (`pkg/lib/envelope/serializer.go`, `json.go`)::

    byte 0      schema version: 0x01 = JSON v1 (0x02 = Go's protobuf v1: accepted by Go, never sent by
                default, refused here)
    bytes 1..4  CRC-32 IEEE (zlib.crc32), big-endian, over bytes 5..end
    bytes 5..   {"metadata": {"<key>": "<value>", ...}, "payload": <JSON of the typed payload>}

The same metadata also travels as NATS headers; Go never reads them back (everything is re-read from
the body), so `decode` does not take them. This module knows type names only as strings; the typed
payloads and their names live in `registry.py`.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bacalhau.transport.ncl import metadata as meta
from bacalhau.transport.ncl.errors import (
    ChecksumMismatch,
    FrameTooShort,
    InvalidEnvelope,
    InvalidMetadata,
    InvalidPayload,
    MessageTooLarge,
    MissingMessageType,
    UnsupportedPayloadEncoding,
    UnsupportedSchemaVersion,
)

SCHEMA_VERSION_JSON_V1: Final = 0x01
SCHEMA_VERSION_PROTOBUF_V1: Final = 0x02
HEADER_SIZE: Final = 5
# Above Bacalhau's 10 MB job-spec limit (an AskForBid embeds the whole job) with room for the envelope.
# NATS refuses anything over the server's max_payload (1 MB by default) first: the transport must raise it.
DEFAULT_MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024

_CRC = struct.Struct(">I")


@dataclass(frozen=True)
class Envelope:
    """A decoded frame: the metadata map and the payload as parsed JSON, not yet typed."""

    metadata: dict[str, str]
    payload: Any

    @property
    def message_type(self) -> str:
        """The registered type name (`Bacalhau-Type`, or legacy `Type`)."""
        return meta.message_type(self.metadata)


def encode(
    message_type: str,
    payload: Any,
    *,
    source: str,
    metadata: Mapping[str, str] | None = None,
    event_time_ns: int | None = None,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> tuple[dict[str, str], bytes]:
    """Frame a JSON-ready payload; return `(headers, body)` for a NATS publish.

    `metadata` adds keys (e.g. `data_plane_metadata(seq)`); the type, encoding (both also under their
    legacy names) and source are always set here. The event time is `event_time_ns`, else an integer
    `Bacalhau-EventTime` already in `metadata`, else now. Raises InvalidMetadata for a key or value
    that cannot be a NATS header, InvalidPayload for a payload JSON cannot carry (NaN, non-str keys),
    MessageTooLarge when the body exceeds `max_bytes`.
    """
    if not message_type:
        raise MissingMessageType()
    if not source.strip():
        raise InvalidMetadata("bad message: Bacalhau-Source must not be blank")
    merged = dict(metadata or {})
    if event_time_ns is None:
        event_time_ns = meta.event_time_ns(merged)
    merged.update(
        {
            meta.KEY_TYPE: message_type,
            meta.KEY_LEGACY_TYPE: message_type,
            meta.KEY_PAYLOAD_ENCODING: meta.PAYLOAD_ENCODING_JSON,
            meta.KEY_LEGACY_PAYLOAD_ENCODING: meta.PAYLOAD_ENCODING_JSON,
            meta.KEY_SOURCE: source,
            meta.KEY_EVENT_TIME: str(time.time_ns() if event_time_ns is None else event_time_ns),
        }
    )
    for key, value in merged.items():
        _check_header(key, value)
    # Sorted like Go's encoding/json prints a map; the payload keeps its field order (Go's struct order).
    document = {"metadata": dict(sorted(merged.items())), "payload": payload}
    try:
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: escape it rather than lose it
            data = json.dumps(document, separators=(",", ":"), allow_nan=False).encode("ascii")
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(message_type, f"not representable as JSON: {exc}") from exc
    size = HEADER_SIZE + len(data)
    if size > max_bytes:
        raise MessageTooLarge(size, max_bytes)
    body = bytes([SCHEMA_VERSION_JSON_V1]) + _CRC.pack(zlib.crc32(data)) + data
    return dict(merged), body


def decode(body: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Envelope:
    """Check and unpack a frame, in Go's order: size, version, CRC, JSON, payload encoding, type.

    Raises only NclError subclasses: MessageTooLarge, FrameTooShort, UnsupportedSchemaVersion,
    ChecksumMismatch, InvalidEnvelope, InvalidMetadata, UnsupportedPayloadEncoding, MissingMessageType.
    A `null` payload is returned as None (Go decodes it as the zero value of the type).
    """
    size = len(body)
    if size > max_bytes:
        raise MessageTooLarge(size, max_bytes)
    if size < HEADER_SIZE:
        raise FrameTooShort(size)
    if body[0] != SCHEMA_VERSION_JSON_V1:
        raise UnsupportedSchemaVersion(body[0])
    (expected,) = _CRC.unpack_from(body, 1)
    view = memoryview(body)[HEADER_SIZE:]
    actual = zlib.crc32(view)
    if actual != expected:
        raise ChecksumMismatch(expected, actual)
    document = _parse_json(bytes(view))
    if not isinstance(document, dict):
        raise InvalidEnvelope(f"bad message: envelope is a JSON {type(document).__name__}, not an object")
    found, metadata = _field(document, "metadata")
    if not found or not isinstance(metadata, dict):
        raise InvalidMetadata("bad message: envelope has no metadata object")
    if not all(isinstance(value, str) for value in metadata.values()):
        raise InvalidMetadata("bad message: metadata values must all be strings")
    found, payload = _field(document, "payload")
    if not found:
        raise InvalidEnvelope("bad message: envelope has no payload")
    encoding = meta.payload_encoding(metadata)
    if encoding != meta.PAYLOAD_ENCODING_JSON:
        raise UnsupportedPayloadEncoding(encoding)
    if not meta.message_type(metadata):
        raise MissingMessageType()
    return Envelope(metadata=metadata, payload=payload)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(data: bytes) -> Any:
    try:
        return json.loads(data, parse_constant=_reject_constant)
    # ValueError covers JSONDecodeError, UnicodeDecodeError and over-long integers;
    # RecursionError a hostile nesting depth.
    except (ValueError, RecursionError) as exc:
        raise InvalidEnvelope(f"bad message: envelope is not JSON: {exc}") from None


def _field(document: dict[str, Any], name: str) -> tuple[bool, Any]:
    """Look a top-level key up as Go's decoder does: the exact spelling first, then any casing."""
    if name in document:
        return True, document[name]
    for key, value in document.items():
        if key.lower() == name:
            return True, value
    return False, None


# RFC 7230 token characters: what a NATS header name may contain.
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _check_header(key: str, value: str) -> None:
    if not isinstance(key, str) or not key or not set(key) <= _TOKEN_CHARS:
        raise InvalidMetadata(f"metadata key {key!r} cannot be a NATS header name")
    if not isinstance(value, str) or "\r" in value or "\n" in value or "\x00" in value:
        raise InvalidMetadata(f"metadata value of {key} must be a string without CR, LF or NUL: {value!r}")
