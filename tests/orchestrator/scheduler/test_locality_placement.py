"""Placement by data locality: the scheduler looks at the nodes holding a job's input first, whatever its
bounded sample, ranks them by the bytes they hold after a free slot, and says so in the execution's
history note. Also the NodeManager feeding the HoldingsIndex from node info."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from tests.orchestrator.scheduler.harness import NOW, SECOND, make_execution, make_job, make_node

from bacalhau.locality.held import NO_HOLDINGS, JobHoldings
from bacalhau.locality.index import HoldingsIndex, job_input_keys
from bacalhau.locality.keys import url_key
from bacalhau.models.data_holdings import DataHoldings, HeldData
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import Execution
from bacalhau.models.job import InputSource, Job, LabelSelectorRequirement, SpecConfig
from bacalhau.models.node import NodeState
from bacalhau.models.resources import Resources
from bacalhau.models.state import ExecutionStateType, JobStateType
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.scheduler.partitioned import CANDIDATES_PER_EVALUATION
from bacalhau.orchestrator.scheduler.placement import feasible
from bacalhau.orchestrator.scheduler.plan import Plan, Snapshot
from bacalhau.orchestrator.scheduler.schedule import schedule
from factories import make_node_info

URL = "https://data.example.com/big.parquet"
SIZE = 3_100_000_000
HOLDS = "holds 3.1 GB of 3.1 GB of inputs"
FLEET = 1000
HOLDER = "n-7"


def data_job(job_id: str = "j-1", *, count: int = 1, state: JobStateType = JobStateType.Pending,
             url: str = URL) -> Job:
    job = make_job(count=count, state=state)
    job.id = job_id
    job.task.input_sources = [
        InputSource(Source=SpecConfig(Type="urlDownload", Params={"URL": url}), Target="/inputs/data")
    ]
    return job


def node(node_id: str) -> NodeState:
    made = make_node(node_id)
    assert made.info.compute_node_info is not None
    made.info.compute_node_info.storage_sources.append("urlDownload")
    return made


def fleet(size: int = FLEET) -> list[NodeState]:
    """Nodes n-0 .. n-<size-1>, alike, in ID order (the manager's order)."""
    return sorted((node(f"n-{i}") for i in range(size)), key=lambda n: n.info.node_id)


def holdings_of(job: Job, *holders: str, size: int = SIZE) -> JobHoldings:
    """What a real index reports for `job` when `holders` reported holding its input."""
    index = HoldingsIndex()
    for holder in holders:
        index.report(holder, DataHoldings(Keeps=["url"], Entries=[HeldData(Key=url_key(URL), Bytes=size)]))
    return index.for_job(job)


def snapshot(job: Job, nodes: Sequence[NodeState], holdings: JobHoldings = NO_HOLDINGS,
             executions: Sequence[Execution] = ()) -> Snapshot:
    return Snapshot(job=job, executions=tuple(executions), nodes=tuple(nodes), now_ns=NOW,
                    queue_backoff_ns=5 * SECOND, holdings=holdings)


def run(job: Job, nodes: Sequence[NodeState], holdings: JobHoldings = NO_HOLDINGS,
        executions: Sequence[Execution] = ()) -> Plan:
    return schedule(Evaluation(ID="ev", JobID=job.id), snapshot(job, nodes, holdings, executions))


def sample(job: Job, nodes: Sequence[NodeState]) -> set[str]:
    """The nodes a placement looks at when nobody holds the job's data."""
    found, _ = feasible(snapshot(job, nodes), exclude=set(), refused={}, enough=CANDIDATES_PER_EVALUATION)
    return {n.info.node_id for n in found}


@pytest.fixture(scope="module")
def thousand() -> list[NodeState]:
    return fleet()


@pytest.fixture(scope="module")
def jobs_missing_the_holder(thousand: list[NodeState]) -> list[Job]:
    """Job IDs whose bounded sample does not include the holder."""
    found = [job for job in (data_job(f"j-{k}") for k in range(40)) if HOLDER not in sample(job, thousand)]
    assert len(found) >= 5
    return found[:5]


# ---- the scheduler -----------------------------------------------------------------------------------


def test_a_job_goes_to_the_node_holding_its_input_though_its_sample_misses_it(
    thousand: list[NodeState], jobs_missing_the_holder: list[Job]
) -> None:
    assert len(thousand) > CANDIDATES_PER_EVALUATION
    for job in jobs_missing_the_holder:
        without = run(job, thousand)
        [elsewhere] = without.new_executions
        assert elsewhere.node_id != HOLDER and elsewhere.node_id in sample(job, thousand)
        assert without.notes == {}

        plan = run(job, thousand, holdings_of(job, HOLDER))

        [execution] = plan.new_executions
        assert execution.node_id == HOLDER, job.id
        assert plan.notes == {execution.id: HOLDS}


def test_the_note_is_the_holders_share_of_the_inputs(thousand: list[NodeState]) -> None:
    job = data_job()
    job.task.input_sources.append(
        InputSource(Source=SpecConfig(Type="urlDownload", Params={"URL": "https://data.example.com/b"}), Target="/b")
    )
    index = HoldingsIndex()
    index.report(HOLDER, DataHoldings(Entries=[HeldData(Key=url_key(URL), Bytes=SIZE)]))
    index.report("n-500", DataHoldings(Entries=[HeldData(Key=url_key("https://data.example.com/b"), Bytes=10**8)]))

    plan = run(job, thousand, index.for_job(job))

    [execution] = plan.new_executions
    assert execution.node_id == HOLDER
    assert plan.notes[execution.id] == "holds 3.1 GB of 3.2 GB of inputs"


@pytest.mark.parametrize("misfit", ["engine", "constraint", "backlog", "cordoned"])
def test_a_holder_that_cannot_take_the_job_now_is_not_chosen(misfit: str) -> None:
    nodes = fleet()
    job = data_job("j-3")
    holder = next(n for n in nodes if n.info.node_id == HOLDER)
    info = holder.info.compute_node_info
    assert info is not None
    cordoned: dict[str, int | None] = {}
    if misfit == "engine":
        info.execution_engines = ["docker"]
    elif misfit == "constraint":
        for n in nodes:
            n.info.labels["zone"] = "us" if n is holder else "eu"
        job.constraints = [LabelSelectorRequirement(Key="zone", Operator="=", Values=["eu"])]
    elif misfit == "backlog":
        info.enqueued_executions = 2
        info.queue_capacity = Resources(CPU=1.0)
    else:
        cordoned[HOLDER] = None
    snap = Snapshot(job=job, executions=(), nodes=tuple(nodes), now_ns=NOW, cordoned=cordoned,
                    holdings=holdings_of(job, HOLDER))

    plan = schedule(Evaluation(ID="ev", JobID=job.id), snap)

    [execution] = plan.new_executions
    assert execution.node_id != HOLDER
    assert plan.notes == {}


def test_a_backlogged_holder_still_takes_the_job_when_every_node_is_backlogged() -> None:
    nodes = fleet(20)
    for n in nodes:
        assert n.info.compute_node_info is not None
        n.info.compute_node_info.enqueued_executions = 1
    job = data_job()
    plan = run(job, nodes, holdings_of(job, HOLDER))
    [execution] = plan.new_executions
    assert execution.node_id == HOLDER and plan.notes == {execution.id: HOLDS}


def test_with_two_partitions_the_holder_takes_one_and_another_node_the_other(
    thousand: list[NodeState], jobs_missing_the_holder: list[Job]
) -> None:
    job = jobs_missing_the_holder[0].model_copy(deep=True)
    job.count = 2

    plan = run(job, thousand, holdings_of(job, HOLDER))

    by_node = {e.node_id: e for e in plan.new_executions}
    assert len(by_node) == 2 and HOLDER in by_node
    assert {e.partition_index for e in plan.new_executions} == {0, 1}
    other = next(e for node_id, e in by_node.items() if node_id != HOLDER)
    assert plan.notes == {by_node[HOLDER].id: HOLDS}
    assert other.id not in plan.notes


def test_two_holders_take_both_partitions_the_bigger_holding_first(thousand: list[NodeState]) -> None:
    job = data_job(count=2)
    index = HoldingsIndex()
    index.report("n-900", DataHoldings(Entries=[HeldData(Key=url_key(URL), Bytes=SIZE)]))
    index.report("n-42", DataHoldings(Entries=[HeldData(Key=url_key(URL), Bytes=SIZE // 2)]))

    plan = run(job, thousand, index.for_job(job))

    assert {e.partition_index: e.node_id for e in plan.new_executions} == {0: "n-900", 1: "n-42"}
    assert sorted(plan.notes.values()) == ["holds 1.6 GB of 3.1 GB of inputs", HOLDS]


def test_a_retry_on_the_holder_says_both_why_and_what_it_holds(thousand: list[NodeState]) -> None:
    job = data_job(state=JobStateType.Running)
    failed = make_execution(job, "n-3", ExecutionStateType.Failed, retryable=True, message="network blip")

    plan = run(job, thousand, holdings_of(job, HOLDER), [failed])

    [again] = plan.new_executions
    assert again.node_id == HOLDER and again.previous_execution == failed.id
    note = plan.notes[again.id]
    assert note.startswith("retry 2 of 3 of partition 0 after "), note
    assert "network blip" in note
    assert note.endswith(f"; {HOLDS}"), note


def test_a_burst_goes_where_the_first_job_of_it_was_placed(thousand: list[NodeState]) -> None:
    """The worker's expect(): the first job's node holds the input once staged, before it reports so."""
    index = HoldingsIndex()
    for n in thousand:
        index.report(n.info.node_id, DataHoldings(Keeps=["url"]))
    first = data_job("j-first")
    [placed] = run(first, thousand, index.for_job(first)).new_executions
    index.expect(placed.node_id, job_input_keys(first))

    for k in range(5):
        job = data_job(f"j-burst-{k}")
        plan = run(job, thousand, index.for_job(job))
        [execution] = plan.new_executions
        assert execution.node_id == placed.node_id
        assert plan.notes[execution.id] == "holds 1 of 1 input(s)"


def test_many_holders_do_not_pin_placements_to_the_same_backlogged_few() -> None:
    nodes = fleet()
    holders = [f"n-{i}" for i in range(100, 130)]  # 30 holders
    backlogged = sorted(holders)[:CANDIDATES_PER_EVALUATION]
    for n in nodes:
        if n.info.node_id in backlogged:
            assert n.info.compute_node_info is not None
            n.info.compute_node_info.enqueued_executions = 3
    job = data_job()

    plan = run(job, nodes, holdings_of(job, *holders))

    [execution] = plan.new_executions
    assert execution.node_id not in backlogged


# ---- NodeManager feeds the index ---------------------------------------------------------------------


def test_a_handshake_reports_what_the_node_holds(nodes: NodeManager) -> None:
    job = data_job()
    info = make_node_info(node_id="n-a")
    assert info.compute_node_info is not None
    info.compute_node_info.data_holdings = DataHoldings(Keeps=["url"], Entries=[HeldData(Key=url_key(URL), Bytes=SIZE)])
    assert nodes.handshake(info).accepted

    found = nodes.holdings.for_job(job)

    assert found.describe("n-a") == HOLDS
    # The manager keeps a copy: what the sender changes afterwards is not what the node reported.
    info.compute_node_info.data_holdings.entries.clear()
    assert nodes.holdings.for_job(job).describe("n-a") == HOLDS
    # Its Keeps came with it: an input it was just given counts as held.
    other = data_job("j-2", url="https://data.example.com/other")
    nodes.holdings.expect("n-a", job_input_keys(other))
    assert nodes.holdings.for_job(other).describe("n-a") == "holds 1 of 1 input(s)"


def test_a_node_info_update_replaces_what_the_node_holds(nodes: NodeManager) -> None:
    job = data_job()
    info = make_node_info(node_id="n-a")
    assert info.compute_node_info is not None
    info.compute_node_info.data_holdings = DataHoldings(Entries=[HeldData(Key=url_key(URL), Bytes=SIZE)])
    assert nodes.handshake(info).accepted

    moved = info.model_copy(deep=True)
    assert moved.compute_node_info is not None
    other = "https://data.example.com/other"
    moved.compute_node_info.data_holdings = DataHoldings(Entries=[HeldData(Key=url_key(other), Bytes=10)])
    nodes.update_info(moved)

    assert nodes.holdings.for_job(job).by_node == {}
    assert nodes.holdings.for_job(data_job("j-2", url=other)).describe("n-a") == "holds 10 B of 10 B of inputs"

    silent = moved.model_copy(deep=True)
    assert silent.compute_node_info is not None
    silent.compute_node_info.data_holdings = None  # a node that reports nothing (a Go node)
    nodes.update_info(silent)
    assert nodes.holdings.entries() == 0


def test_an_update_from_an_unknown_node_reports_nothing(nodes: NodeManager) -> None:
    info = make_node_info(node_id="n-unknown")
    assert info.compute_node_info is not None
    info.compute_node_info.data_holdings = DataHoldings(Entries=[HeldData(Key=url_key(URL), Bytes=SIZE)])
    nodes.update_info(info)
    assert nodes.holdings.for_job(data_job()).by_node == {}


def test_deleting_a_node_forgets_what_it_holds(nodes: NodeManager) -> None:
    for node_id in ("n-a", "n-b"):
        info = make_node_info(node_id=node_id)
        assert info.compute_node_info is not None
        info.compute_node_info.data_holdings = DataHoldings(
            Keeps=["url"], Entries=[HeldData(Key=url_key(URL), Bytes=SIZE)]
        )
        assert nodes.handshake(info).accepted
    job = data_job()
    assert set(nodes.holdings.for_job(job).by_node) == {"n-a", "n-b"}

    nodes.delete("n-a")

    assert set(nodes.holdings.for_job(job).by_node) == {"n-b"}
    nodes.holdings.expect("n-a", job_input_keys(data_job("j-2", url="https://data.example.com/x")))
    assert nodes.holdings.entries() == 1  # its Keeps are gone too: nothing expected of it
