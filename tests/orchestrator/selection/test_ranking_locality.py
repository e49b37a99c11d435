"""rank_nodes with the job's data holdings: a free slot first, then the bytes held, then the inputs held,
then the previous keys (fewest queued, most free CPU, most free memory, a per-job hash)."""

from __future__ import annotations

from tests.orchestrator.scheduler.harness import make_node

from bacalhau.locality.held import Held
from bacalhau.models.node import NodeState
from bacalhau.models.resources import Resources
from bacalhau.orchestrator.selection.ranking import rank_nodes

GB = 1000**3


def node(node_id: str, *, free_cpu: float = 4.0, free_memory: int = 8 * GB, enqueued: int = 0,
         queued: Resources | None = None) -> NodeState:
    made = make_node(node_id, cpu=8.0, memory=16 * GB)
    info = made.info.compute_node_info
    assert info is not None
    info.available_capacity = Resources(CPU=free_cpu, Memory=free_memory, Disk=10**11)
    info.enqueued_executions = enqueued
    info.queue_capacity = queued or Resources()
    return made


def order(nodes: list[NodeState], held: dict[str, Held] | None = None, spread: str = "j-1/1") -> list[str]:
    return [n.info.node_id for n in rank_nodes(nodes, spread=spread, held=held)]


def test_a_node_holding_the_data_beats_an_idler_one() -> None:
    nodes = [node("n-idle", free_cpu=8.0, free_memory=16 * GB), node("n-holder", free_cpu=0.5, free_memory=GB)]
    assert order(nodes) == ["n-idle", "n-holder"]
    assert order(nodes, {"n-holder": Held(inputs=1, size=3 * GB)}) == ["n-holder", "n-idle"]


def test_more_bytes_held_beats_more_inputs_held_and_fewer_queued() -> None:
    nodes = [node("n-small", free_cpu=8.0), node("n-big", free_cpu=1.0), node("n-none", free_cpu=8.0)]
    held = {"n-small": Held(inputs=3, size=100), "n-big": Held(inputs=1, size=GB)}
    assert order(nodes, held) == ["n-big", "n-small", "n-none"]


def test_among_inputs_of_unknown_size_the_node_holding_more_of_them_comes_first() -> None:
    nodes = [node("n-one", free_cpu=8.0), node("n-two", free_cpu=1.0), node("n-none", free_cpu=8.0)]
    held = {"n-one": Held(inputs=1, size=0), "n-two": Held(inputs=2, size=0)}
    assert order(nodes, held) == ["n-two", "n-one", "n-none"]


def test_a_holder_with_work_queued_comes_after_a_free_node_that_holds_nothing() -> None:
    held = {"n-holder": Held(inputs=1, size=5 * GB)}
    enqueued = [node("n-holder", enqueued=1), node("n-free", free_cpu=0.5)]
    assert order(enqueued, held) == ["n-free", "n-holder"]
    # The queue as heartbeats report it (QueueUsedCapacity), with no execution count yet.
    queued = [node("n-holder", queued=Resources(CPU=0.5)), node("n-free", free_cpu=0.5)]
    assert order(queued, held) == ["n-free", "n-holder"]
    queued_memory = [node("n-holder", queued=Resources(Memory=1)), node("n-free", free_cpu=0.5)]
    assert order(queued_memory, held) == ["n-free", "n-holder"]


def test_among_backlogged_nodes_the_data_still_comes_before_the_queue_length() -> None:
    nodes = [node("n-short", enqueued=1), node("n-holder", enqueued=3), node("n-free")]
    assert order(nodes, {"n-holder": Held(inputs=1, size=GB)}) == ["n-free", "n-holder", "n-short"]
    assert order(nodes) == ["n-free", "n-short", "n-holder"]


def test_without_holdings_the_order_is_fewest_queued_then_most_free_cpu_then_memory() -> None:
    nodes = [
        node("n-queued-2", enqueued=2, free_cpu=8.0),
        node("n-queued-1", enqueued=1, free_cpu=0.1),
        node("n-cpu-1", free_cpu=1.0, free_memory=16 * GB),
        node("n-cpu-3", free_cpu=3.0, free_memory=GB),
        node("n-cpu-3-more-memory", free_cpu=3.0, free_memory=2 * GB),
    ]
    expected = ["n-cpu-3-more-memory", "n-cpu-3", "n-cpu-1", "n-queued-1", "n-queued-2"]
    assert order(nodes) == expected
    assert order(nodes, {}) == expected
    # Holdings of nodes not ranked, or of nothing, change nothing.
    assert order(nodes, {"n-elsewhere": Held(1, GB), "n-cpu-1": Held(0, 0)}) == expected
    assert order(list(reversed(nodes))) == expected


def test_equal_holders_are_spread_by_job() -> None:
    nodes = [node(f"n-{i}") for i in range(8)]
    held = {n.info.node_id: Held(1, GB) for n in nodes}
    firsts = {order(nodes, held, spread=f"j-{k}/1")[0] for k in range(40)}
    assert len(firsts) > 1
    # One job always ranks the same way.
    assert order(nodes, held, spread="j-5/1") == order(list(reversed(nodes)), held, spread="j-5/1")


def test_a_node_without_compute_info_is_last_whatever_it_holds() -> None:
    bare = node("n-bare")
    bare.info.compute_node_info = None
    nodes = [bare, node("n-busy", enqueued=5)]
    assert order(nodes, {"n-bare": Held(1, 10 * GB)}) == ["n-busy", "n-bare"]
