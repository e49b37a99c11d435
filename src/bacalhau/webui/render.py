"""Templates and the small formatting rules every page shares (times, IDs, states, sizes)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from bacalhau.models.resources import format_bytes
from bacalhau.models.state import ExecutionStateType

_NS = 1_000_000_000


def short_id(value: str) -> str:
    """Bacalhau's short form: `j-` plus the first 8 characters of the UUID."""
    if len(value) > 10 and value[:2] in ("j-", "e-", "n-"):
        return value[:10]
    return value


def ago(unix_ns: int | None, now_ns: int | None = None) -> str:
    """`12s ago`, `5m ago`, `3h ago`, `4d ago`; "" for no time."""
    if not unix_ns:
        return ""
    seconds = max(0, ((now_ns or time.time_ns()) - int(unix_ns)) // _NS)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def timestamp(unix_ns: int | None) -> str:
    """An ISO time in UTC to the second; "" for no time."""
    if not unix_ns:
        return ""
    return datetime.fromtimestamp(int(unix_ns) / _NS, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(start_ns: int | None, end_ns: int | None) -> str:
    """`1m 5s`, from two Unix-ns times; "" when either is missing."""
    if not start_ns or not end_ns or end_ns < start_ns:
        return ""
    seconds = (int(end_ns) - int(start_ns)) // _NS
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return " ".join(f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (seconds, "s")) if v) or "0s"


def execution_state(value: int | str) -> str:
    """An execution's ComputeState.StateType (an integer on the wire) by name."""
    try:
        return ExecutionStateType(int(value)).name
    except (ValueError, TypeError):
        return str(value)


def pretty_json(value: Any) -> str:
    """Indented JSON, as `job describe --output json` prints it."""
    return json.dumps(value, indent=2, sort_keys=False, default=str)


def percent(part: float, whole: float) -> int:
    """0..100 for a bar; 0 when there is no whole."""
    if not whole:
        return 0
    return max(0, min(100, round(100 * part / whole)))


ENVIRONMENT = Environment(loader=PackageLoader("bacalhau.webui", "templates"), autoescape=select_autoescape(["html"]))
ENVIRONMENT.filters.update(
    seg=lambda value: quote(str(value), safe=""),  # an ID as one path segment: `/`, `?`, `%` cannot steer a link
    short=short_id, ago=ago, timestamp=timestamp, execution_state=execution_state, pretty_json=pretty_json,
    bytes=lambda n: format_bytes(int(n or 0)), lower=lambda s: str(s).lower(),
)
ENVIRONMENT.globals.update(duration=duration, percent=percent)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render `template` for this request (the logged-in state and the path go to every template)."""
    from bacalhau.webui.backend import authorization

    body = ENVIRONMENT.get_template(template).render(
        request=request, path=request.url.path, logged_in=bool(authorization(request)), **context
    )
    return HTMLResponse(body, status_code=status_code)
