"""Waiting for a submitted job and printing its progress, as `job run`/`docker run`/`wasm run` do.

The job and its history are fetched in one request (`include=history`) and each new event printed once:
first every 10 ms, backing off to every 0.2 s, so a short job's result shows as soon as it exists
without a long job costing more requests than a steady 0.2 s poll. On a terminal a rich spinner
shows the current job state beneath the events; piped, each event is a plain line
`<time> <exec id> <topic> <event>`. Waiting ends when the job reaches a terminal state (for
service/daemon jobs, once they run), or when --wait-timeout-secs pass.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import click

from bacalhau.cli.output import parse_rfc3339, short_id, terminal_safe
from bacalhau.client import Client
from bacalhau.models import constants as c
from bacalhau.models.history import JobHistory
from bacalhau.models.job import Job
from bacalhau.models.state import JobStateType

POLL_INTERVAL_S = 0.2
FIRST_POLL_S = 0.01
POLL_BACKOFF = 1.5
LONG_RUNNING = (c.JOB_TYPE_SERVICE, c.JOB_TYPE_DAEMON)
_TOPIC_WIDTH = 16


def event_line(item: JobHistory) -> str:
    """One history event as a plain line: time, short execution ID, topic, message."""
    moment = parse_rfc3339(item.time) or parse_rfc3339(item.event.timestamp)
    stamp = moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}" if moment else " " * 12
    exec_id = short_id(item.execution_id) if item.execution_id else ""
    message = item.event.message or _state_text(item)
    if item.event.details.get("Hint"):
        message += f" ({item.event.details['Hint']})"
    line = f"{stamp}  {exec_id:<10}  {item.event.topic:<{_TOPIC_WIDTH}}  {message}".rstrip()
    return terminal_safe(line, keep="")


def _state_text(item: JobHistory) -> str:
    if item.job_state is not None:
        return item.job_state.new.name
    if item.execution_state is not None:
        return item.execution_state.new.name
    return ""


def _key(item: JobHistory) -> tuple[Any, ...]:
    # SeqNum identifies an event when the server sets it; the rest guards against servers that do not.
    return (item.seq_num, item.time, item.execution_id, item.event.topic, item.event.message)


class JobWatcher:
    """Polls a job until it settles, handing each new history event to `on_event` exactly once."""

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

    def poll(self) -> tuple[Job, list[JobHistory]]:
        """The job as it is now and the history events of the watched version not returned before."""
        response = self.client.get_job(self.job_id, include=("history",), namespace=self.namespace)
        job = response.job
        version = self.job_version or job.version
        items = response.history.items if response.history is not None else []
        fresh = [i for i in items if i.job_version in (0, version) and _key(i) not in self._seen]
        self._seen.update(_key(item) for item in fresh)
        return job, fresh

    def job(self) -> Job:
        """The job as it is now."""
        return self.client.get_job(self.job_id, namespace=self.namespace).job

    def wait(self, timeout_s: float, on_event: Callable[[JobHistory], None], on_state: Callable[[Job], None]) -> Job | None:
        """Poll until the job settles; return it, or None when `timeout_s` passed first."""
        deadline = self._clock() + timeout_s
        interval = FIRST_POLL_S
        while True:
            job, fresh = self.poll()
            for item in fresh:
                on_event(item)
            on_state(job)
            if settled(job):
                return job
            if self._clock() >= deadline:
                return None
            self._sleep(interval)
            interval = min(POLL_INTERVAL_S, interval * POLL_BACKOFF)


def settled(job: Job) -> bool:
    """Terminal, or running for the long-running job types (which never end on their own)."""
    state = job.state.state_type
    if state.is_terminal:
        return True
    return job.type in LONG_RUNNING and state is JobStateType.Running


def watch(watcher: JobWatcher, timeout_s: float, *, quiet: bool) -> Job | None:
    """Wait for the job, printing events (plain when piped, with a spinner on a terminal)."""
    if quiet:
        return watcher.wait(timeout_s, lambda _item: None, lambda _job: None)
    status: AbstractContextManager[Any]
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console(highlight=False)
        live = console.status("Job state: Pending")
        status = live

        def show_event(item: JobHistory) -> None:
            console.print(event_line(item), markup=False)

        def show_state(job: Job) -> None:
            live.update(f"Job state: {job.state.state_type.name}")
    else:
        status = nullcontext()

        def show_event(item: JobHistory) -> None:
            click.echo(event_line(item))

        def show_state(job: Job) -> None:
            return None

    with status:
        return watcher.wait(timeout_s, show_event, show_state)
