"""The log stream: websocket URL and frame decoding shared by the sync and async clients.

Each text frame is `{"value": {"Type": 1|2, "Line": "..."}, "error"?: {...}}` (CONTRACT.md section 3.2).
A frame with `error` set ends the stream with that error; the server then closes with code 1000.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from bacalhau.client import routes
from bacalhau.client.address import websocket_url
from bacalhau.client.errors import error_from_body
from bacalhau.models.errors import BacalhauError, ErrorCode
from bacalhau.models.execution import ExecutionLog


def logs_url(
    base_url: str, job_id: str, *, execution_id: str, follow: bool, tail: bool, namespace: str
) -> str:
    """The ws:// URL of a job's log stream, with its query string."""
    params = routes.query(namespace=namespace, execution_id=execution_id, follow=follow, tail=tail)
    url = websocket_url(base_url, routes.job_path(job_id, "/logs"))
    if params:
        url += "?" + urlencode(params)
    return url


def decode_frame(frame: str | bytes) -> ExecutionLog | None:
    """One log line, None for a frame without a value, or raise the error the frame carries."""
    try:
        data: Any = json.loads(frame)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BacalhauError(
            f"the log stream sent a frame that is not JSON: {str(frame)[:200]!r}",
            code=ErrorCode.InternalError,
            component="Client",
        ) from exc
    if not isinstance(data, dict):
        return None
    error = data.get("error") or data.get("Error")
    if error:
        raise stream_error(error)
    value = data.get("value") or data.get("Value")
    if not isinstance(value, dict):
        return None
    return ExecutionLog.model_validate(value)


def stream_error(error: Any) -> BacalhauError:
    """The BacalhauError an error frame describes (bacerrors marshal with `Cause`, plain errors as {})."""
    if not isinstance(error, dict) or not error:
        return BacalhauError("the log stream failed", code=ErrorCode.InternalError, component="Client")
    status = error.get("HTTPStatusCode") or error.get("Status") or 500
    return error_from_body(int(status) if str(status).isdigit() else 500, error, fallback="the log stream failed")
