"""ExecutionQueue: strict FIFO by ID, with the resources its entries will hold kept as they come and go."""

from __future__ import annotations

import random

import pytest

from bacalhau.compute.queued import ExecutionQueue, QueuedExecution
from bacalhau.models.resources import Resources


def entry(n: int, cpu: float = 0.1, memory: int = 100, disk: int = 10, gpu: int = 0) -> QueuedExecution:
    return QueuedExecution(f"e-{n}", f"j-{n}", Resources(CPU=cpu, Memory=memory, Disk=disk, GPU=gpu))


def summed(items: list[QueuedExecution]) -> Resources:
    total = Resources()
    for item in items:
        total = total.add(item.resources)
    return total


def test_entries_leave_in_arrival_order_and_a_cancel_takes_one_out_of_the_middle() -> None:
    queue = ExecutionQueue([entry(1), entry(2), entry(3)])
    assert queue.remove("e-2") == entry(2)
    assert queue.remove("e-2") is None  # gone already
    assert queue.head() == entry(1) and len(queue) == 2  # head() leaves it queued
    assert [queue.popleft(), queue.popleft()] == [entry(1), entry(3)]
    assert queue.head() is None and len(queue) == 0
    with pytest.raises(KeyError):
        queue.popleft()


def test_an_execution_queued_twice_keeps_its_place_and_counts_once() -> None:
    queue = ExecutionQueue([entry(1), entry(2)])
    queue.append(entry(1, cpu=5))
    assert list(queue) == [entry(1), entry(2)]
    assert queue.resources().cpu == pytest.approx(0.2)


def test_the_sum_follows_every_change_and_is_exactly_zero_when_empty() -> None:
    rng = random.Random(7)
    queue = ExecutionQueue()
    mirror: list[QueuedExecution] = []
    for n in range(2_000):
        if mirror and rng.random() < 0.45:
            if rng.random() < 0.5:
                assert queue.popleft() == mirror.pop(0)
            else:
                gone = mirror.pop(rng.randrange(len(mirror)))
                assert queue.remove(gone.execution_id) == gone
        else:
            item = entry(n, cpu=rng.choice([0.1, 0.25, 1.0, 0.333]), memory=rng.randrange(1, 1 << 30),
                         disk=rng.randrange(1 << 20), gpu=rng.randrange(2))
            queue.append(item)
            mirror.append(item)
        got, want = queue.resources(), summed(mirror)
        assert (got.memory, got.disk, got.gpu) == (want.memory, want.disk, want.gpu)
        assert got.cpu == pytest.approx(want.cpu, abs=1e-9)
    assert [item.execution_id for item in queue] == [item.execution_id for item in mirror]
    assert queue.take_all() == mirror
    assert queue.resources() == Resources() and len(queue) == 0
