"""The base of every NCL payload model: Bacalhau's exact JSON keys, Go's `omitempty`, Go's zero values.

Every field has a default equal to Go's zero value of its type, because Go decodes a missing key (or
a `null` payload) as that zero value instead of failing; the one exception is a field Go cannot act
without (AskForBid's Execution), which is required. Field order is Go's struct order (embedded base
structs first), so our JSON prints keys in the order a Go peer does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SerializerFunctionWrapHandler, model_serializer

from bacalhau.models.wire import WireModel
from bacalhau.transport.ncl.wire_types import omit_keys


class NclPayload(WireModel):
    """A typed NCL payload; `to_wire()` is its JSON as a Go peer would print it."""

    # Wire keys Go tags `omitempty`, dropped when zero/empty.
    omit_if_empty: ClassVar[tuple[str, ...]] = ()
    # Our extension fields: absent for Go peers (None), but meaningful when empty.
    omit_if_none: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return omit_keys(data, if_empty=self.omit_if_empty, if_none=self.omit_if_none)
