"""An NCL Event: a progress or error report carried by every data-plane message (`pkg/models/event.go`).

`{"Message", "Topic", "Timestamp": RFC3339Nano, "Details"?: {str: str}}` with `Details` omitted when
empty. It is a `models.history.Event`, so a received event goes straight into the job history.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from bacalhau.models.history import Event as HistoryEvent
from bacalhau.models.node import GO_ZERO_TIME
from bacalhau.transport.ncl.wire_types import WireTime, omit_keys

# Event.Details keys Bacalhau's EventFromError sets (pkg/models/event.go).
DETAILS_IS_ERROR: Final = "IsError"
DETAILS_HINT: Final = "Hint"
DETAILS_RETRYABLE: Final = "Retryable"
DETAILS_FAILS_EXECUTION: Final = "FailsExecution"
DETAILS_NEW_STATE: Final = "NewState"
DETAILS_ERROR_CODE: Final = "ErrorCode"


class Event(HistoryEvent):
    """An event as NCL carries it. `Timestamp` is never "" on the wire: Go cannot parse that."""

    timestamp: WireTime = Field(GO_ZERO_TIME, alias="Timestamp")

    @model_serializer(mode="wrap")
    def _omit(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return omit_keys(data, if_empty=("Details",))
