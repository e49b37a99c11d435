"""What every UI response carries, and what every UI request that changes something must show.

    responses   Content-Security-Policy: only this origin's scripts, styles and connections (no
                inline script, no eval: the templates have none, htmx is told not to use it);
                X-Frame-Options DENY (no clickjacking of the Stop button); no referrer off-site
    POST        must come from htmx (an `HX-Request` header, which a cross-site form or image
                cannot send without a CORS preflight this server never answers) and, when the
                browser says where it comes from (`Origin`), from this very origin -> else 403

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


class RequestGuard:
    """ASGI middleware: security headers on every answer, same-origin htmx-only POSTs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in _SAFE_METHODS:
            refusal = _refusal(scope)
            if refusal:
                body = f"refused: {refusal}\n".encode()
                await send({"type": "http.response.start", "status": 403, "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                    *_SECURITY_HEADERS]})
                await send({"type": "http.response.body", "body": body})
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


def _refusal(scope: Scope) -> str:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    if headers.get("hx-request") != "true":
        return "changes are made from the UI's own pages only (no HX-Request header)"
    origin = headers.get("origin")
    if origin and origin != "null":
        host = headers.get("host", "")
        if urlsplit(origin).netloc.lower() != host.lower():
            return f"cross-origin request from {origin}"
    elif origin == "null":
        return "request from an opaque origin"
    return ""
