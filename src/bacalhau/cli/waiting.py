"""Waiting for a submitted job and printing its progress, as `job run`/`docker run`/`wasm run` do.

The job and its history are fetched in one request (`include=history`) and each new event printed once.
Each request also says `after_seq` (the highest history SeqNum seen so far) and `wait_ms` (at most what
is left of --wait-timeout-secs): a bacalhau-py server holds the answer until the job has a newer event,
so a short job's result shows the moment it exists, without polling. With `gather_ms` it holds news up
to GATHER_MS longer for the events that follow, answering at once when the job ends: a short job is one
answer, at its end, and the watcher's requests do not slow the job down step by step.

    ask (wait_ms, after_seq, gather_ms) --> new events? --yes--> print them, ask again at once
                                      |no
                                 sleep 10 ms, backing off to 0.2 s, then ask again

A server that ignores the two parameters (Bacalhau's Go server) answers at once, so an answer with
nothing new is followed by a sleep as before (10 ms growing to 0.2 s): never a busy loop. Only the
answer's JSON is read (cli/wire_view.py), without pydantic. On a terminal a rich spinner shows the
current job state beneath the events; piped, each event is a plain line
`<time> <exec id> <topic> <event>`. Waiting ends when the job reaches a terminal state (for
service/daemon jobs, once they run), or when --wait-timeout-secs pass.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import click

from bacalhau.cli.job.tables import event_moment, event_text, history_state
from bacalhau.cli.output import short_id, terminal_safe
from bacalhau.cli.wire_view import HistoryView, JobView, items_of
from bacalhau.client import routes
from bacalhau.models import constants as c
from bacalhau.models.state_types import JobStateType

if TYPE_CHECKING:
    from bacalhau.cli.shapes import HistoryLike, JobLike
    from bacalhau.client import Client

POLL_INTERVAL_S = 0.2
FIRST_POLL_S = 0.01
POLL_BACKOFF = 1.5
# The longest wait one request asks for; our server cuts it shorter itself (history_waiters.MAX_WAIT_MS).
MAX_WAIT_MS = 30_000
# Once there is news, the server may hold it this long for the events that follow (a job that ends is
# answered at once): a short job's events come in one answer, at its end, not one answer per step,
# and a long job's progress shows at most this late (each event printed with its own time).
GATHER_MS = 100
# Left to the HTTP request's own timeout beyond the wait it asked for, for the answer to arrive.
ANSWER_MARGIN_S = 1.0
LONG_RUNNING = (c.JOB_TYPE_SERVICE, c.JOB_TYPE_DAEMON)
_TOPIC_WIDTH = 16


def event_line(item: HistoryLike) -> str:
    """One history event as a plain line: time, short execution ID, topic, message."""
    moment = event_moment(item)
    stamp = moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}" if moment else " " * 12
    exec_id = short_id(item.execution_id) if item.execution_id else ""
    message = event_text(item, fallback=history_state(item))
    line = f"{stamp}  {exec_id:<10}  {item.event.topic:<{_TOPIC_WIDTH}}  {message}".rstrip()
    return terminal_safe(line, keep="")


def _key(item: HistoryLike) -> tuple[Any, ...]:
    # SeqNum identifies an event when the server sets it; the rest guards against servers that do not.
    return (item.seq_num, item.time, item.execution_id, item.event.topic, item.event.message)


class JobWatcher:
    """Follows a job until it settles, handing each new history event to `on_event` exactly once."""

    def __init__(
        self,
        client: Client,
        job_id: str,
        *,
        job_version: int = 0,
        namespace: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.job_id = job_id
        self.job_version = job_version
        self.namespace = namespace
        self._clock = clock
        self._sleep = sleep
        self._seen: set[tuple[Any, ...]] = set()
        self._after_seq = 0  # the highest SeqNum any answer held, whatever the version of its event

    def poll(self, wait_ms: int = 0) -> tuple[JobView, list[HistoryView]]:
        """The job as it is now and the history events of the watched version not returned before.

        With `wait_ms`, a server that knows the parameter answers once there is an event newer than
        any seen so far (or when `wait_ms` pass)."""
        call = routes.get_job(
            self.job_id, include=("history",), namespace=self.namespace, job_version=0, limit=0, wait_ms=wait_ms,
            after_seq=self._after_seq, gather_ms=GATHER_MS,
        )
        found = self.client.raw(call)
        job = JobView(found.get("Job") if isinstance(found, dict) else None)
        items = [HistoryView(item) for item in items_of(found.get("History") if isinstance(found, dict) else None)]
        self._after_seq = max([self._after_seq, *(item.seq_num for item in items)])
        version = self.job_version or job.version
        fresh = [i for i in items if i.job_version in (0, version) and _key(i) not in self._seen]
        self._seen.update(_key(item) for item in fresh)
        return job, fresh

    def job(self) -> JobView:
        """The job as it is now."""
        found = self.client.raw(routes.get_job(self.job_id, include=(), namespace=self.namespace, job_version=0,
                                               limit=0))
        return JobView(found.get("Job") if isinstance(found, dict) else None)

    def wait(
        self, timeout_s: float, on_event: Callable[[HistoryLike], None], on_state: Callable[[JobLike], None]
    ) -> JobView | None:
        """Follow the job until it settles; return it, or None when `timeout_s` passed first."""
        deadline = self._clock() + timeout_s
        interval = FIRST_POLL_S
        while True:
            job, fresh = self.poll(self._wait_ms(deadline))
            for item in fresh:
                on_event(item)
            on_state(job)
            if settled(job):
                return job
            remaining_s = deadline - self._clock()
            if remaining_s <= 0:
                return None
            if fresh:
                # News: ask again at once; a server that waits holds the question until the next event.
                interval = FIRST_POLL_S
                continue
            # Nothing new: the server does not wait (or its wait ran out). Back off, never spin.
            self._sleep(min(interval, remaining_s))
            interval = min(POLL_INTERVAL_S, interval * POLL_BACKOFF)

    def _wait_ms(self, deadline: float) -> int:
        """How long the next request may ask the server to wait: what is left of the timeout, at most
        MAX_WAIT_MS, and short enough that the answer comes within the HTTP request's own timeout."""
        budget_s = deadline - self._clock()
        request_timeout_s = self.client.timeout_s
        if request_timeout_s is not None:
            budget_s = min(budget_s, request_timeout_s - ANSWER_MARGIN_S)
        return max(0, min(MAX_WAIT_MS, int(budget_s * 1000)))


def settled(job: JobLike) -> bool:
    """Terminal, or running for the long-running job types (which never end on their own)."""
    state = job.state.state_type
    if state.is_terminal:
        return True
    return job.type in LONG_RUNNING and state is JobStateType.Running


def watch(watcher: JobWatcher, timeout_s: float, *, quiet: bool) -> JobView | None:
    """Wait for the job, printing events (plain when piped, with a spinner on a terminal)."""
    if quiet:
        return watcher.wait(timeout_s, lambda _item: None, lambda _job: None)
    status: AbstractContextManager[Any]
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console(highlight=False)
        live = console.status("Job state: Pending")
        status = live

        def show_event(item: HistoryLike) -> None:
            console.print(event_line(item), markup=False)

        def show_state(job: JobLike) -> None:
            live.update(f"Job state: {job.state.state_type.name}")
    else:
        status = nullcontext()

        def show_event(item: HistoryLike) -> None:
            click.echo(event_line(item))

        def show_state(job: JobLike) -> None:
            return None

    with status:
        return watcher.wait(timeout_s, show_event, show_state)
