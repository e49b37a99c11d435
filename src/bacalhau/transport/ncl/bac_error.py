"""`BacError`: the error reply of an NCL request, as Go's bacerrors prints it (`pkg/bacerrors/json.go`).

A responder answers a failed request with this payload (type `BacError`, plus metadata
`Bacalhau-StatusCode` and `Bacalhau-ErrorCode`); a requester that receives it raises `RemoteError`.
The one a compute must recognise is `HandshakeRequired`: the orchestrator has no connection for the
node (restart, heartbeat timeout), so the compute re-handshakes at once instead of after 75 s.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field

from bacalhau.models.errors import BacalhauError
from bacalhau.models.fields import StrMap
from bacalhau.transport.ncl import metadata as meta
from bacalhau.transport.ncl.errors import CODE_HANDSHAKE_REQUIRED, RemoteError
from bacalhau.transport.ncl.payload import NclPayload
from bacalhau.transport.ncl.wire_types import GoBool

# Components Go names in the errors a compute sees.
COMPONENT_CONNECTION_MANAGER: Final = "ConnectionManager"  # pkg/transport/nclprotocol/orchestrator/errors.go
COMPONENT_NODES_MANAGER: Final = "NodesManager"  # pkg/orchestrator/nodes/errors.go


class BacError(NclPayload):
    """`BacError`. `Details` is `{}` rather than Go's `null` when empty: Go reads both the same way."""

    cause: str = Field("", alias="Cause")
    hint: str = Field("", alias="Hint")
    retryable: GoBool = Field(False, alias="Retryable")
    fails_execution: GoBool = Field(False, alias="FailsExecution")
    component: str = Field("", alias="Component")
    http_status_code: int = Field(0, alias="HTTPStatusCode")
    details: StrMap = Field(default_factory=dict, alias="Details")
    code: str = Field("", alias="Code")

    @classmethod
    def from_error(cls, error: BacalhauError) -> BacError:
        """The reply for one of our errors raised while handling a request."""
        return cls(
            Cause=error.message,
            Hint=error.hint,
            Retryable=error.retryable,
            FailsExecution=False,
            Component=error.component,
            HTTPStatusCode=error.http_status,
            Details=dict(error.details),
            Code=str(error.code),
        )

    def envelope_metadata(self) -> dict[str, str]:
        """The extra metadata Go's `BacErrorToEnvelope` adds: status and error code."""
        return {meta.KEY_STATUS_CODE: str(self.http_status_code), meta.KEY_ERROR_CODE: self.code}

    def to_exception(self) -> RemoteError:
        """The exception a requester raises for this reply."""
        return RemoteError(
            self.cause or f"remote error {self.code or '(no code)'}",
            remote_code=self.code,
            component=self.component or "remote",
            hint=self.hint,
            retryable=self.retryable,
            fails_execution=self.fails_execution,
            http_status_code=self.http_status_code,
            details=dict(self.details),
        )


def handshake_required(node_id: str, *, component: str = COMPONENT_CONNECTION_MANAGER) -> BacError:
    """The orchestrator's answer to a heartbeat, node-info update or shutdown notice from a node it has no
    connection for (`NewErrHandshakeRequired`): HTTP 428, retryable. A Go compute re-handshakes on it."""
    return BacError(
        Cause=f"node {node_id} not connected - handshake required",
        Retryable=True,
        Component=component,
        HTTPStatusCode=428,
        Code=CODE_HANDSHAKE_REQUIRED,
    )
