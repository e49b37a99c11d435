"""Field types of NCL payloads that print exactly as Go's encoding/json prints the same Go types.

* `Uint64`, `GoBool`: Go's `uint64` (sequence numbers), a JSON integer in [0, 2^64), and `bool`; a
  string, float or number in their place is refused, as Go refuses it.
* `WireTime`: Go's `time.Time`, an RFC3339(Nano) string kept as sent; `null` (and, leniently, "") read
  as Go's zero time `0001-01-01T00:00:00Z`, anything else not RFC3339 refused (Go would fail the message).
* `GoResources`, `GoNodeInfo`: the shared models printed with Go's `omitempty` (zero resources are `{}`,
  empty `Major`/`Minor` are left out), a whole CPU count as `2` (Go's float64 format, not Python's `2.0`),
  and `ComputeNodeInfo` always an object, never `null`.
* `omit_keys`: Go's `omitempty` for the payload models' own fields.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, Field, SerializerFunctionWrapHandler, Strict, WrapSerializer

from bacalhau.models.node import GO_ZERO_TIME, ComputeNodeInfo, NodeInfo
from bacalhau.models.resources import Resources

UINT64_MAX: Final = 2**64 - 1
Uint64 = Annotated[int, Strict(), Field(ge=0, le=UINT64_MAX)]
# Go's bool: `true`/`false` only; "yes" or 1 fail a Go peer's decoding, so they fail ours.
GoBool = Annotated[bool, Strict()]

# Go's time.Time.UnmarshalJSON is strict RFC3339: upper-case T and Z, numeric offset otherwise.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
GO_ZERO_TIME_NS: Final = -62_135_596_800 * 1_000_000_000


def _parse_wire_time(value: Any) -> Any:
    if value is None or value == "":
        return GO_ZERO_TIME
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(f"not an RFC3339 time: {value!r}")
    try:
        dt.datetime.fromisoformat(value)
    except ValueError as exc:  # well-shaped but out of range: month 13, hour 25...
        raise ValueError(f"not an RFC3339 time: {value!r}") from exc
    return value


WireTime = Annotated[str, BeforeValidator(_parse_wire_time)]


def format_wire_time(unix_ns: int) -> str:
    """Unix ns as Go's time.RFC3339Nano prints UTC: `2026-01-02T03:04:05.1234Z` (trailing zeros trimmed).

    Valid for Go's zero time (`GO_ZERO_TIME_NS` -> `0001-01-01T00:00:00Z`) too.
    """
    seconds, nanos = divmod(unix_ns, 1_000_000_000)
    moment = _EPOCH + dt.timedelta(seconds=seconds)
    base = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    return f"{base}.{nanos:09d}".rstrip("0") + "Z" if nanos else base + "Z"


def wire_time_ns(text: str) -> int:
    """Unix ns of an RFC3339(Nano) time, keeping all nine fraction digits; raises ValueError if malformed."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"not an RFC3339 time: {text!r}")
    fraction = (match.group(1) or ".")[1:]
    zone = "+00:00" if match.group(2) == "Z" else match.group(2)
    delta = dt.datetime.fromisoformat(text[:19] + zone) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])


def omit_keys(data: dict[str, Any], *, if_empty: Iterable[str] = (), if_none: Iterable[str] = ()) -> dict[str, Any]:
    """Drop keys as Go's `omitempty` does (`if_empty`: "", 0, false, null, {} and []), or only when null
    (`if_none`: our optional extension fields, absent for Go peers, meaningful when empty)."""
    for key in if_empty:
        if key in data and data[key] in ("", 0, False, None, {}, []):
            del data[key]
    for key in if_none:
        if key in data and data[key] is None:
            del data[key]
    return data


_RESOURCE_KEYS: Final = ("CPU", "Memory", "Disk", "GPU", "GPUs")


def _go_resource_dict(data: dict[str, Any]) -> dict[str, Any]:
    """Go's shape of a Resources object: zero fields omitted, a whole CPU count printed as `2` not `2.0`."""
    omit_keys(data, if_empty=_RESOURCE_KEYS)
    cpu = data.get("CPU")
    if isinstance(cpu, float) and cpu.is_integer() and abs(cpu) < 1e21:  # Go switches to 1e+21 notation there
        data["CPU"] = int(cpu)
    return data


def _go_resources(value: Any, handler: SerializerFunctionWrapHandler) -> Any:
    data = handler(value)
    return _go_resource_dict(data) if isinstance(data, dict) else data


GoResources = Annotated[Resources, WrapSerializer(_go_resources)]

_COMPUTE_RESOURCE_KEYS: Final = ("MaxCapacity", "QueueCapacity", "AvailableCapacity", "MaxJobRequirements")


def _go_node_info(value: Any, handler: SerializerFunctionWrapHandler) -> Any:
    data = handler(value)
    if not isinstance(data, dict):
        return data
    compute = data.get("ComputeNodeInfo")
    if compute is None:
        # Go's ComputeNodeInfo is a struct value: always an object. A Go orchestrator reads the node's
        # engines and capacities from it, so `null` would make a Go peer see an empty node.
        compute = data["ComputeNodeInfo"] = ComputeNodeInfo().to_wire()
    if compute.get("DataHoldings") is None:
        compute.pop("DataHoldings", None)  # ours: absent rather than null when a node reports none
    for key in _COMPUTE_RESOURCE_KEYS:
        if isinstance(compute.get(key), dict):
            _go_resource_dict(compute[key])
    version = data.get("BacalhauVersion")
    if isinstance(version, dict):
        omit_keys(version, if_empty=("Major", "Minor"))
        if not version.get("BuildDate"):
            version["BuildDate"] = GO_ZERO_TIME  # Go cannot parse "" as a time
    return data


GoNodeInfo = Annotated[NodeInfo, WrapSerializer(_go_node_info)]
