"""Go duration strings (`30s`, `1m`, `1h30m`, `500ms`) as used in Bacalhau's config."""

from __future__ import annotations

import re

_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration_s(value: str | int | float) -> float:
    """Seconds in a Go duration string; a bare number is taken as seconds. Raises ValueError."""
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    if not text:
        return 0.0
    if re.fullmatch(r"[0-9]*\.?[0-9]+", text):
        return float(text)
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"invalid duration {value!r}: expected a Go duration like 30s, 1m, 1h30m")
    return total
