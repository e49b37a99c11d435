"""Request bodies: the one place every route's body is read, decoded and parsed.

    bytes (capped at 10 MB, else 413)
      -> UTF-8 text          "request body is not valid UTF-8 at byte N"
      -> nesting depth       "request body nests deeper than N levels"   (a linear scan, before parsing)
      -> JSON                malformed JSON, NaN/Infinity, numbers out of range, duplicate keys
                             (a \\u escape of half a surrogate pair becomes U+FFFD, as in Go)
      -> a JSON object       "request body must be a JSON object, not an array"
      -> a wire model        pydantic's messages, joined

Every failure is a BadRequestError (400 in Bacalhau's error body, component APIServer) naming what
was wrong, never an exception the 500 handler would have to catch.
"""

from __future__ import annotations

import array
import itertools
import json
import math
import re
from typing import Any, NoReturn, TypeVar

from fastapi import Request
from pydantic import ValidationError

from bacalhau.models import constants as c
from bacalhau.models.errors import BadRequestError, RequestTooLarge, UnsupportedMediaType
from bacalhau.models.wire import WireModel

M = TypeVar("M", bound=WireModel)

# Deepest nesting accepted in a body. A real job spec nests under a dozen levels (Job.Tasks[].Engine.Params
# .EnvironmentVariables[] ...), and every level costs several Python frames later on (json's C scanner,
# the model key canonicalisation, pydantic, json encoding on the way to the store): 1,000 levels hit
# Python's recursion limit and answered 500. 64 keeps all of that far from the limit. Go's decoder allows
# 10,000, but no Bacalhau request needs more than a few dozen.
MAX_BODY_DEPTH = 64

# Go decodes JSON integers into int64/uint64 fields at most; anything wider cannot be a valid field value,
# and over 4,300 digits Python's int() itself refuses (ValueError, a 500 before this check existed).
_MIN_INT = -(2**63)
_MAX_INT = 2**64 - 1
_MAX_INT_DIGITS = len(str(_MAX_INT)) + 1  # sign included

# A JSON string literal, escapes included: its brackets do not nest anything. Unrolled-loop form so the
# regex engine scans each string once without backtracking. UTF-8 never puts an ASCII byte inside a
# multi-byte sequence, so scanning the raw bytes is exact.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Opening brackets to +1, closing ones to -1 (0xff as a signed byte), everything else deleted.
_BRACKET_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")

# A \u escape of a UTF-16 surrogate (D800-DFFF): json.loads decodes a lone one into a str that UTF-8
# cannot encode, which the store then could write but never read back.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")

# How much of an offending number or key a message quotes.
_QUOTE_CHARS = 40


def _bad(message: str, hint: str = "") -> NoReturn:
    raise BadRequestError(message, component="APIServer", hint=hint)


def _quote(text: str) -> str:
    return text if len(text) <= _QUOTE_CHARS else f"{text[:_QUOTE_CHARS]}... ({len(text)} characters)"


def nests_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether the JSON text `raw` nests brackets more than `limit` deep, outside string literals.

    No recursion, linear in len(raw) and run in C (regex, translate, accumulate): a 10 MB body of brackets
    costs well under a second, and a body with no more than `limit` opening brackets is not scanned at all.
    Mismatched brackets are left for the JSON parser to report.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    signs = _STRING.sub(b"", raw).translate(_BRACKET_SIGNS, _NOT_BRACKETS)
    return max(itertools.accumulate(array.array("b", signs)), default=0) > limit


def _reject_constant(name: str) -> NoReturn:
    _bad(
        f"request body is not valid JSON: {name} is not a JSON number",
        hint="JSON has no NaN or Infinity; send a finite number, or the value as a string",
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        _bad(
            f"request body has a number out of range: {_quote(text)}",
            hint="numbers must fit in a 64-bit float (at most about 1.8e308 in magnitude)",
        )
    return value


class _IntegerOutOfRange(Exception):
    def __init__(self, literal: str) -> None:
        self.literal = literal


def _int64(text: str) -> int:
    value = int(text) if len(text) <= _MAX_INT_DIGITS else None
    if value is None or not _MIN_INT <= value <= _MAX_INT:
        raise _IntegerOutOfRange(text)
    return value


def _key_of(text: str, literal: str) -> str:
    """The object key right before the first occurrence of `literal` in `text`, or "" (best effort).

    The JSON parser's number hook does not know where it is; naming the field (e.g. `Count`) tells the
    user far more than the digits alone. Only the text up to the literal is scanned.
    """
    at = text.find(literal)
    match = _KEY_BEFORE.search(text, max(0, at - 200), at) if at > 0 else None
    return match.group(1) if match else ""


_KEY_BEFORE = re.compile(r'"([^"\\]{1,100})"\s*:\s*-?$')


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Go keeps the last of duplicate keys silently; a body that says two things about one field is
    # almost always a mistake (a merged or hand-edited spec), so it is rejected rather than guessed at.
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                _bad(
                    f"request body has duplicate key {_quote(json.dumps(key))}",
                    hint="each key may appear once per object",
                )
            seen.add(key)
    return data


_KINDS: tuple[tuple[type, str], ...] = ((list, "an array"), (str, "a string"), (bool, "a boolean"), (int, "a number"))


def decode_object(raw: bytes) -> dict[str, Any]:
    """The JSON object in `raw` (an empty body is `{}`); BadRequestError naming what is wrong otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _bad(f"request body is not valid UTF-8 at byte {exc.start}", hint="send the JSON encoded as UTF-8")
    if not text.strip():
        return {}
    if nests_deeper_than(raw, MAX_BODY_DEPTH):
        _bad(f"request body nests deeper than {MAX_BODY_DEPTH} levels", hint="flatten deeply nested values")
    try:
        data = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_int64,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        _bad(f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except _IntegerOutOfRange as exc:
        key = _key_of(text, exc.literal)
        _bad(
            f"request body has an integer out of range{f' in {key}' if key else ''}: {_quote(exc.literal)}",
            hint="integers must fit in 64 bits (from -2^63 to 2^64-1); job fields have lower limits still "
            "(JobAdmissionControl.Limits.*)",
        )
    if _SURROGATE_ESCAPE.search(text):
        data = _without_lone_surrogates(data)
    if not isinstance(data, dict):
        kind = "null" if data is None else next((name for t, name in _KINDS if isinstance(data, t)), "a number")
        _bad(f"request body must be a JSON object, not {kind}", hint='send an object, e.g. {"Job": {...}}')
    return data


def check_media_type(content_type: str | None, *, from_browser: bool = False) -> None:
    """JSON only (or no Content-Type at all, as scripts send, but not from a browser): UnsupportedMediaType
    otherwise.

    This is the API's CSRF guard: a cross-origin page can POST text/plain, a form or multipart without
    a CORS preflight, never application/json, so refusing the first three means no page can submit a
    job, stop one or delete a node through a visitor's browser (Bacalhau decodes any body as JSON)."""
    if not content_type and not from_browser:
        return
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    raise UnsupportedMediaType(
        f"unsupported request body type {media or '(none)'!r}: the API takes application/json",
        component="APIServer",
        hint="send the body with Content-Type: application/json",
    )


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (see decode_object), refused with 413 over 10 MB and 415 when it
    is not sent as JSON (check_media_type)."""
    # A page can send a body without a Content-Type too (a Blob, an ArrayBuffer): from a browser (it says
    # where the request comes from), a body must say it is JSON.
    browser = bool(request.headers.get("origin")) or request.headers.get("sec-fetch-site", "") in ("cross-site", "same-site")
    check_media_type(request.headers.get("content-type"), from_browser=browser)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > c.MAX_REQUEST_BYTES:
        raise RequestTooLarge(
            f"request body too large: {int(declared)} bytes (limit {c.MAX_REQUEST_BYTES})",
            hint="job specs are limited to 10 MB; put large data in an input source instead",
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > c.MAX_REQUEST_BYTES:
            raise RequestTooLarge(f"request body too large: over {c.MAX_REQUEST_BYTES} bytes")
    return decode_object(bytes(body))


def _without_lone_surrogates(value: Any) -> Any:
    """`value` with each lone surrogate in its strings (keys too) replaced by U+FFFD, as Go's
    encoding/json decodes invalid UTF-16 instead of failing. A valid pair is one character already."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    return value


def parse_model(model: type[M], data: Any, what: str) -> M:
    """`data` validated as `model` (keys in any case); BadRequestError listing every problem otherwise."""
    try:
        return model.from_user(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise BadRequestError(f"invalid {what}: {problems}", component="APIServer") from None
