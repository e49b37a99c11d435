"""What every UI response carries, and what every UI request that changes something must show.

    responses   Content-Security-Policy: only this origin's scripts, styles and connections (no
                inline script, no eval: the templates have none, htmx is told not to use it);
                X-Frame-Options DENY (no clickjacking of the Stop button); no referrer off-site
    Host        one of the names the UI answers to (allowed_hosts: the loopback names when it
                listens on loopback, its address when it listens on one, API.AllowedHosts when
                set) -> else 400: a page whose DNS name was rebound to 127.0.0.1 is not this site
    POST        must come from htmx (an `HX-Request` header, which a cross-site form or image
                cannot send without a CORS preflight this server never answers) and, when the
                browser says where it comes from (`Origin`), from this very origin, scheme and
                port included -> else 403

The session cookie is SameSite=Strict as well: three locks on one door, since a POST here stops
jobs and deletes nodes.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                 b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class RequestGuard:
    """ASGI middleware: allowed Host names, security headers on every answer, same-origin htmx-only POSTs."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: tuple[str, ...] | None = None) -> None:
        self.app = app
        # None: any Host (the UI listens on every address and no names were given).
        self.allowed_hosts = None if allowed_hosts is None else {h.strip("[]").lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if self.allowed_hosts is not None and _host_name(host) not in self.allowed_hosts:
            await _refuse(send, 400, f"unexpected Host header {host[:100]!r}: open the UI at the address it printed")
            return
        if scope["method"] not in _SAFE_METHODS:
            refusal = _refusal(headers, str(scope.get("scheme", "http")))
            if refusal:
                await _refuse(send, 403, refusal)
                return

        async def with_headers(message: Message) -> None:
            """The response start, with the security headers added."""
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


async def _refuse(send: Send, status: int, reason: str) -> None:
    body = f"refused: {reason}\n".encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        *_SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


def _host_name(host: str) -> str:
    """`[::1]:8438` -> `::1`, `example.org:80` -> `example.org`, lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _refusal(headers: dict[str, str], scheme: str) -> str:
    if headers.get("hx-request") != "true":
        return "changes are made from the UI's own pages only (no HX-Request header)"
    origin = headers.get("origin")
    if origin == "null":
        return "request from an opaque origin"
    if origin:
        parts = urlsplit(origin)
        if parts.scheme.lower() != scheme.lower() or parts.netloc.lower() != headers.get("host", "").lower():
            return f"cross-origin request from {origin}"
    return ""
