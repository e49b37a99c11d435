"""Job timeouts: a job whose TotalTimeout passes before it ends is failed and its executions stopped.

One timer per job with a TotalTimeout, armed on submit and re-armed for unfinished jobs at start-up,
instead of a periodic scan: the deadline is met to the millisecond and idle nodes do no work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bacalhau.models.errors import ConflictError, NotFoundError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.history import TOPIC_JOB_TIMEOUT
from bacalhau.models.job import Job
from bacalhau.models.limits import TIMER_CEILING_S, show_number
from bacalhau.models.state import EvaluationTrigger, JobStateType
from bacalhau.orchestrator.evaluations import new_evaluation
from bacalhau.orchestrator.events import job_state_event
from bacalhau.orchestrator.jobstore.base import JobStore

log = logging.getLogger(__name__)

_ACTIVE = frozenset({JobStateType.Pending, JobStateType.Queued, JobStateType.Running})


class JobTimeouts:
    def __init__(
        self,
        *,
        store: JobStore,
        enqueue: Callable[[Evaluation], None],
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._store = store
        self._enqueue = enqueue
        self._clock_ns = clock_ns
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self, job: Job) -> None:
        """Start (or restart) the job's TotalTimeout timer; jobs without one are ignored."""
        if job.state.state_type.is_terminal:
            return
        self.arm_at(job.id, job.create_time, job.task.timeouts.total_timeout if job.tasks else 0)

    def arm_at(self, job_id: str, create_time_ns: int, total_s: int) -> None:
        """`arm` for a job still active, by what the timer needs (what a submission has at hand: no read
        of the stored job back, which cost a submission as much as its evaluation's first read)."""
        if total_s <= 0:
            return
        self.disarm(job_id)
        if total_s > TIMER_CEILING_S:
            # Validation refuses it and the scheduler fails such a stored job; a timer this long would
            # only overflow (int -> float) and never fire in this process's life anyway.
            log.warning("job %s: TotalTimeout %ss is beyond any timer; not armed", job_id, show_number(total_s))
            return
        remaining_s = max(0, create_time_ns + total_s * 1_000_000_000 - self._clock_ns()) / 1e9
        loop = asyncio.get_running_loop()
        self._timers[job_id] = loop.call_later(remaining_s, self._fire, job_id, total_s)

    def disarm(self, job_id: str) -> None:
        timer = self._timers.pop(job_id, None)
        if timer is not None:
            timer.cancel()

    def _fire(self, job_id: str, total_s: int) -> None:
        self._timers.pop(job_id, None)
        task = asyncio.get_running_loop().create_task(self._expire(job_id, total_s))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expire(self, job_id: str, total_s: int) -> None:
        try:
            job = await self._store.get_job(job_id)
        except NotFoundError:
            return
        previous = job.state.state_type
        if previous not in _ACTIVE:
            return
        message = f"Job timed out. Job took longer than {total_s}s"
        details = {"IsError": "true", "Hint": "Increase the task timeout or allocate more resources"}
        evaluation = new_evaluation(job, EvaluationTrigger.JobTimeout, self._clock_ns())
        event = job_state_event(job, previous, JobStateType.Failed, message, details)
        event.event.topic = TOPIC_JOB_TIMEOUT
        try:
            async with self._store.transaction():
                await self._store.update_job_state(
                    job_id, JobStateType.Failed, message, expected=_ACTIVE, events=[event], details=details
                )
                await self._store.create_evaluation(evaluation)
        except ConflictError:
            return
        self._enqueue(evaluation)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
