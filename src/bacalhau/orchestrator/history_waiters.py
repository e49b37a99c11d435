"""Waiting for a job's next history event instead of polling for it (`GET /jobs/{id}?wait_ms=&after_seq=`).

The job store calls `notify(job_id, ended)` after a commit that added events of that job; a request
waiting on that job wakes, reads the store again and answers. Everything runs on the event loop, so a
waiter registered before the store is read cannot miss a commit that happens after the read. A request
that gathers (`gather_ms`) and has its news already waits for the job's end only: the job's other
events do not wake it.
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


class Watch:
    """One waiting request: `changed` is set by news of its job (only by its end once `ends_only`)."""

    __slots__ = ("changed", "ends_only")

    def __init__(self) -> None:
        self.changed = asyncio.Event()
        # Set by a request that has its news and now only waits for the job's end (or its own time):
        # the rest of the job's events no longer wake it (each wake was a read of the store).
        self.ends_only = False


class HistoryWaiters:
    """Requests waiting for new history, by job ID."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[Watch]] = {}

    @contextmanager
    def watching(self, job_id: str) -> Iterator[Watch]:
        """A Watch whose event is set when events of `job_id` are committed while the `with` block is open."""
        watch = Watch()
        self._waiting.setdefault(job_id, set()).add(watch)
        try:
            yield watch
        finally:
            waiting = self._waiting.get(job_id)
            if waiting is not None:
                waiting.discard(watch)
                if not waiting:
                    del self._waiting[job_id]

    def notify(self, job_id: str, ended: bool) -> None:
        """Wake those waiting on `job_id` (called by the job store after a commit; `ended`: the job
        reached a terminal state in it)."""
        for watch in self._waiting.get(job_id, ()):
            if ended or not watch.ends_only:
                watch.changed.set()

    def __len__(self) -> int:
        return sum(len(watches) for watches in self._waiting.values())
