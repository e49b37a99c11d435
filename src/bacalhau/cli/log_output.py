"""Where and how `bacalhau serve` writes its log: `Logging.Level` and `Logging.Mode`, as Bacalhau.

Bacalhau (zerolog) has three modes: `default` (a console line: time, level, message), `json` (one JSON
object per line with `level`, `time`, `message`, `caller`) and `cmd` (the message alone, for the CLI).
Ours writes to stderr in every mode, so that a node's stdout stays free for what a command prints;
Bacalhau writes its node log to stdout.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

# zerolog level names for Python's levels; TRACE and PANIC have no Python equivalent and map to the
# nearest one.
_PYTHON_LEVEL = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "panic": logging.CRITICAL,
}
_ZEROLOG_NAME = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record, with zerolog's field names so log shippers need no new mapping."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "level": _ZEROLOG_NAME.get(record.levelno, record.levelname.lower()),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "caller": f"{record.pathname}:{record.lineno}",
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def python_level(level: str) -> int:
    """The `logging` level for a Bacalhau level name (case-insensitive); unknown names mean info."""
    return _PYTHON_LEVEL.get(level.strip().lower(), logging.INFO)


def configure_logging(*, level: str, mode: str, stream: TextIO | None = None) -> None:
    """Route every logger of the process to `stream` (stderr) at `level`, formatted for `mode`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    mode = mode.strip().lower()
    if mode == "json":
        handler.setFormatter(JsonLineFormatter())
    elif mode == "cmd":
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    # Replace, not add: `serve` may be invoked twice in one process (tests), and duplicate handlers
    # would print every line twice.
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(python_level(level))
