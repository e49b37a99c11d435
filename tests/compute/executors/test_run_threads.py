"""RunThreads: the threads executions run in, reused while idle (no mocks of threads or the event loop).

Each run blocks a thread of its own for as long as it lasts, so these tests check what the executors
rely on: a run's result or exception reaches the awaiting task, concurrent runs never queue behind one
another, a finished thread is reused by the next run (the point of the module: starting a thread per
run cost more than a trivial WASM task), idle threads are bounded in number and in lifetime, and a job
handed to a thread just as that thread gives up waiting is never lost.

Waits are bounded (deadlines); nothing asserts after a fixed sleep.
"""

from __future__ import annotations

import asyncio
import queue
import random
import threading
import time
from collections.abc import Callable, Coroutine
from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest

from bacalhau.compute.executors import run_threads
from bacalhau.compute.executors.run_threads import RunThreads, start_thread

WaitUntil = Callable[..., Coroutine[Any, Any, None]]
BOUND_S = 10.0  # generous ceiling for anything that should take milliseconds


def parked(threads: RunThreads) -> int:
    """How many threads wait for a job right now.

    A thread parks itself just before it hands its result over; the tests that need the next submit to
    find it still wait for this, so that they test reuse and not that ordering (tested on its own below).
    """
    with threads._lock:
        return len(threads._idle)


def current() -> threading.Thread:
    return threading.current_thread()


# -- results, exceptions, names ---------------------------------------------------------------------------
async def test_sequential_runs_reuse_one_thread_named_after_each_run(wait_until: WaitUntil) -> None:
    """The reuse the module exists for; the thread's name says which run it serves (thread dumps, logs)."""
    threads = RunThreads(idle_s=BOUND_S)
    seen: list[tuple[threading.Thread, str]] = []

    def record(result: int) -> int:
        seen.append((current(), current().name))
        return result

    for i in range(5):
        if i:
            await wait_until(lambda: parked(threads) == 1, timeout_s=BOUND_S)
        assert await asyncio.wait_for(threads.submit(partial(record, i * 10), name=f"run-{i}"), BOUND_S) == i * 10
    assert threads.started == 1
    assert len({thread for thread, _ in seen}) == 1
    assert [name for _, name in seen] == [f"run-{i}" for i in range(5)]
    worker = seen[0][0]
    await wait_until(lambda: worker.name == "run-idle", timeout_s=BOUND_S)
    assert worker.is_alive()


async def test_concurrent_blocking_runs_each_get_their_own_thread() -> None:
    """Two runs that can only finish together (a barrier) must run at once: neither waits for the other."""
    threads = RunThreads(idle_s=BOUND_S)
    barrier = threading.Barrier(2, timeout=BOUND_S)  # broken (and the futures fail) if they ran one by one

    def meet() -> tuple[threading.Thread, str]:
        barrier.wait()
        return current(), current().name

    first = threads.submit(meet, name="run-a")
    second = threads.submit(meet, name="run-b")
    (thread_a, name_a), (thread_b, name_b) = await asyncio.wait_for(asyncio.gather(first, second), BOUND_S)
    assert thread_a is not thread_b
    assert (name_a, name_b) == ("run-a", "run-b")
    assert threads.started == 2


async def test_an_exception_reaches_the_awaiting_task_and_the_thread_serves_on(wait_until: WaitUntil) -> None:
    """A failing run (a trap, a Docker error) must fail its awaiting task, not hang it or kill the thread."""
    threads = RunThreads(idle_s=BOUND_S)
    ran_in: list[threading.Thread] = []

    def fail() -> int:
        ran_in.append(current())
        raise ValueError("boom in the run")

    with pytest.raises(ValueError, match=r"^boom in the run$"):
        await asyncio.wait_for(threads.submit(fail, name="failing"), BOUND_S)
    await wait_until(lambda: parked(threads) == 1, timeout_s=BOUND_S)
    assert await asyncio.wait_for(threads.submit(current, name="after"), BOUND_S) is ran_in[0]
    assert threads.started == 1


async def test_the_shared_start_thread_runs_the_call_in_a_thread_of_its_own() -> None:
    """`start_thread` is what RunningExecutions uses: the call runs off the loop's thread, under its name."""
    loop_thread = current()
    thread, name = await asyncio.wait_for(start_thread(lambda: (current(), current().name), name="shared-run"), BOUND_S)
    assert thread is not loop_thread
    assert name == "shared-run"


# -- idle threads: lifetime and number --------------------------------------------------------------------
async def test_an_idle_thread_ends_after_idle_s_and_the_next_run_starts_a_new_one(wait_until: WaitUntil) -> None:
    """Threads must not pile up for ever on a node that ran a burst of jobs once."""
    threads = RunThreads(idle_s=0.05)
    first = await asyncio.wait_for(threads.submit(current, name="early"), BOUND_S)
    await wait_until(lambda: not first.is_alive(), timeout_s=BOUND_S)
    second = await asyncio.wait_for(threads.submit(current, name="late"), BOUND_S)
    assert second is not first
    assert threads.started == 2


async def test_max_idle_bounds_how_many_finished_threads_wait(wait_until: WaitUntil) -> None:
    """With max_idle=1, of three threads that finish together one stays; the next three runs reuse only it."""
    runs = 3
    threads = RunThreads(idle_s=BOUND_S, max_idle=1)

    async def batch() -> list[threading.Thread]:
        barrier = threading.Barrier(runs, timeout=BOUND_S)  # all `runs` at once: each needs a thread

        def meet() -> threading.Thread:
            barrier.wait()
            return current()

        futures = [threads.submit(meet, name=f"batch-{i}") for i in range(runs)]
        return list(await asyncio.wait_for(asyncio.gather(*futures), BOUND_S))

    first = await batch()
    assert threads.started == runs
    await wait_until(lambda: sum(t.is_alive() for t in first) == 1, timeout_s=BOUND_S)
    (survivor,) = [t for t in first if t.is_alive()]
    await wait_until(lambda: parked(threads) == 1, timeout_s=BOUND_S)

    second = await batch()
    assert threads.started == runs + (runs - 1)
    assert survivor in second
    assert len(set(second)) == runs


# -- the race between an idle thread timing out and a job handed to it ------------------------------------
async def test_a_job_handed_over_just_as_the_idle_wait_times_out_still_runs(
    monkeypatch: pytest.MonkeyPatch, wait_until: WaitUntil
) -> None:
    """Forces the race: the thread's wait times out, then `submit` takes the thread before it deregisters.

    The thread must notice it was taken and run the job; giving up would leave the run's task waiting
    for ever (and its execution stuck in "running").
    """
    timed_out = threading.Event()
    handed = threading.Event()

    class RacingQueue(queue.SimpleQueue[Any]):
        """A thread's inbox whose first timed wait "times out" only once the test handed a job to it."""

        raced = False

        def get(self, block: bool = True, timeout: float | None = None) -> Any:
            if timeout is not None and not RacingQueue.raced:
                RacingQueue.raced = True
                timed_out.set()
                assert handed.wait(BOUND_S), "the test never handed the job over"
                raise queue.Empty
            return super().get(block, timeout)

    monkeypatch.setattr(run_threads, "queue", SimpleNamespace(SimpleQueue=RacingQueue, Empty=queue.Empty))
    threads = RunThreads(idle_s=BOUND_S)
    worker = await asyncio.wait_for(threads.submit(current, name="before"), BOUND_S)
    await wait_until(timed_out.is_set, timeout_s=BOUND_S)  # parked, and its wait has just "timed out"
    late = threads.submit(lambda: current().name, name="handed-over")
    handed.set()
    assert await asyncio.wait_for(late, BOUND_S) == "handed-over"
    assert threads.started == 1  # the job went to the thread that timed out, not to a new one
    assert worker.is_alive()


async def test_many_short_runs_with_a_tiny_idle_time_all_complete() -> None:
    """The same race left to chance: idle waits of 1 ms against submits 0-3 ms apart; no job may be lost."""
    threads = RunThreads(idle_s=0.001)
    rng = random.Random(20240607)  # fixed seed: the same schedule of gaps every run
    futures: list[asyncio.Future[int]] = []
    for i in range(300):
        futures.append(threads.submit(partial(int, i), name=f"short-{i}"))
        if rng.random() < 0.7:
            await asyncio.sleep(rng.uniform(0, 0.003))
    results = await asyncio.wait_for(asyncio.gather(*futures), 30)  # a lost job would time out here
    assert results == list(range(300))
    assert threads.started < 300  # some runs did find a waiting thread: the race was exercised


# -- found by review, fixed ------------------------------------------------------------------------------------------------
async def test_a_stop_iteration_raised_by_the_run_still_settles_its_future() -> None:
    """`next()` on an empty iterator in a run must fail the run, not leave its task waiting for ever."""
    threads = RunThreads(idle_s=BOUND_S)

    def exhausted() -> int:
        return next(iter([]))

    future = threads.submit(exhausted, name="stop-iteration")
    done, _ = await asyncio.wait({future}, timeout=2.0)  # settles within milliseconds when it works
    assert future in done
    assert future.exception() is not None


async def test_a_submit_made_as_soon_as_the_result_arrives_reuses_the_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-to-back runs are the case the reuse exists for; here the worker is descheduled (100 ms) right
    after handing over its result, as a busy host may do, and the next run must still get that thread."""
    loop = asyncio.get_running_loop()
    deliver = loop.call_soon_threadsafe

    def deliver_then_get_descheduled(callback: Callable[..., object], *args: object) -> asyncio.Handle:
        handle = deliver(callback, *args)
        if current() is not threading.main_thread():
            time.sleep(0.1)
        return handle

    monkeypatch.setattr(loop, "call_soon_threadsafe", deliver_then_get_descheduled)
    threads = RunThreads(idle_s=BOUND_S)
    await asyncio.wait_for(threads.submit(lambda: 1, name="back-to-back-1"), BOUND_S)
    await asyncio.wait_for(threads.submit(lambda: 2, name="back-to-back-2"), BOUND_S)
    assert threads.started == 1
