"""The orchestrator's side of a refused compute node: nats-server writes why it dropped a client only to
its own log (nats-server.log); this follows that log and says it in the node's log, where people look.

    [ERR] 10.0.0.7:51234 - cid:12 - authentication error        -> wrong or missing token
    [ERR] 10.0.0.7:51240 - cid:13 - TLS handshake error: ...     -> the client does not trust our certificate
                                                                    (or speaks plain NATS to a TLS port)

Bounded: at most `max_bytes` of new log are read per poll, and one line per client address and reason
per `quiet_s` (a node retrying every few seconds does not flood the log).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_LINE = re.compile(r"\[ERR\] (?P<addr>\S+) - \S+ - (?P<what>authentication error.*|TLS handshake error.*)$")
POLL_S = 1.0
MAX_BYTES = 64 * 1024
QUIET_S = 60.0


def explain(line: str) -> str | None:
    """The node-log sentence for one nats-server log line, None when it is not a refusal."""
    found = refusal_of(line)
    return None if found is None else found[1]


def refusal_of(line: str) -> tuple[str, str] | None:
    """(what repeats it: the client's host and the kind of refusal, the sentence), None for other lines."""
    found = _LINE.search(line.strip())
    if found is None:
        return None
    addr, what = found.group("addr"), found.group("what")
    host = addr.rsplit(":", 1)[0]  # a retrying client comes from a new port each time
    sentence = _sentence(addr, what)
    return f"{host} {what.split(':', 1)[0].split(' - ', 1)[0]}", sentence


def _sentence(addr: str, what: str) -> str:
    if what.startswith("authentication error"):
        return (f"NATS refused a connection from {addr}: wrong or missing token "
                "(its Compute.Auth.Token must equal this orchestrator's Orchestrator.Auth.Token)")
    return (f"NATS refused a connection from {addr}: {what} (does it trust this orchestrator's certificate? "
            "Compute.TLS.CACert)")


class RefusalReader:
    """The new refusals in a log file since the last read (blocking file I/O: call it in a thread)."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES, quiet_s: float = QUIET_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._quiet_s = quiet_s
        self._clock = clock
        self._offset = path.stat().st_size if path.exists() else 0
        self._partial = b""
        self._last_said: dict[str, float] = {}

    def read(self) -> list[str]:
        """The sentences to log for what the server wrote since the last call."""
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, 2)
                if size < self._offset:  # rotated or truncated: the unfinished line went with it
                    self._offset = 0
                    self._partial = b""
                f.seek(self._offset)
                chunk = f.read(self._max_bytes)
        except OSError:
            return []
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()[-4096:]
        now = self._clock()
        out = []
        for raw in lines:
            found = refusal_of(raw.decode("utf-8", "replace"))
            if found is None:
                continue
            key, sentence = found
            if now - self._last_said.get(key, -self._quiet_s) < self._quiet_s:
                continue
            self._last_said[key] = now
            out.append(sentence)
        if len(self._last_said) > 10_000:
            self._last_said.clear()
        return out


async def follow(path: Path, *, poll_s: float = POLL_S) -> None:
    """Report refusals written to `path` from now on, until cancelled."""
    reader = await asyncio.to_thread(RefusalReader, path)
    while True:
        await asyncio.sleep(poll_s)
        for sentence in await asyncio.to_thread(reader.read):
            log.warning("%s", sentence)
