"""Go duration strings in config values: the parser lives with the models (job Meta uses it too)."""

from __future__ import annotations

from bacalhau.models.duration import parse_duration_s

__all__ = ["parse_duration_s"]
