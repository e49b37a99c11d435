"""What both executors share about ending a run early or running it off the event loop.

Stop reasons and their errors (the same messages whatever the engine), and the bookkeeping of the
runs in progress, each in a thread of its own (run_threads.py) whose result goes to the awaiting task.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from bacalhau.compute.executors.run_threads import start_thread
from bacalhau.models.errors import ErrorCode, ExecutionError

T = TypeVar("T")


class Stop(enum.Enum):
    """Why a run was cut short."""

    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


def stop_error(reason: Stop | None, timeout_s: float | None, details: dict[str, str]) -> ExecutionError:
    """The error a run cut short raises: a timeout names the limit; anything else is a cancellation."""
    if reason is Stop.TIMEOUT:
        return ExecutionError(
            f"execution timed out after {timeout_s:g}s",
            code=ErrorCode.TimeOut,
            hint="raise Timeouts.ExecutionTimeout or make the task finish sooner",
            details=details,
        )
    return ExecutionError("execution cancelled", details=details)


class StopSwitchLike(Protocol):
    """What RunningExecutions needs of a run's stop switch."""

    stop_reason: Stop | None

    def stop(self, reason: Stop) -> None:
        """Cut the run short; the first reason wins. May block (e.g. killing a container)."""
        ...

    def raise_if_stopped(self, timeout_s: float | None, details: dict[str, str]) -> None:
        """Raise the stop's ExecutionError if a stop was asked for."""
        ...


S = TypeVar("S", bound=StopSwitchLike)


class RunningExecutions(Generic[S]):
    """The stop switches of the runs in progress, plus cancels that arrived before their run started.

    A cancel can overtake the run it cancels (the orchestrator's message arrives while the runner is
    still staging inputs); it is remembered, bounded, and applied when that run registers.
    """

    def __init__(self, *, max_early_cancels: int = 1024) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, S] = {}
        self._early_cancels: OrderedDict[str, None] = OrderedDict()  # bounded: most are never claimed
        self._max_early_cancels = max_early_cancels

    def register(self, execution_id: str, switch: S) -> None:
        """Track a run; a cancel that came first marks it cancelled. ExecutionError if already running."""
        with self._lock:
            if execution_id in self._running:
                raise ExecutionError(f"execution {execution_id} is already running")
            if execution_id in self._early_cancels:
                del self._early_cancels[execution_id]
                switch.stop_reason = Stop.CANCELLED
            self._running[execution_id] = switch

    def unregister(self, execution_id: str) -> None:
        with self._lock:
            self._running.pop(execution_id, None)

    def cancel(self, execution_id: str) -> S | None:
        """The running switch to stop, or None after remembering the cancel for a run not started yet."""
        with self._lock:
            switch = self._running.get(execution_id)
            if switch is None:
                self._early_cancels[execution_id] = None
                while len(self._early_cancels) > self._max_early_cancels:
                    self._early_cancels.popitem(last=False)
            return switch

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._running)

    async def run(self, execution_id: str, switch: S, work: Callable[[], T], *, timeout_s: float | None, name: str) -> T:
        """Run blocking `work` as `execution_id` in its own thread; the timeout and cancels stop `switch`."""
        self.register(execution_id, switch)
        try:
            switch.raise_if_stopped(timeout_s, {})
            future = start_thread(lambda: _with_timeout(work, switch, timeout_s), name=name)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                # The awaiting task was cancelled: stop the run and let its thread clean up first.
                await asyncio.to_thread(switch.stop, Stop.CANCELLED)
                await asyncio.wait([future])
                if not future.cancelled():
                    future.exception()  # the expected "execution cancelled": retrieved so asyncio does not log it
                raise
        finally:
            self.unregister(execution_id)

    async def stop(self, execution_id: str) -> None:
        """Cancel a running execution (its `run` raises "execution cancelled"), or pre-empt one not started."""
        switch = self.cancel(execution_id)
        if switch is not None:
            await asyncio.to_thread(switch.stop, Stop.CANCELLED)


def _with_timeout(work: Callable[[], T], switch: StopSwitchLike, timeout_s: float | None) -> T:
    timer: threading.Timer | None = None
    if timeout_s:
        timer = threading.Timer(timeout_s, switch.stop, args=(Stop.TIMEOUT,))
        timer.daemon = True
        timer.start()
    try:
        return work()
    finally:
        if timer is not None:
            timer.cancel()
