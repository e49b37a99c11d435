"""The one exception hierarchy. Every error carries a code, the component and a hint the user can act on.

Codes and their HTTP statuses follow Bacalhau's bacerrors (CONTRACT.md section 3.1). Third-party
exceptions are translated into these at the plugin boundary with `raise ... from exc`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorCode(enum.StrEnum):
    BadRequest = "BadRequest"
    ValidationError = "ValidationError"
    NotFound = "NotFound"
    Unauthorized = "Unauthorized"
    Forbidden = "Forbidden"
    ServiceUnavailable = "ServiceUnavailable"
    NotImplemented = "NotImplemented"
    ResourceExhausted = "ResourceExhausted"
    ResourceInUse = "ResourceInUse"
    InternalError = "InternalError"
    TimeOut = "TimeOut"
    ConfigurationError = "ConfigurationError"
    IOError = "IOError"
    NetworkFailure = "NetworkFailure"
    DatastoreFailure = "DatastoreFailure"
    ExecutionError = "ExecutionError"
    UnknownError = "UnknownError"
    # Bacalhau's nodes manager code for approving an approved / rejecting a rejected node (409).
    ConflictNodeState = "ConflictNodeState"


_STATUS = {
    ErrorCode.BadRequest: 400,
    ErrorCode.ValidationError: 400,
    ErrorCode.NotFound: 404,
    ErrorCode.Unauthorized: 401,
    ErrorCode.Forbidden: 403,
    ErrorCode.ServiceUnavailable: 503,
    ErrorCode.NotImplemented: 501,
    ErrorCode.ResourceExhausted: 429,
    ErrorCode.ResourceInUse: 409,
    ErrorCode.ConflictNodeState: 409,
}


def http_status_for(code: ErrorCode | str) -> int:
    """Bacalhau infers the HTTP status from the code; everything unlisted is 500."""
    try:
        return _STATUS.get(ErrorCode(code), 500)
    except ValueError:
        return 500


class BacalhauError(Exception):
    """Base of every error we raise on purpose."""

    code: ErrorCode = ErrorCode.InternalError
    default_component = "Bacalhau"

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        component: str | None = None,
        hint: str = "",
        details: dict[str, str] | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.component = component or self.default_component
        self.hint = hint
        self.details = details or {}
        self.retryable = retryable

    @property
    def http_status(self) -> int:
        return http_status_for(self.code)


class NotFoundError(BacalhauError):
    code = ErrorCode.NotFound


class BadRequestError(BacalhauError):
    code = ErrorCode.BadRequest


class ConflictError(BacalhauError):
    """A conditional update lost a race, or a request conflicts with the current state."""

    code = ErrorCode.ResourceInUse


class ConfigurationError(BacalhauError):
    code = ErrorCode.ConfigurationError


class ExecutionError(BacalhauError):
    """A task could not run or finish: invalid module, trap, timeout, input staging failure."""

    code = ErrorCode.ExecutionError
    default_component = "Executor"


class StorageError(BacalhauError):
    """An input could not be staged."""

    code = ErrorCode.IOError
    default_component = "Storage"


class PublishError(BacalhauError):
    code = ErrorCode.IOError
    default_component = "Publisher"


class DatastoreError(BacalhauError):
    code = ErrorCode.DatastoreFailure
    default_component = "JobStore"


@dataclass(frozen=True)
class FieldError:
    """One validation problem, located by its field path (`Tasks[0].Engine.Params.EntryModule`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ValidationFailed(BacalhauError):
    """A spec has one or more problems; all of them are reported at once."""

    code = ErrorCode.ValidationError
    default_component = "Validation"

    def __init__(self, errors: list[FieldError], *, hint: str = "") -> None:
        self.errors = list(errors)
        summary = "\n".join(str(e) for e in self.errors)
        super().__init__(summary, hint=hint)


class UnsupportedTypeError(BacalhauError):
    """An engine, publisher or storage type name this build does not know."""

    code = ErrorCode.BadRequest

    def __init__(self, kind: str, name: str, supported: list[str]) -> None:
        super().__init__(
            f"unknown {kind} type {name!r}; supported: {', '.join(sorted(supported))}",
            hint=f"use one of the supported {kind} types",
        )
        self.kind = kind
        self.name = name
        self.supported = supported


class UnsupportedMediaType(BadRequestError):
    """A request body in a media type the API does not take (HTTP 415): what a browser can send across
    origins without asking first (text/plain, forms) is refused, so a web page cannot submit jobs."""

    @property
    def http_status(self) -> int:
        return 415


class RequestTooLarge(BadRequestError):
    """A request body over the 10 MB limit: HTTP 413, as Bacalhau's body-limit middleware answers."""

    @property
    def http_status(self) -> int:
        return 413
