"""Both ends of NCL over a real nats-server: handshake, work offered and reported, heartbeats, logs.

The orchestrator and compute *services* here are small recorders standing in for the real ones (the
transport is the unit under test); everything between them is real: two NATS connections, the NCL
frames, the persistent outboxes on disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats_env import ConnectionFactory, ServerFactory, wait_until

from bacalhau.models.execution import Execution, ExecutionLog
from bacalhau.models.job import Job
from bacalhau.models.node import NodeInfo
from bacalhau.models.state import ExecutionStateType
from bacalhau.transport import messages as m
from bacalhau.transport.backoff import Backoff
from bacalhau.transport.ncl import control, orchestrator_link
from bacalhau.transport.ncl.compute_link import LinkStatus, NclComputeLink
from bacalhau.transport.ncl.orchestrator_link import NclOrchestratorLink
from bacalhau.transport.outbox import Outbox
from serve_node import find_free_port

MAX = 16 * 1024 * 1024


class RecordingOrchestrator:
    """An OrchestratorService that records calls and answers as told."""

    def __init__(self) -> None:
        self.handshakes: list[m.Handshake] = []
        self.beats: list[m.Heartbeat] = []
        self.results: list[Any] = []
        self.accept = True
        self.alive = True
        self.cancel_ids: list[str] = []
        self.shutdowns: list[str] = []

    async def handshake(self, request: m.Handshake) -> m.HandshakeOutcome:
        self.handshakes.append(request)
        if not self.accept:
            return m.HandshakeOutcome(accepted=False, reason="node has been rejected")
        self.alive = True
        return m.HandshakeOutcome(accepted=True, cancel_execution_ids=list(self.cancel_ids))

    async def heartbeat(self, request: m.Heartbeat) -> bool:
        self.beats.append(request)
        return self.alive

    async def update_node_info(self, request: m.NodeInfoUpdate) -> None:
        return None

    async def shutdown_notice(self, request: m.ShutdownNotice) -> None:
        self.shutdowns.append(request.node_id)

    async def on_bid_result(self, message: m.BidResult) -> None:
        self.results.append(message)

    async def on_execution_progress(self, message: m.ExecutionProgress) -> None:
        self.results.append(message)

    async def on_run_result(self, message: m.RunResult) -> None:
        self.results.append(message)

    async def on_compute_error(self, message: m.ComputeError) -> None:
        self.results.append(message)


class RecordingCompute:
    """A ComputeService that takes every offer and records cancels."""

    def __init__(self) -> None:
        self.offers: list[str] = []
        self.cancels: list[str] = []
        self.accepted: list[str] = []
        self.link: NclComputeLink | None = None

    async def ask_for_bid(self, request: m.AskForBid) -> None:
        self.offers.append(request.execution.id)
        assert self.link is not None
        await self.link.on_bid_result(m.BidResult(execution_id=request.execution.id, job_id=request.execution.job_id,
                                                  accepted=True))

    async def accept_bid(self, request: m.BidAccepted) -> None:
        self.accepted.append(request.execution_id)

    async def cancel_execution(self, request: m.CancelExecution) -> None:
        self.cancels.append(request.execution_id)

    async def stream_logs(self, request: m.LogStreamRequest) -> AsyncIterator[ExecutionLog]:
        for i in range(3):
            yield ExecutionLog(Type=1, Line=f"line {i} of {request.execution_id}\n")


def execution(execution_id: str, node_id: str = "n-1") -> Execution:
    job = Job.from_user({"ID": "j-1", "Name": "j", "Type": "batch", "Tasks": [{"Name": "t", "Engine": {"Type": "noop"}}]})
    return Execution(ID=execution_id, NodeID=node_id, JobID="j-1", Job=job)


@pytest.fixture
def outboxes(tmp_path: Path) -> dict[str, Outbox]:
    boxes = {name: Outbox(path=tmp_path / f"{name}.db") for name in ("orchestrator", "compute")}
    for box in boxes.values():
        box.open()
    return boxes


async def make_pair(
    server_url: str, nats_connections: ConnectionFactory, outboxes: dict[str, Outbox], **link_args: Any
) -> tuple[NclOrchestratorLink, RecordingOrchestrator, NclComputeLink, RecordingCompute]:
    service = RecordingOrchestrator()
    orchestrator_nc = await nats_connections(server_url, name="orchestrator").connect()
    orchestrator = NclOrchestratorLink(nc=orchestrator_nc, orchestrator_id="orch",
                                       outbox=outboxes["orchestrator"], max_message_bytes=MAX, ack_timeout_s=2)
    await orchestrator.start(service)
    compute_service = RecordingCompute()
    link = NclComputeLink(connection=nats_connections(server_url, name="n-1"), node_id="n-1",
                          outbox=outboxes["compute"], max_message_bytes=MAX,
                          reconnect_backoff=Backoff(base_s=0.05, max_s=0.2), ack_timeout_s=2, **link_args)
    compute_service.link = link
    link.attach(compute_service, node_info=lambda: NodeInfo(NodeID="n-1", NodeType="Compute"),
                active_executions=lambda: ["e-held"], job_type=lambda _: "batch")
    return orchestrator, service, link, compute_service


async def connected_pair(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory, outboxes: dict[str, Outbox]
) -> tuple[NclOrchestratorLink, RecordingOrchestrator, NclComputeLink, RecordingCompute]:
    """make_pair on a fresh nats-server, with the compute link started and connected."""
    server = await nats_servers()
    pair = await make_pair(server.client_url, nats_connections, outboxes)
    await pair[2].start()
    await asyncio.wait_for(pair[2].connected.wait(), 10)
    return pair


async def test_handshake_then_an_offer_reaches_the_node_and_its_bid_comes_back(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory, outboxes: dict[str, Outbox]
) -> None:
    orchestrator, service, link, compute = await connected_pair(nats_servers, nats_connections, outboxes)
    assert service.handshakes[0].node_info.node_id == "n-1"
    assert service.handshakes[0].active_execution_ids == ["e-held"]
    remote = orchestrator.compute("n-1")
    assert remote is not None
    await remote.ask_for_bid(m.AskForBid(execution=execution("e-1")))
    await wait_until(lambda: len(service.results) == 1, what="bid result back at the orchestrator")
    assert compute.offers == ["e-1"]
    bid = service.results[0]
    assert isinstance(bid, m.BidResult) and bid.accepted and bid.execution_id == "e-1"
    await link.stop()
    assert service.shutdowns == ["n-1"]
    await orchestrator.stop()


async def test_a_compute_started_before_its_orchestrator_joins_once_it_is_up(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory, outboxes: dict[str, Outbox], tmp_path: Path
) -> None:
    port = find_free_port()
    server = await nats_servers(start=False, port=port)
    url = f"nats://127.0.0.1:{port}"
    compute_service = RecordingCompute()
    link = NclComputeLink(connection=nats_connections(url, name="n-1", reconnect_wait_s=0.1), node_id="n-1",
                          outbox=outboxes["compute"], max_message_bytes=MAX,
                          reconnect_backoff=Backoff(base_s=0.05, max_s=0.2))
    compute_service.link = link
    link.attach(compute_service, node_info=lambda: NodeInfo(NodeID="n-1", NodeType="Compute"),
                active_executions=list, job_type=lambda _: "")
    await link.start()
    # Reported while nobody is there: kept in the outbox.
    await link.on_run_result(m.RunResult(execution_id="e-0", job_id="j-1"))
    await server.start()
    service = RecordingOrchestrator()
    nc = await nats_connections(url, name="orchestrator").connect()
    orchestrator = NclOrchestratorLink(nc=nc, orchestrator_id="orch",
                                       outbox=outboxes["orchestrator"], max_message_bytes=MAX)
    await orchestrator.start(service)
    await asyncio.wait_for(link.connected.wait(), 20)
    await wait_until(lambda: any(isinstance(r, m.RunResult) for r in service.results), what="replayed result")
    # The handshake listed the execution whose result was still on its way, so reconciliation could
    # not mistake it for one the node lost before the result arrived.
    assert service.handshakes[0].active_execution_ids == ["e-0"]
    await link.stop()
    await orchestrator.stop()


async def test_a_rejected_node_keeps_trying_and_says_why(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory, outboxes: dict[str, Outbox]
) -> None:
    server = await nats_servers()
    orchestrator, service, link, _ = await make_pair(server.client_url, nats_connections, outboxes)
    service.accept = False
    await link.start()
    await wait_until(lambda: len(service.handshakes) >= 3, what="repeated handshakes")
    assert link.status is LinkStatus.DISCONNECTED
    assert link.last_error == "handshake rejected by orchestrator due to node has been rejected"
    service.accept = True
    await asyncio.wait_for(link.connected.wait(), 10)
    await link.stop()
    await orchestrator.stop()


async def test_handshake_required_on_a_heartbeat_makes_the_node_handshake_again(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory, outboxes: dict[str, Outbox]
) -> None:
    server = await nats_servers()
    orchestrator, service, link, _ = await make_pair(
        server.client_url, nats_connections, outboxes, heartbeat_interval_s=0.1
    )
    await link.start()
    await asyncio.wait_for(link.connected.wait(), 10)
    await wait_until(lambda: len(service.beats) >= 2, what="heartbeats")
    service.alive = False  # e.g. the orchestrator marked it disconnected, or restarted
    await wait_until(lambda: len(service.handshakes) >= 2, what="a second handshake")
    await wait_until(lambda: link.status is LinkStatus.CONNECTED, what="connected again")
    await link.stop()
    await orchestrator.stop()


async def test_reconciliation_cancels_what_the_orchestrator_no_longer_wants(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory, outboxes: dict[str, Outbox]
) -> None:
    server = await nats_servers()
    orchestrator, service, link, compute = await make_pair(server.client_url, nats_connections, outboxes)
    service.cancel_ids = ["e-held"]
    await link.start()
    await wait_until(lambda: compute.cancels == ["e-held"], what="cancel after handshake")
    await link.stop()
    await orchestrator.stop()


async def test_logs_stream_from_the_node_through_nats(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory, outboxes: dict[str, Outbox]
) -> None:
    orchestrator, _, link, _ = await connected_pair(nats_servers, nats_connections, outboxes)
    remote = orchestrator.compute("n-1")
    assert remote is not None
    lines = [log.line async for log in remote.stream_logs(m.LogStreamRequest(execution_id="e-7"))]
    assert lines == [f"line {i} of e-7\n" for i in range(3)]
    await link.stop()
    await orchestrator.stop()


async def test_a_go_style_pending_bid_is_accepted_through_bid_accepted(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory, outboxes: dict[str, Outbox]
) -> None:
    orchestrator, _, link, compute = await connected_pair(nats_servers, nats_connections, outboxes)
    remote = orchestrator.compute("n-1")
    assert remote is not None
    await remote.accept_bid(m.BidAccepted(execution_id="e-5"))
    await wait_until(lambda: compute.accepted == ["e-5"], what="BidAccepted delivered")
    await link.stop()
    await orchestrator.stop()


def final_with_steps(execution_id: str) -> m.RunResult:
    return m.RunResult(execution_id=execution_id, job_id="j-1", steps=[
        m.ExecutionStep(state=ExecutionStateType.BidAccepted, message="Bid accepted", time_ns=1),
        m.ExecutionStep(state=ExecutionStateType.Running, message="Running", time_ns=2),
    ])


async def test_an_orchestrator_that_takes_steps_gets_them_in_the_final_report(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory, outboxes: dict[str, Outbox]
) -> None:
    orchestrator, service, link, _ = await connected_pair(nats_servers, nats_connections, outboxes)
    assert link.accepts_steps

    await link.on_run_result(final_with_steps("e-1"))

    await wait_until(lambda: len(service.results) == 1, what="the result at the orchestrator")
    result = service.results[0]
    assert isinstance(result, m.RunResult)
    assert [s.state for s in result.steps] == [ExecutionStateType.BidAccepted, ExecutionStateType.Running]
    await link.stop()
    await orchestrator.stop()


async def test_steps_go_out_as_reports_of_their_own_to_an_orchestrator_without_them(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory, outboxes: dict[str, Outbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An orchestrator that does not announce `steps`, as a Go one (which announces no extension at all;
    # this one keeps `progress`, so Running is sent too).
    monkeypatch.setattr(orchestrator_link, "EXTENSIONS", [control.EXTENSION_RECONCILE, control.EXTENSION_PROGRESS])
    orchestrator, service, link, _ = await connected_pair(nats_servers, nats_connections, outboxes)
    assert not link.accepts_steps

    await link.on_run_result(final_with_steps("e-1"))

    await wait_until(lambda: len(service.results) == 3, what="three reports at the orchestrator")
    kinds = [(type(r).__name__, getattr(r, "state", None)) for r in service.results]
    assert kinds == [("BidResult", None), ("ExecutionProgress", ExecutionStateType.Running), ("RunResult", None)]
    assert service.results[2].steps == []
    await link.stop()
    await orchestrator.stop()
