"""Query parameter parsing with Go's leniency: `True`/`false`/`1`, empty strings meaning "unset"."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from fastapi import Request

from bacalhau.models.errors import BadRequestError

# No page is bigger than this; a larger limit means "everything" in practice.
_MAX_LIMIT = 1_000_000

_TRUE = {"1", "t", "true", "yes"}
_FALSE = {"0", "f", "false", "no", ""}


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False if lowered else default
    raise BadRequestError(f"invalid boolean for query parameter {name!r}: {raw!r}")


# Go parses these as int64/uint64; anything larger is a bad request, not a server error.
_MAX_INT64 = 2**63 - 1
_DECIMAL = re.compile(r"[+-]?[0-9]+")


def query_int(request: Request, name: str, default: int = 0, *, maximum: int = _MAX_INT64) -> int:
    raw = request.query_params.get(name, "")
    if not raw:
        return default
    # ASCII digits only and no blanks, as Go's strconv.ParseInt: Python's int() also takes " 1", "1_000", "٣".
    if not _DECIMAL.fullmatch(raw):
        raise BadRequestError(f"invalid integer for query parameter {name!r}: {raw!r}")
    value = int(raw)
    if value < 0:
        raise BadRequestError(f"query parameter {name!r} must not be negative")
    if value > maximum:
        raise BadRequestError(f"query parameter {name!r} is too large: {raw} (at most {maximum})")
    return value


def query_str(request: Request, name: str, default: str = "") -> str:
    raw = request.query_params.get(name)
    # The official Python SDK sends `reason=None` literally when no reason is given.
    if raw is None or raw == "None":
        return default
    return raw


def namespace(request: Request) -> str:
    return query_str(request, "namespace") or ""


@dataclass(frozen=True)
class Page:
    order_by: str
    reverse: bool
    limit: int
    offset: int


def page(request: Request, *, default_order: str) -> Page:
    """Paging from next_token (which overrides order_by/reverse/limit) or from the plain params."""
    token = query_str(request, "next_token")
    if token:
        try:
            padded = token + "=" * (-len(token) % 4)
            order_by, rev, limit, offset = base64.urlsafe_b64decode(padded).decode().split(":")
            parsed = Page(order_by, rev == "Y", int(limit), int(offset))
            if not (0 <= parsed.limit <= _MAX_LIMIT and 0 <= parsed.offset <= _MAX_INT64):
                raise ValueError("out of range")
            return parsed
        except (ValueError, UnicodeDecodeError):
            raise BadRequestError(f"invalid next_token {token!r}") from None
    return Page(
        query_str(request, "order_by") or default_order,
        query_bool(request, "reverse"),
        query_int(request, "limit", maximum=_MAX_LIMIT),
        0,
    )


def next_token(p: Page, has_more: bool) -> str:
    if not has_more or p.limit <= 0:
        return ""
    raw = f"{p.order_by}:{'Y' if p.reverse else 'N'}:{p.limit}:{p.offset + p.limit}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
