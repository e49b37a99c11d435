"""The evaluation broker: priority order, one evaluation in flight per job, delayed evaluations."""

from __future__ import annotations

import asyncio

from bacalhau.models.evaluation import Evaluation
from bacalhau.models.state import EvaluationTrigger
from bacalhau.orchestrator.broker import EvaluationBroker


class FakeClock:
    """An injectable clock so delays are tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def _eval(eval_id: str, job_id: str, *, priority: int = 0, created: int = 0, wait_until: int = 0) -> Evaluation:
    return Evaluation(ID=eval_id, JobID=job_id, Priority=priority, CreateTime=created, WaitUntil=wait_until)


async def test_higher_priority_first_then_oldest() -> None:
    broker = EvaluationBroker(clock_ns=FakeClock())
    broker.enqueue(_eval("a", "j1", created=2))
    broker.enqueue(_eval("b", "j2", created=1))
    broker.enqueue(_eval("c", "j3", priority=5, created=3))
    order = [(await broker.dequeue()) for _ in range(3)]
    assert [e.id for e in order if e] == ["c", "b", "a"]


async def test_one_evaluation_per_job_in_flight_and_newest_blocked_one_wins() -> None:
    broker = EvaluationBroker(clock_ns=FakeClock())
    broker.enqueue(_eval("first", "j1"))
    first = await broker.dequeue()
    assert first is not None
    broker.enqueue(_eval("second", "j1", created=1))
    broker.enqueue(_eval("third", "j1", created=2))
    waiter = asyncio.create_task(broker.dequeue())
    await asyncio.sleep(0)
    assert not waiter.done()
    dropped = broker.ack(first)
    assert [e.id for e in dropped] == ["second"]
    nxt = await asyncio.wait_for(waiter, 1)
    assert nxt is not None and nxt.id == "third"


async def test_delayed_evaluation_waits_until_its_time() -> None:
    clock = FakeClock()
    broker = EvaluationBroker(clock_ns=clock)
    broker.enqueue(_eval("later", "j1", wait_until=clock.now + 10**15))
    assert broker.pending_count() == 1
    waiter = asyncio.create_task(broker.dequeue())
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.now += 10**15
    broker.enqueue(_eval("nudge", "j2"))  # any change wakes the broker, which re-checks delays
    got = {(await asyncio.wait_for(waiter, 1)).id}  # type: ignore[union-attr]
    second = await asyncio.wait_for(broker.dequeue(), 1)
    assert second is not None
    got.add(second.id)
    assert got == {"later", "nudge"}


async def test_close_releases_waiting_workers() -> None:
    broker = EvaluationBroker()
    waiter = asyncio.create_task(broker.dequeue())
    await asyncio.sleep(0)
    broker.close()
    assert await asyncio.wait_for(waiter, 1) is None


async def test_duplicate_ids_are_ignored() -> None:
    broker = EvaluationBroker(clock_ns=FakeClock())
    broker.enqueue(_eval("a", "j1"))
    broker.enqueue(_eval("a", "j1"))
    assert broker.pending_count() == 1


async def test_waking_delayed_queue_retries_makes_only_those_ready_now() -> None:
    broker = EvaluationBroker(clock_ns=FakeClock())
    retry = _eval("retry", "j-queued", wait_until=10_000)
    retry.triggered_by = EvaluationTrigger.JobQueue
    other = _eval("later", "j-other", wait_until=10_000)
    other.triggered_by = EvaluationTrigger.ExecTimeout
    broker.enqueue(retry)
    broker.enqueue(other)
    assert broker.wake_delayed(EvaluationTrigger.JobQueue) == 1
    woken = await asyncio.wait_for(broker.dequeue(), 1)
    assert woken is not None and woken.id == "retry"
    broker.ack(woken)
    assert broker.pending_count() == 1  # the other one still waits for its time
    assert broker.wake_delayed(EvaluationTrigger.JobQueue) == 0


async def test_a_batch_takes_ready_evaluations_in_order_one_per_job_and_leaves_delayed_ones() -> None:
    clock = FakeClock()
    broker = EvaluationBroker(clock_ns=clock)
    broker.enqueue(_eval("a1", "j1", created=1))
    broker.enqueue(_eval("a2", "j1", created=2))  # same job: must wait for a1
    broker.enqueue(_eval("b", "j2", created=3, priority=1))
    broker.enqueue(_eval("c", "j3", created=4))
    broker.enqueue(_eval("later", "j4", wait_until=clock.now + 10))
    first = await broker.dequeue()
    assert first is not None and first.id == "b"
    batch = broker.dequeue_ready(10)
    assert [e.id for e in batch] == ["a1", "c"]
    assert broker.dequeue_ready(10) == []  # a2 is blocked behind a1, `later` not due
    broker.ack(batch[0])
    assert [e.id for e in broker.dequeue_ready(1)] == ["a2"]
    clock.now += 10
    assert [e.id for e in broker.dequeue_ready(10)] == ["later"]


async def test_a_batch_is_bounded_by_its_limit() -> None:
    broker = EvaluationBroker(clock_ns=FakeClock())
    for i in range(5):
        broker.enqueue(_eval(f"e{i}", f"j{i}", created=i))
    assert [e.id for e in broker.dequeue_ready(3)] == ["e0", "e1", "e2"]
    assert [e.id for e in broker.dequeue_ready(3)] == ["e3", "e4"]
