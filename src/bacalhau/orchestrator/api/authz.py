"""The API's gate: every request (HTTP and websocket, known path or not) passes the node's authorizer
before routing, as Bacalhau's Authorize middleware does (pkg/publicapi/middleware/authz.go).

Refusals carry Bacalhau's body: 401 `Request Unauthorized` when the caller is not identified, 403
`Request Forbidden` when they are but lack the capability, `Details.reason` saying which, and
`RequestID` echoing the request's `X-Request-Id`. Each refusal is logged (the hint says the event is
recorded). A refused websocket handshake gets the same HTTP answer when the server can send one
(ASGI's websocket.http.response extension), else it is closed with 1008 (policy violation).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from bacalhau.auth.authorizer import APPROVED, Authorizer, Decision
from bacalhau.auth.capabilities import required_capability
from bacalhau.orchestrator.audit import AuditLog

log = logging.getLogger(__name__)

_HOW = "authenticate with BACALHAU_API_KEY, or BACALHAU_API_USERNAME and BACALHAU_API_PASSWORD"
# Password checks run at once (in threads): bounded, so a flood queues instead of taking every core.
SLOW_CHECKS = 2
UNAUTHORIZED_HINT = f"Unauthorized principal. Event has been recorded. {_HOW[0].upper()}{_HOW[1:]}"
FORBIDDEN_HINT = "Check if user have access to this resource. Event has been recorded."


class AuthorizeRequests:
    """ASGI middleware applying `authorizer` to every HTTP request and websocket handshake, and writing
    the audit log (orchestrator/audit.py): every refusal, and every request that is not a read."""

    def __init__(
        self, app: ASGIApp, authorizer: Authorizer, audit: AuditLog | None = None,
        clock_ns: Callable[[], int] = time.time_ns, allowed_origins: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        # Browsers send no CORS preflight for a websocket: its Origin is checked here (same origin, or
        # API.CORS.AllowedOrigins), else any page could read jobs and logs through a visitor's browser.
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in allowed_origins)
        self.authorizer = authorizer
        self.audit = audit
        self.clock_ns = clock_ns
        self._slow_checks = asyncio.Semaphore(SLOW_CHECKS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        method = "GET" if scope["type"] == "websocket" else str(scope["method"])
        path = str(scope["path"])
        client = (scope.get("client") or ("?", 0))[0]
        decision = await self._decide(method, path, headers.get("authorization"))
        if scope["type"] == "websocket" and decision.approved and not self._origin_allowed(headers):
            decision = Decision(False, token_valid=True, principal=decision.principal,
                                reason=f"cross-origin websocket from {headers.get('origin', '')[:100]} refused")
        if decision.approved:
            # For the routes: who this is (audit) and whether job Env values may be shown (secrets.py).
            scope.setdefault("state", {}).update(principal=decision.principal, reveal_env=decision.reveal_env)
            if self.audit is None or scope["type"] != "http" or method in _READS:
                await self.app(scope, receive, send)
                return
            seen = _Seen(send, receive)
            try:
                await self.app(scope, seen.receive, seen.send)
            finally:
                self._record(decision.principal, client, method, path, seen.status or 500, target=seen.target(path))
            return
        log.warning("API request refused: %s %s from %s: %s", method, path, client, decision.reason or "denied")
        status, body = refusal(decision, headers.get("x-request-id", ""))
        if self.audit is not None:
            self._record(decision.principal, client, method, path, status, target=target_of(path),
                         reason=decision.reason)
        payload = json.dumps(body).encode()
        response_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": status, "headers": response_headers})
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})
            return
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": status, "headers": response_headers})
            await send({"type": "websocket.http.response.body", "body": payload})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": body["Message"]})


    def _origin_allowed(self, headers: dict[str, str]) -> bool:
        origin = headers.get("origin", "").rstrip("/").lower()
        if not origin:
            return True  # not a browser (the CLI, the SDKs send none)
        if origin in self.allowed_origins:
            return True
        return origin.split("://", 1)[-1] == headers.get("host", "").lower()

    async def _decide(self, method: str, path: str, authorization: str | None) -> Decision:
        if not self.authorizer.enforced:
            return APPROVED
        if not self.authorizer.is_slow(authorization):
            return self.authorizer.authorize(method, path, authorization)
        # A password check (bcrypt, ~70 ms) runs off the event loop, a few at a time: a flood of wrong
        # passwords must not stall the orchestrator and NATS that share the loop.
        async with self._slow_checks:
            return await asyncio.to_thread(self.authorizer.authorize, method, path, authorization)

    def _record(self, principal: str, client: str, method: str, path: str, status: int, *, target: str,
                reason: str = "") -> None:
        assert self.audit is not None
        self.audit.record(
            time_ns=self.clock_ns(), principal=principal, client=client,
            capability=required_capability(method, path) or "open", method=method, path=path, target=target,
            status=status, reason=reason,
        )


_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_TARGET = re.compile(r"^/api/v1/orchestrator/(jobs|nodes)/(?!diff(?:/|$))([^/]+)")
_NODE_ID = re.compile(rb'"node_?id"\s*:\s*"([^"]{1,200})"', re.IGNORECASE)
_JOB_ID = re.compile(rb'"JobID"\s*:\s*"([^"]{1,200})"')
_BODY_PEEK_BYTES = 4096


def target_of(path: str) -> str:
    """The job or node a path names (`jobs/j-1/rerun` -> `j-1`), '' for none."""
    found = _TARGET.match(path)
    return found.group(2) if found else ""


class _Seen:
    """Wraps `send` and `receive`: the response status, the start of the answer (a new job's ID is only
    there) and of the request (the official client names a node in the body of POST /nodes)."""

    def __init__(self, send: Send, receive: Receive) -> None:
        self._send = send
        self._receive = receive
        self.status = 0
        self._body = b""
        self._request = b""

    async def receive(self) -> Any:
        """The request's next message, its body's start kept."""
        message = await self._receive()
        if message["type"] == "http.request" and len(self._request) < _BODY_PEEK_BYTES:
            self._request += bytes(message.get("body", b""))[: _BODY_PEEK_BYTES - len(self._request)]
        return message

    async def send(self, message: Any) -> None:
        """Pass the message on, keeping the status and the answer's start."""
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        elif message["type"] == "http.response.body" and len(self._body) < _BODY_PEEK_BYTES:
            self._body += bytes(message.get("body", b""))[: _BODY_PEEK_BYTES - len(self._body)]
        await self._send(message)

    def target(self, path: str) -> str:
        """The job or node the request named: from the path, a new job's ID, or a NodeID in the body."""
        named = target_of(path)
        if named:
            return named
        found = _JOB_ID.search(self._body) or _NODE_ID.search(self._request)
        return found.group(1).decode("utf-8", "replace") if found else ""


def refusal(decision: Decision, request_id: str) -> tuple[int, dict[str, Any]]:
    """The status and Bacalhau's body for a refused request."""
    if decision.token_valid:
        status, message, code, hint = 403, "Request Forbidden", "Forbidden", FORBIDDEN_HINT
    else:
        status, message, code, hint = 401, "Request Unauthorized", "Unauthorized", UNAUTHORIZED_HINT
    return status, {
        "Status": status,
        "Message": message,
        "RequestID": request_id,
        "Code": code,
        "Component": "Authorizer",
        "Hint": hint,
        "Details": {"reason": decision.reason},
    }


def _headers(scope: Scope) -> dict[str, str]:
    # The first value of each header, as Go's Header.Get (a second Authorization header is ignored).
    found: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        if key not in found:
            found[key] = value.decode("latin-1")
    return found


class CheckHost:
    """ASGI middleware answering 400 (Bacalhau's error body) to a Host header not in `allowed` (API.AllowedHosts:
    exact names, or `*.example.org` for its subdomains). Stops DNS rebinding: a page whose name resolves to
    this node cannot talk to it through a visitor's browser."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = tuple(a.strip().strip("[]").lower() for a in allowed)

    def host_allowed(self, host: str) -> bool:
        """Whether a Host header (with or without a port) is one of the allowed names."""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower()
        for pattern in self.allowed:
            if pattern == "*" or name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:])):
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.host_allowed(_headers(scope).get("host", "")):
            await self.app(scope, receive, send)
            return
        body = json.dumps({
            "Status": 400, "Message": "invalid Host header", "RequestID": "", "Code": "BadRequest",
            "Component": "APIServer", "Hint": "this node answers only the names in API.AllowedHosts",
        }).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1008, "reason": "invalid Host header"})
            return
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})
