"""The threads executions run in: one per running execution, kept a while for the next one.

A run blocks its thread for as long as the task runs (hours, for some), so it must not take a slot of
the loop's shared default pool (meant for short blocking calls), and the number of threads follows the
number of runs. Starting a thread for every run cost more than a trivial WASM task itself: the event
loop waits in `Thread.start` until the new thread holds the GIL, while the loop is busy with the job's
own reports. So a thread that finished a run waits up to IDLE_S for the next one (at most MAX_IDLE
wait at once), and a run takes a waiting thread when there is one::

    submit(fn) ──idle thread?──yes──> hand fn to it ─┐
                   └─no──> start a daemon thread ────┴──> fn() ──> result to the awaiting task
                                                                     └──> wait IDLE_S for more, then exit
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

IDLE_S = 30.0
MAX_IDLE = 4

# A job runs its call and returns how to hand the result over (done once the thread is idle again).
_Job = tuple[Callable[[], Callable[[], None]], str]


class RunThreads:
    """Daemon threads running one blocking call at a time each, reused while they are idle."""

    def __init__(self, *, idle_s: float = IDLE_S, max_idle: int = MAX_IDLE) -> None:
        self._idle_s = idle_s
        self._max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[_Job]] = []
        self.started = 0  # threads started so far (for tests and diagnostics)

    def submit(self, fn: Callable[[], T], *, name: str) -> asyncio.Future[T]:
        """Run `fn` in a thread of its own (a reused one when one waits) and return a future of its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(result: T | None, error: BaseException | None) -> None:
            if future.done():
                return
            if isinstance(error, StopIteration):
                # asyncio refuses StopIteration as a future's exception (it would leave the run hanging).
                wrapped = RuntimeError(f"the run raised StopIteration: {error}")
                wrapped.__cause__ = error
                error = wrapped
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]  # None only when error is set

        def job() -> Callable[[], None]:
            result: T | None = None
            error: BaseException | None = None
            try:
                result = fn()
            except BaseException as exc:  # delivered to the awaiting task, never lost in this thread
                error = exc

            def deliver() -> None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
                    loop.call_soon_threadsafe(settle, result, error)

            return deliver

        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is not None:
            inbox.put((job, name))
        else:
            self.started += 1
            threading.Thread(target=self._serve, args=((job, name),), name=name, daemon=True).start()
        return future

    def _serve(self, first: _Job) -> None:
        inbox: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        job: _Job | None = first
        while job is not None:
            fn, name = job
            threading.current_thread().name = name
            deliver = fn()
            threading.current_thread().name = "run-idle"
            # Waiting before the result is handed over: the awaiting task may submit the next run at once.
            parked = self._park(inbox)
            deliver()
            job = self._wait(inbox) if parked else None

    def _park(self, inbox: queue.SimpleQueue[_Job]) -> bool:
        with self._lock:
            if len(self._idle) >= self._max_idle:
                return False
            self._idle.append(inbox)
            return True

    def _wait(self, inbox: queue.SimpleQueue[_Job]) -> _Job | None:
        """The next job handed to this (parked) thread, or None when none came within idle_s (it ends)."""
        try:
            return inbox.get(timeout=self._idle_s)
        except queue.Empty:
            with self._lock:
                if inbox in self._idle:
                    self._idle.remove(inbox)
                    return None
            # `submit` took this thread just as it timed out: its job is on the way.
            return inbox.get()


_shared = RunThreads()


def start_thread(fn: Callable[[], T], *, name: str) -> asyncio.Future[T]:
    """Run `fn` in a dedicated daemon thread (reused between runs) and return a future of its result."""
    return _shared.submit(fn, name=name)
