"""Which capability a request needs, as Bacalhau v1.9 decides it (pkg/authz/capabilities.go).

The path is matched to a resource by its longest prefix (a plain string prefix, as Go's), and the
method decides read or write: only GET reads. A path no prefix matches needs `write:node`, the most
guarded. Open paths need nothing: the auth routes, versions, liveness, and the auth config a CLI reads
before it has credentials (and ours: the OpenAPI document and its viewer, which reveal nothing).

An action grants a requirement when it is `*`, the requirement itself, `read:*` for any read, or
`write:*` for anything that is not a read. `write:job` does not imply `read:job` (as in Bacalhau).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

OPEN: Final = ""
# Ours: see the values of jobs' Env (often secrets) in API answers; without it they read "********".
# Deliberately not under `read:`, so that `read:*` (a dashboard) does not grant it; `*` and `write:*` do.
REVEAL_ENV: Final = "reveal:env"
_PREFIXES: Final = (
    ("/api/v1/auth", OPEN),
    ("/api/v1/version", OPEN),
    ("/api/v1/agent/alive", OPEN),
    ("/api/v1/agent/version", OPEN),
    ("/api/v1/agent/authconfig", OPEN),
    ("/api/v1/openapi.json", OPEN),
    ("/api/v1/docs", OPEN),
    ("/api/v1/agent", "agent"),
    ("/api/v1/orchestrator/jobs", "job"),
    ("/api/v1/orchestrator/nodes", "node"),
    # Ours: the audit log (read:audit; read:* grants it).
    ("/api/v1/orchestrator/audit", "audit"),
)
# Longest first: the first prefix that matches is the longest.
_BY_LENGTH: Final = tuple(sorted(_PREFIXES, key=lambda p: -len(p[0])))
_UNMATCHED: Final = "write:node"


def required_capability(method: str, path: str) -> str:
    """The capability a request needs (`read:job`...), or OPEN ('') for one anybody may make."""
    for prefix, resource in _BY_LENGTH:
        if path.startswith(prefix):
            if resource == OPEN:
                return OPEN
            return f"{'read' if method.upper() == 'GET' else 'write'}:{resource}"
    return _UNMATCHED


def grants(actions: Iterable[str], required: str) -> bool:
    """Whether any of `actions` grants `required`."""
    for action in actions:
        if action == "*" or action == required:
            return True
        if action == "read:*" and required.startswith("read:"):
            return True
        if action == "write:*" and not required.startswith("read:"):
            return True
    return False
