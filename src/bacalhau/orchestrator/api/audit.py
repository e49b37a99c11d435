"""GET /api/v1/orchestrator/audit: the audit log, newest first (orchestrator/audit.py says what is in it).

Query: `limit` (default 100, at most 1,000), `next_token` (from the previous page), `since` (Unix
seconds), `principal` (an API user, or `anonymous`), `outcome=refused` (401/403 only). Needs `read:audit`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bacalhau.models.errors import BadRequestError
from bacalhau.orchestrator.api.context import context_of
from bacalhau.orchestrator.api.openapi import errors, inputs, integer, query
from bacalhau.orchestrator.api.params import query_int, query_str

router = APIRouter(prefix="/api/v1/orchestrator", tags=["orchestrator"])
MAX_LIMIT = 1000
_MAX_TOKEN_DIGITS = 18  # a sequence number fits SQLite's int64
_MAX_SINCE_S = (2**63 - 1) // 1_000_000_000  # in nanoseconds it must still fit int64


@router.get(
    "/audit",
    responses=errors(400),
    openapi_extra=inputs(
        query("limit", "entries per page (default 100, at most 1000)", integer("entries per page", MAX_LIMIT)),
        query("next_token", "the NextToken of the previous page", {"type": "string", "pattern": r"^[0-9]{0,18}$"}),
        query("since", "only entries at or after this Unix time (seconds)", integer("Unix seconds", _MAX_SINCE_S)),
        query("principal", "only this API user's entries (`anonymous` without users)"),
        query("outcome", "`refused`: only the requests the API refused",
              {"type": "string", "pattern": r"^([Rr][Ee][Ff][Uu][Ss][Ee][Dd])?$"}),
    ),
)
async def audit_log(request: Request) -> JSONResponse:
    """A page of the audit log, newest first (see the module docstring)."""
    log = context_of(request).audit
    limit = query_int(request, "limit") or 100
    if not 0 < limit <= MAX_LIMIT:
        raise BadRequestError(f"limit must be 1..{MAX_LIMIT}, got {limit}")
    token = query_str(request, "next_token")
    if token and not (token.isascii() and token.isdigit() and len(token) <= _MAX_TOKEN_DIGITS):
        raise BadRequestError(f"invalid next_token {token[:40]!r}", hint="pass the NextToken of the previous page")
    outcome = query_str(request, "outcome").lower()
    if outcome not in ("", "refused"):
        raise BadRequestError(f"invalid outcome {outcome!r}; valid: refused")
    since_s = query_int(request, "since", maximum=_MAX_SINCE_S)
    entries = [] if log is None else log.query(
        limit=limit + 1, before_seq=int(token or 0), since_ns=max(0, since_s) * 1_000_000_000,
        principal=query_str(request, "principal"), refused_only=outcome == "refused",
    )
    more = len(entries) > limit
    page = entries[:limit]
    return JSONResponse({
        "Items": [e.to_wire() for e in page],
        "NextToken": str(page[-1].seq) if more and page else "",
    })
