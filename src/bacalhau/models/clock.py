"""Time formats on the wire: Unix nanoseconds for create/modify times, RFC3339 for events."""

from __future__ import annotations

import datetime as dt
import functools


def rfc3339_nano(unix_ns: int) -> str:
    """`2026-11-26T00:04:27.123456789Z`, as Go's time.RFC3339Nano prints UTC (trailing zeros trimmed)."""
    seconds, nanos = divmod(unix_ns, 1_000_000_000)
    whole = _rfc3339_seconds(seconds)  # every event of a job stamps it: the second's text is shared
    if nanos:
        return f"{whole[:-1]}.{nanos:09d}".rstrip("0") + "Z"
    return whole


def rfc3339(unix_ns: int) -> str:
    """`2026-11-26T00:04:27Z`."""
    return _rfc3339_seconds(unix_ns // 1_000_000_000)


@functools.lru_cache(maxsize=64)
def _rfc3339_seconds(seconds: int) -> str:
    # Whole seconds only, so the many calls of one second (a heartbeat per node) share one formatting.
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339_ns(text: str) -> int:
    """Unix nanoseconds from an RFC3339(Nano) string; 0 for an empty string."""
    if not text:
        return 0
    main, _, frac = text.rstrip("Z").partition(".")
    seconds = int(dt.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC).timestamp())
    nanos = int((frac + "000000000")[:9]) if frac else 0
    return seconds * 1_000_000_000 + nanos
