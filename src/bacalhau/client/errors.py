"""Translation of HTTP outcomes into our one exception hierarchy (models/errors.py).

A non-2xx answer carries Bacalhau's error body `{Status, Message, Code, Component, Hint, Details}`;
it becomes a BacalhauError with the same code, message and hint. Transport failures (nothing
listening, timeouts) become NetworkFailure/TimeOut errors whose hint names the address and the
flags that change it, because that is what the user can act on.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from bacalhau.models.errors import BacalhauError, BadRequestError, ErrorCode, NotFoundError

if TYPE_CHECKING:
    import httpx

_BY_STATUS = {
    400: ErrorCode.BadRequest,
    401: ErrorCode.Unauthorized,
    403: ErrorCode.Forbidden,
    404: ErrorCode.NotFound,
    409: ErrorCode.ResourceInUse,
    429: ErrorCode.ResourceExhausted,
    501: ErrorCode.NotImplemented,
    503: ErrorCode.ServiceUnavailable,
}
_CLASS_BY_CODE: dict[ErrorCode, type[BacalhauError]] = {
    ErrorCode.NotFound: NotFoundError,
    ErrorCode.BadRequest: BadRequestError,
}
ADDRESS_HINT = (
    "is a Bacalhau node running there? Point the CLI at it with --api-host/--api-port "
    "(or BACALHAU_API_HOST/BACALHAU_API_PORT)"
)


def error_from_body(status: int, body: Any, *, fallback: str = "") -> BacalhauError:
    """Build the error a non-2xx body describes; tolerate bodies that are not Bacalhau's shape."""
    if not isinstance(body, dict):
        message = fallback.strip() or f"request failed with HTTP status {status}"
        return _make(_code_for("", status), message, component="", hint="", details={})
    # Go's error body is PascalCase; FastAPI's own errors say `detail`. Accept both.
    lowered = {str(k).lower(): v for k, v in body.items()}
    message = lowered.get("message") or lowered.get("cause") or _detail_text(lowered.get("detail"))
    message = str(message or fallback or f"request failed with HTTP status {status}")
    details = lowered.get("details")
    if isinstance(details, dict) and details.get("reason") and status in (401, 403):
        # An auth refusal says what was wrong only in its reason ("invalid API key"): show it.
        message = f"{message}: {details['reason']}"
    return _make(
        _code_for(str(lowered.get("code") or ""), status),
        message,
        component=str(lowered.get("component") or ""),
        hint=str(lowered.get("hint") or ""),
        details={str(k): str(v) for k, v in details.items()} if isinstance(details, dict) else {},
    )


def error_from_reply(status: int, content: bytes) -> BacalhauError:
    """The BacalhauError for a non-2xx answer with body `content` (JSON, or text kept as the message)."""
    try:
        body: Any = json.loads(content) if content else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    return error_from_body(status, body, fallback=content[:2000].decode("utf-8", errors="replace")[:500])


def error_from_response(response: httpx.Response) -> BacalhauError:
    """The BacalhauError for a non-2xx httpx response."""
    return error_from_reply(response.status_code, response.content)


def error_from_handshake(exc: Any) -> BacalhauError:
    """The BacalhauError for a websocket handshake the server refused (websockets' InvalidStatus)."""
    response = exc.response
    try:
        body: Any = json.loads(response.body or b"")
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    return error_from_body(response.status_code, body, fallback=f"the server refused the websocket (HTTP {response.status_code})")


def error_from_transport(exc: Exception, base_url: str) -> BacalhauError:
    """Translate an httpx, socket (plain_http.py) or websocket transport failure; the caller chains it with `from exc`."""
    # httpx is looked up, not imported: an httpx exception exists only if httpx was imported, and the
    # CLI's plain-HTTP path must not import it to classify a socket error.
    httpx_module = sys.modules.get("httpx")
    timeouts: tuple[type[BaseException], ...] = (TimeoutError,)
    refusals: tuple[type[BaseException], ...] = (ConnectionRefusedError,)
    if httpx_module is not None:
        timeouts += (httpx_module.TimeoutException,)
        refusals += (httpx_module.ConnectError,)
    if isinstance(exc, timeouts):
        return BacalhauError(
            f"timed out talking to the Bacalhau API at {base_url}",
            code=ErrorCode.TimeOut,
            component="Client",
            hint="the node may be overloaded or unreachable; try again, or raise the client timeout",
            retryable=True,
        )
    reason = str(exc) or type(exc).__name__
    if "certificate verify failed" in reason.lower():
        # Not a refused connection: the server answered with a certificate we do not trust.
        return BacalhauError(
            f"failed to connect to the Bacalhau API at {base_url}: TLS certificate verification failed ({reason})",
            code=ErrorCode.NetworkFailure,
            component="Client",
            hint="trust the server's certificate (-c API.TLS.CAFile=<its cert.pem>), or skip verification with "
            "-c API.TLS.Insecure=true or 'bacalhau profile save <name> --insecure'",
        )
    if isinstance(exc, refusals) or "refused" in reason.lower():
        reason = "connection refused"
    return BacalhauError(
        f"failed to connect to the Bacalhau API at {base_url}: {reason}",
        code=ErrorCode.NetworkFailure,
        component="Client",
        hint=f"{ADDRESS_HINT}",
        retryable=True,
    )


def _code_for(raw: str, status: int) -> ErrorCode:
    try:
        return ErrorCode(raw)
    except ValueError:
        # Unknown or missing codes (jobstore-specific ones, plain 500s) fall back to the HTTP status.
        return _BY_STATUS.get(status, ErrorCode.InternalError)


def _make(code: ErrorCode, message: str, *, component: str, hint: str, details: dict[str, str]) -> BacalhauError:
    cls = _CLASS_BY_CODE.get(code, BacalhauError)
    return cls(message, code=code, component=component or "APIServer", hint=hint, details=details)


def _detail_text(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()))
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        return "\n".join(parts)
    return ""
