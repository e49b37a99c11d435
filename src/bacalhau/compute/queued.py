"""What a compute node keeps in memory of an execution waiting for capacity.

Only its IDs and the resources it will hold: the execution itself, with its whole job, waits in the
node's store and is read back when it starts, so the node's memory does not grow with its backlog (a
hybrid node given thousands of jobs at once queues them all: busy is never a reason to refuse a bid).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bacalhau.models.execution import Execution
from bacalhau.models.resources import Resources

# CPU is summed in whole nano-cores: float sums taken and given back in another order would drift.
_NANO = 1_000_000_000


@dataclass(frozen=True)
class QueuedExecution:
    """A queued execution as the queue needs it."""

    execution_id: str
    job_id: str
    resources: Resources

    @classmethod
    def of(cls, execution: Execution, resources: Resources) -> QueuedExecution:
        """The queue entry of `execution`, holding `resources` once it starts."""
        return cls(execution.id, execution.job_id, resources)


class ExecutionQueue:
    """Queued executions in arrival order (strict FIFO), by ID, with what they will hold together.

    The sum (the node info's QueueCapacity) is kept as entries come and go: the node info is sent
    after every change of the queue, and summing a backlog of thousands each time (a model per
    addition) took more of a loaded node's time than the jobs' own reports. A cancel removes its
    entry by ID, not by rebuilding the queue.
    """

    def __init__(self, items: Iterable[QueuedExecution] = ()) -> None:
        self._items: OrderedDict[str, QueuedExecution] = OrderedDict()
        self._nano_cpu = self._memory = self._disk = self._gpu = 0
        for item in items:
            self.append(item)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[QueuedExecution]:
        return iter(self._items.values())

    def append(self, item: QueuedExecution) -> None:
        """Queue `item` last; an execution already queued keeps its place."""
        if item.execution_id in self._items:
            return
        self._items[item.execution_id] = item
        self._count(item.resources, 1)

    def head(self) -> QueuedExecution | None:
        """The first in line, left queued; None if the queue is empty."""
        return next(iter(self._items.values()), None)

    def popleft(self) -> QueuedExecution:
        """Take the first in line. KeyError if the queue is empty."""
        _, item = self._items.popitem(last=False)
        self._count(item.resources, -1)
        return item

    def remove(self, execution_id: str) -> QueuedExecution | None:
        """Take `execution_id` out of line, wherever it is; None if it is not queued."""
        item = self._items.pop(execution_id, None)
        if item is not None:
            self._count(item.resources, -1)
        return item

    def take_all(self) -> list[QueuedExecution]:
        """Empty the queue; its entries in order."""
        items = list(self._items.values())
        self._items.clear()
        self._nano_cpu = self._memory = self._disk = self._gpu = 0
        return items

    def resources(self) -> Resources:
        """What the queued executions will hold together."""
        return Resources(cpu=self._nano_cpu / _NANO, memory=self._memory, disk=self._disk, gpu=self._gpu)

    def _count(self, resources: Resources, sign: int) -> None:
        self._nano_cpu += sign * round(resources.cpu * _NANO)
        self._memory += sign * resources.memory
        self._disk += sign * resources.disk
        self._gpu += sign * resources.gpu
