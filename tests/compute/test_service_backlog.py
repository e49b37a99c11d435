"""A compute node with a long queue: what waits is kept in its store, not in memory.

An orchestrator places every job on a busy node too (busy is never a reason to refuse, as in Bacalhau):
a hybrid node given thousands of jobs at once queues them all. Each execution carries its whole job, so
a queue held in memory grew with the backlog; the queue keeps IDs and sizes, and an execution is read
back from the store when it starts.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import TYPE_CHECKING

from compute_executors import ScriptedExecutor
from compute_factories import scripted_execution

from bacalhau.compute.service import ComputeNode
from bacalhau.models.execution import Execution
from bacalhau.transport.messages import AskForBid, BidResult, RunResult

if TYPE_CHECKING:
    from conftest import RecordingOrchestrator

QUEUED = 200
PAD = "x" * 50_000  # a job that carries 50 KB (an inline module, a big environment): 10 MB over the queue


async def test_queued_executions_wait_in_the_store_not_in_memory(
    node: ComputeNode, orchestrator: RecordingOrchestrator, executor: ScriptedExecutor
) -> None:
    blocker = scripted_execution(cpu="4", Block=True)  # the node's whole capacity: everything else waits
    await node.ask_for_bid(AskForBid(Execution=blocker))
    waiting = [scripted_execution(cpu="4", env={"PAD": PAD}) for _ in range(QUEUED)]
    offers = [execution.model_dump_json(by_alias=True) for execution in waiting]
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for offer in offers:  # each offer decoded anew, as one arriving from the orchestrator is
            await node.ask_for_bid(AskForBid(Execution=Execution.model_validate_json(offer)))
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    info = node.node_info().compute_node_info
    assert info is not None and info.enqueued_executions == QUEUED
    await orchestrator.wait_for(BidResult, waiting[-1].id)
    assert [b.accepted for b in orchestrator.of(BidResult)].count(True) == QUEUED + 1
    # Kept in memory, the decoded offers alone would be 10 MB: what the node kept must be far less.
    assert after - before < QUEUED * len(PAD) // 4, f"the queue grew memory by {(after - before) // 1024} KiB"

    # Read back from the store, they run in their turn, each with its own job as it was offered.
    executor.release(blocker.id)
    for execution in waiting[:3]:
        await orchestrator.wait_for(RunResult, execution.id)
        assert executor.requests[execution.id].env.get("PAD") == PAD
