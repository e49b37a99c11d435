"""Bacalhau's error body for every non-2xx answer, and the handlers that produce it."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from bacalhau.models.api import ErrorResponse
from bacalhau.models.errors import BacalhauError, ErrorCode, ValidationFailed
from bacalhau.orchestrator.api.methods import AllowedMethods

log = logging.getLogger(__name__)


def error_response(
    status: int,
    message: str,
    *,
    code: str,
    component: str,
    hint: str = "",
    details: dict[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(
        Status=status,
        Message=message,
        RequestID=str(uuid.uuid4()),
        Code=code,
        Component=component,
        Hint=hint,
        Details=details or {},
    ).to_wire()
    if not hint:
        body.pop("Hint")
    if not details:
        body.pop("Details")
    return JSONResponse(body, status_code=status, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at `request`'s path (see methods.py; set up by create_app)."""
    table: AllowedMethods | None = getattr(request.app.state, "allowed_methods", None)
    return [] if table is None else table.at(request.url.path)


def from_error(exc: BacalhauError) -> JSONResponse:
    details = dict(exc.details)
    if isinstance(exc, ValidationFailed):
        details.update({e.path or f"error{i}": e.message for i, e in enumerate(exc.errors)})
    return error_response(
        exc.http_status, exc.message, code=exc.code.value, component=exc.component, hint=exc.hint, details=details
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BacalhauError)
    async def _bacalhau_error(_: Request, exc: BacalhauError) -> JSONResponse:
        return from_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(
                404,
                "The requested resource/URL was not found.",
                code=ErrorCode.NotFound.value,
                component="APIServer",
                hint="The server version may be older than this CLI version and does not support the endpoint yet.",
            )
        if exc.status_code == 405:
            allow = ", ".join(allowed_methods(request)) or (exc.headers or {}).get("Allow", "")
            return error_response(
                405,
                f"Method {request.method} not allowed for this route (allowed: {allow})",
                code="BadRequest",
                component="APIServer",
                headers={"Allow": allow},
            )
        return error_response(
            exc.status_code, str(exc.detail), code="BadRequest", component="APIServer", headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _bind_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "\n".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return error_response(400, problems, code=ErrorCode.BadRequest.value, component="APIServer")

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _exc: ClientDisconnect) -> JSONResponse:
        # The client closed its connection before sending all of its request (a load generator stopping,
        # a killed CLI): nothing was done and nobody is left to answer, so it is no error of ours.
        log.debug("client went away during %s %s", request.method, request.url.path)
        return error_response(
            400, "the client disconnected before its request was read", code=ErrorCode.BadRequest.value, component="APIServer"
        )

    @app.exception_handler(Exception)
    async def _unknown(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in API handler")
        return error_response(500, "Internal server error", code=ErrorCode.InternalError.value, component="Unknown")


def error_frame(exc: BacalhauError) -> dict[str, Any]:
    """A websocket frame carrying an error, in the shape bacerrors marshal to."""
    return {
        "value": None,
        "error": {
            "Cause": exc.message,
            "Hint": exc.hint,
            "Retryable": exc.retryable,
            "FailsExecution": False,
            "Component": exc.component,
            "HTTPStatusCode": exc.http_status,
            "Details": exc.details,
            "Code": exc.code.value,
        },
    }


def dumps(data: Any) -> str:
    # Like Go's encoder with SetEscapeHTML(false): URLs in results stay readable.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
