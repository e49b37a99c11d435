"""The evaluation broker: a priority queue of evaluations, at most one in flight per job.

    enqueue(eval) ──> ready heap (priority desc, create time asc)
                  └─> delayed heap while WaitUntil is in the future
    dequeue() ──> eval, marked in flight for its job; later evals of that job wait ("blocked")
    dequeue_ready(n) ──> up to n more that are ready now, each marked in flight (a worker's batch)
    ack(eval)  ──> next blocked eval of that job (if any) becomes ready

One in-flight evaluation per job (as in Nomad) keeps two workers from planning the same job at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import defaultdict, deque
from collections.abc import Callable

from bacalhau.models.evaluation import Evaluation
from bacalhau.models.state import EvaluationTrigger


class EvaluationBroker:
    """Async broker. Everything runs on one event loop; no locking needed beyond asyncio's."""

    def __init__(self, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._clock_ns = clock_ns
        self._seq = itertools.count()
        self._ready: list[tuple[int, int, int, Evaluation]] = []
        self._delayed: list[tuple[int, int, Evaluation]] = []
        self._blocked: dict[str, deque[Evaluation]] = defaultdict(deque)
        self._inflight: dict[str, str] = {}  # job id -> eval id
        self._known: set[str] = set()
        self._changed = asyncio.Event()
        self._closed = False

    def enqueue(self, evaluation: Evaluation) -> None:
        """Add an evaluation; duplicates (same ID) are ignored."""
        if evaluation.id in self._known:
            return
        self._known.add(evaluation.id)
        if evaluation.wait_until > self._clock_ns():
            heapq.heappush(self._delayed, (evaluation.wait_until, next(self._seq), evaluation))
        elif evaluation.job_id in self._inflight:
            self._blocked[evaluation.job_id].append(evaluation)
        else:
            self._push_ready(evaluation)
        self._changed.set()

    def _push_ready(self, evaluation: Evaluation) -> None:
        heapq.heappush(self._ready, (-evaluation.priority, evaluation.create_time, next(self._seq), evaluation))

    def _promote_delayed(self) -> None:
        now = self._clock_ns()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, evaluation = heapq.heappop(self._delayed)
            if evaluation.job_id in self._inflight:
                self._blocked[evaluation.job_id].append(evaluation)
            else:
                self._push_ready(evaluation)

    async def dequeue(self) -> Evaluation | None:
        """Wait for the next ready evaluation; None once the broker is closed."""
        while not self._closed:
            self._promote_delayed()
            while self._ready:
                _, _, _, evaluation = heapq.heappop(self._ready)
                if evaluation.job_id in self._inflight:
                    self._blocked[evaluation.job_id].append(evaluation)
                    continue
                self._inflight[evaluation.job_id] = evaluation.id
                return evaluation
            self._changed.clear()
            timeout = None
            if self._delayed:
                timeout = max(0.0, (self._delayed[0][0] - self._clock_ns()) / 1e9)
            # asyncio.timeout, not wait_for: 3.11's wait_for can turn a worker's cancel that arrives as
            # the timeout fires into a TimeoutError, and the worker would loop on instead of stopping.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._changed.wait()
        return None

    def dequeue_ready(self, limit: int) -> list[Evaluation]:
        """Up to `limit` more evaluations that are ready now, without waiting (a worker's batch)."""
        taken: list[Evaluation] = []
        if self._closed:
            return taken
        self._promote_delayed()
        while self._ready and len(taken) < limit:
            _, _, _, evaluation = heapq.heappop(self._ready)
            if evaluation.job_id in self._inflight:
                self._blocked[evaluation.job_id].append(evaluation)
                continue
            self._inflight[evaluation.job_id] = evaluation.id
            taken.append(evaluation)
        return taken

    def wake_delayed(self, triggered_by: EvaluationTrigger) -> int:
        """Make the delayed evaluations with this trigger ready now; returns how many.

        Used when a node joins: a queued job's retry (job-queue, due after QueueBackoff) runs at once
        instead of a new evaluation being added, so the job's single retry chain is not duplicated.
        """
        woken = [item for item in self._delayed if item[2].triggered_by == triggered_by]
        if not woken:
            return 0
        self._delayed = [item for item in self._delayed if item[2].triggered_by != triggered_by]
        heapq.heapify(self._delayed)
        for _, _, evaluation in woken:
            if evaluation.job_id in self._inflight:
                self._blocked[evaluation.job_id].append(evaluation)
            else:
                self._push_ready(evaluation)
        self._changed.set()
        return len(woken)

    def ack(self, evaluation: Evaluation) -> list[Evaluation]:
        """The evaluation is done (successfully or not): release its job.

        Returns the blocked evaluations of the same job made redundant by a newer one, so the
        caller can mark them cancelled in the store.
        """
        dropped: list[Evaluation] = []
        if self._inflight.get(evaluation.job_id) == evaluation.id:
            del self._inflight[evaluation.job_id]
        self._known.discard(evaluation.id)
        waiting = self._blocked.get(evaluation.job_id)
        if waiting:
            # Later evaluations of the same job are redundant once one runs: keep the newest only.
            newest = waiting.pop()
            dropped = list(waiting)
            for old in dropped:
                self._known.discard(old.id)
            del self._blocked[evaluation.job_id]
            self._push_ready(newest)
        self._changed.set()
        return dropped

    def pending_count(self) -> int:
        return len(self._ready) + len(self._delayed) + sum(len(q) for q in self._blocked.values())

    def close(self) -> None:
        self._closed = True
        self._changed.set()
