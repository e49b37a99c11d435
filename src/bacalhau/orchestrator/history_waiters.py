"""Waiting for a job's next history event instead of polling for it (`GET /jobs/{id}?wait_ms=&after_seq=`).

The job store calls `notify(job_id)` after a commit that added events of that job; a request waiting
on that job wakes, reads the store again and answers. Everything runs on the event loop, so a waiter
registered before the store is read cannot miss a commit that happens after the read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

# A server-side wait longer than this is cut short (and answered with what there is): the client
# asks again, and no connection is held for minutes by a caller that has gone away.
MAX_WAIT_MS = 10_000
# News gathered for a waiting client (`gather_ms`) is answered within this, whatever it asked.
MAX_GATHER_MS = 1_000


class HistoryWaiters:
    """Events of requests waiting for new history, by job ID."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def watching(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set when events of `job_id` are committed while the `with` block is open."""
        event = asyncio.Event()
        self._waiting.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._waiting.get(job_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiting[job_id]

    def notify(self, job_id: str) -> None:
        """Wake everyone waiting on `job_id` (called by the job store after a commit)."""
        for event in self._waiting.get(job_id, ()):
            event.set()

    def __len__(self) -> int:
        return sum(len(events) for events in self._waiting.values())
