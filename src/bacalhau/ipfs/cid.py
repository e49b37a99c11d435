"""CID syntax: is this string a content identifier, before any network I/O is spent on it?

    CIDv0:  base58btc( 0x12 0x20 <32-byte sha2-256 digest> )          46 characters, "Qm..."
    CIDv1:  <multibase prefix> base( varint 1 | varint codec | multihash )
            multihash = varint hash code | varint digest length | digest (exactly that long)

Written here rather than taken from `py-cid`/`multiformats`: a syntax check is ~100 lines of standard
library, while those packages pull four or more dependencies (and `multiformats` had no release since 2023).
The check is structural: codec and hash codes are not looked up in the multicodec table, so a CID made
with a codec newer than this file still passes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from bacalhau.models.errors import ErrorCode, StorageError

_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {c: i for i, c in enumerate(_BASE58_ALPHABET)}
_BASE36_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_SHA2_256 = 0x12
_MAX_VARINT_BYTES = 9  # multiformats' unsigned-varint spec caps varints at 9 bytes (63 bits)
_MAX_CID_CHARS = 512  # far above any real CID (a 64-byte digest in base16 is ~140 chars)


def is_valid_cid(value: str) -> bool:
    """True when `value` is a syntactically valid CIDv0 or CIDv1 string (no path, no whitespace)."""
    if not isinstance(value, str) or not 2 <= len(value) <= _MAX_CID_CHARS:
        return False
    if len(value) == 46 and value.startswith("Qm"):
        raw = _base58_decode(value)
        return raw is not None and len(raw) == 34 and raw[0] == _SHA2_256 and raw[1] == 32
    decode = _MULTIBASE.get(value[0])
    if decode is None:
        return False
    try:
        raw = decode(value[1:])
    except (ValueError, binascii.Error):
        return False
    return raw is not None and _is_cid_v1_bytes(raw)


def require_valid_cid(cid: str) -> str:
    """Return `cid` unchanged, or raise StorageError (code BadRequest) naming it."""
    if not is_valid_cid(cid):
        raise StorageError(
            f"{cid!r} is not a valid CID",
            code=ErrorCode.BadRequest,
            hint="a CID looks like bafy... (CIDv1) or Qm... (CIDv0), without an /ipfs/ prefix or a path",
            details={"cid": str(cid)},
        )
    return cid


def multihash(cid: str) -> bytes | None:
    """The multihash (hash code | digest length | digest) a valid CID names, or None for an invalid one.

    What a Kubo blockstore keys its blocks by: a CIDv0 and the CIDv1s of the same bytes name one block.
    """
    if not is_valid_cid(cid):
        return None
    if len(cid) == 46 and cid.startswith("Qm"):
        return _base58_decode(cid)
    decode = _MULTIBASE[cid[0]]
    raw = decode(cid[1:])
    if raw is None:
        return None
    pos = 0
    for _ in range(2):  # version, codec
        decoded = _read_varint(raw, pos)
        if decoded is None:
            return None
        pos = decoded[1]
    return raw[pos:]


def _is_cid_v1_bytes(raw: bytes) -> bool:
    pos = 0
    fields: list[int] = []
    for _ in range(4):  # version, codec, hash code, digest length
        decoded = _read_varint(raw, pos)
        if decoded is None:
            return False
        value, pos = decoded
        fields.append(value)
    version, _codec, _hash_code, digest_len = fields
    return version == 1 and len(raw) - pos == digest_len


def _read_varint(raw: bytes, pos: int) -> tuple[int, int] | None:
    """(value, next position) of the unsigned varint at `pos`, or None if truncated or not minimal."""
    value = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(raw):
            return None
        byte = raw[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:  # a trailing zero group: a non-minimal encoding, rejected by the spec
                return None
            return value, pos + i + 1
    return None


def _base58_decode(text: str) -> bytes | None:
    number = 0
    for char in text:
        digit = _BASE58_INDEX.get(char)
        if digit is None:
            return None
        number = number * 58 + digit
    leading_zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * leading_zeros + body


def _base36_decode(text: str) -> bytes | None:
    if not text or any(c not in _BASE36_ALPHABET for c in text):
        return None
    number = int(text, 36)
    leading_zeros = len(text) - len(text.lstrip("0"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * leading_zeros + body


def _base32_decode(text: str) -> bytes:
    if text != text.upper() or "=" in text:
        raise ValueError("mixed case or padded base32")
    return base64.b32decode(text + "=" * (-len(text) % 8))


def _base16_decode(text: str) -> bytes:
    if any(c not in "0123456789abcdefABCDEF" for c in text):  # bytes.fromhex would skip whitespace
        raise ValueError("not base16")
    return bytes.fromhex(text)


def _base64_decode(text: str, *, urlsafe: bool, padded: bool) -> bytes:
    if (padded and len(text) % 4) or (not padded and "=" in text):
        raise ValueError("wrong base64 padding for this multibase prefix")
    altchars = b"-_" if urlsafe else b"+/"
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=altchars, validate=True)


# The multibase prefixes a CIDv1 string can carry (https://github.com/multiformats/multibase).
_MULTIBASE: dict[str, Callable[[str], bytes | None]] = {
    "b": lambda t: _base32_decode(t.upper()) if t == t.lower() else None,
    "B": _base32_decode,
    "z": _base58_decode,
    "f": lambda t: _base16_decode(t) if t == t.lower() else None,
    "F": lambda t: _base16_decode(t) if t == t.upper() else None,
    "k": _base36_decode,
    "K": lambda t: _base36_decode(t.lower()) if t == t.upper() else None,
    "m": lambda t: _base64_decode(t, urlsafe=False, padded=False),
    "M": lambda t: _base64_decode(t, urlsafe=False, padded=True),
    "u": lambda t: _base64_decode(t, urlsafe=True, padded=False),
    "U": lambda t: _base64_decode(t, urlsafe=True, padded=True),
}
