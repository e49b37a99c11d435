"""What both executors share about ending a run early or running it off the event loop.

Stop reasons and their errors (the same messages whatever the engine), and the bridge that runs a
blocking run in its own thread and hands the result to the awaiting task.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
from collections.abc import Callable
from typing import TypeVar

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


def start_thread(fn: Callable[[], T], *, name: str) -> asyncio.Future[T]:
    """Run `fn` in a dedicated daemon thread and return a future of its result.

    A task may run for hours: it must not hold a slot of the loop's shared default pool (used for short
    blocking calls), nor keep the process from exiting.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]  # None only when error is set

    def target() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = fn()
        except BaseException as exc:  # delivered to the awaiting task, never lost in this thread
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future
