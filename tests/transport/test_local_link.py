"""LocalLink: a hybrid node's compute and orchestrator linked in process, with NCL's guarantees kept.

The link is the unit under test: the orchestrator and compute services here are small recorders written
for these tests (the real orchestrator and compute node behind a LocalLink are exercised by the scenario
tests, through `bacalhau serve`). What lies between them is real: the compute's persistent outbox is a
SQLite file under tmp_path, and what waits in it is stored and replayed from there. Both recorders write
to one timeline, so a test can tell what happened before what across the two sides.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats_env import wait_until

from bacalhau.models.execution import ExecutionLog, RunCommandResult
from bacalhau.models.state import ExecutionStateType
from bacalhau.transport import messages as m
from bacalhau.transport.backoff import Backoff
from bacalhau.transport.base import ComputeService
from bacalhau.transport.local_link import LocalLink, reframe_local_reports
from bacalhau.transport.ncl import convert, data, dispatch
from bacalhau.transport.ncl.compute_link import ORCHESTRATOR_STREAM, LinkStatus
from bacalhau.transport.ncl.dispatch import Report
from bacalhau.transport.ncl.registry import decode_message, type_name
from bacalhau.transport.outbox import Outbox
from factories import make_execution, make_job, make_node_info

NODE = "n-local"
MAX = 1024 * 1024
WAIT_S = 5.0


class RecordingOrchestrator:
    """An OrchestratorService that records every call and answers as told; `report_gate` holds reports."""

    def __init__(self, timeline: list[str]) -> None:
        self.timeline = timeline
        self.handshakes: list[m.Handshake] = []
        self.beats: list[m.Heartbeat] = []
        self.info_updates: list[m.NodeInfoUpdate] = []
        self.notices: list[m.ShutdownNotice] = []
        self.reports: list[Report] = []
        self.receiving: list[str] = []  # reports handed over, delivered or still held by the gate
        self.accept = True
        self.alive = True
        self.accepts_steps = True  # as ours: the link says so to its compute node
        self.cancel_ids: list[str] = []
        self.report_gate: asyncio.Event | None = None
        self.handshake_errors: list[Exception] = []  # raised, one per call, before answering
        self.heartbeat_errors: list[Exception] = []

    async def handshake(self, request: m.Handshake) -> m.HandshakeOutcome:
        self.handshakes.append(request)
        if self.handshake_errors:
            raise self.handshake_errors.pop(0)
        if not self.accept:
            self.timeline.append("handshake refused")
            return m.HandshakeOutcome(accepted=False, reason="node has been rejected")
        self.timeline.append("handshake")
        self.alive = True
        return m.HandshakeOutcome(accepted=True, cancel_execution_ids=list(self.cancel_ids))

    async def heartbeat(self, request: m.Heartbeat) -> bool:
        if self.heartbeat_errors:
            raise self.heartbeat_errors.pop(0)
        self.beats.append(request)
        return self.alive

    async def update_node_info(self, request: m.NodeInfoUpdate) -> None:
        self.info_updates.append(request)

    async def shutdown_notice(self, request: m.ShutdownNotice) -> None:
        self.notices.append(request)
        self.timeline.append("drain" if request.draining else "shutdown")

    async def _report(self, message: Report) -> None:
        self.receiving.append(message.execution_id)
        if self.report_gate is not None:
            await self.report_gate.wait()
        self.reports.append(message)
        self.timeline.append(f"{type(message).__name__}:{message.execution_id}")

    async def on_bid_result(self, message: m.BidResult) -> None:
        await self._report(message)

    async def on_execution_progress(self, message: m.ExecutionProgress) -> None:
        await self._report(message)

    async def on_run_result(self, message: m.RunResult) -> None:
        await self._report(message)

    async def on_compute_error(self, message: m.ComputeError) -> None:
        await self._report(message)


class RecordingCompute:
    """A ComputeService that records the work it is given."""

    def __init__(self, timeline: list[str]) -> None:
        self.timeline = timeline
        self.cancels: list[m.CancelExecution] = []

    async def ask_for_bid(self, request: m.AskForBid) -> None:
        self.timeline.append(f"ask:{request.execution.id}")

    async def accept_bid(self, request: m.BidAccepted) -> None:
        self.timeline.append(f"accept:{request.execution_id}")

    async def cancel_execution(self, request: m.CancelExecution) -> None:
        self.cancels.append(request)
        self.timeline.append(f"cancel:{request.execution_id}")

    async def stream_logs(self, request: m.LogStreamRequest) -> AsyncIterator[ExecutionLog]:
        for i in range(2):
            yield ExecutionLog(Type=1, Line=f"line {i} of {request.execution_id}\n")


class RecordingDirectory:
    """The NCL side of the orchestrator's directory: one recording compute per other node."""

    def __init__(self) -> None:
        self.timeline: list[str] = []
        self.computes: dict[str, RecordingCompute] = {}
        self.left: list[str] = []
        self.forgotten: list[str] = []

    def compute(self, node_id: str) -> ComputeService | None:
        return self.computes.setdefault(node_id, RecordingCompute(self.timeline))

    def node_left(self, node_id: str) -> None:
        self.left.append(node_id)

    def forget(self, node_id: str) -> None:
        self.forgotten.append(node_id)


class Hybrid:
    """A hybrid node as node.py wires it: its compute's state, the recorders, links over its outbox files."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.timeline: list[str] = []
        self.orchestrator = RecordingOrchestrator(self.timeline)
        self.compute = RecordingCompute(self.timeline)
        self.remote = RecordingDirectory()
        self.active: list[str] = []
        self.info = make_node_info(node_id=NODE)
        self.links: list[LocalLink] = []
        self.outboxes: list[Outbox] = []

    def open_outbox(self, name: str) -> Outbox:
        box = Outbox(path=self.tmp_path / f"{name}.db")
        box.open()
        self.outboxes.append(box)
        return box

    def link(self, **overrides: Any) -> LocalLink:
        """A new link over new Outbox objects on the node's files: a second one is the node after a restart."""
        args: dict[str, Any] = {
            "node_id": NODE,
            "remote": self.remote,
            "max_message_bytes": MAX,
            "heartbeat_interval_s": 60.0,
            "info_update_interval_s": 60.0,
            "reconnect_backoff": Backoff(base_s=0.01, max_s=0.05),
        }
        args.update(overrides)
        link = LocalLink(**args)
        link.serve(self.orchestrator)
        link.attach(self.compute, outbox=self.open_outbox("compute"), node_info=lambda: self.info,
                    active_executions=lambda: list(self.active))
        self.links.append(link)
        return link

    def events(self, *prefixes: str) -> list[str]:
        """The timeline, restricted to the entries starting with one of `prefixes`."""
        return [entry for entry in self.timeline if entry.startswith(prefixes)]

    async def close(self) -> None:
        for link in self.links:
            await link.stop()
        for box in self.outboxes:
            box.close()


@pytest.fixture
async def hybrid(tmp_path: Path) -> AsyncIterator[Hybrid]:
    node = Hybrid(tmp_path)
    try:
        yield node
    finally:
        await node.close()


async def connected(link: LocalLink) -> LocalLink:
    await link.start()
    await asyncio.wait_for(link.connected.wait(), WAIT_S)
    return link


def own_compute(link: LocalLink) -> ComputeService:
    compute = link.compute(NODE)
    assert compute is not None
    return compute


def offer(execution_id: str) -> m.AskForBid:
    return m.AskForBid(execution=make_execution(make_job(), id=execution_id, node_id=NODE))


async def test_start_handshakes_with_the_node_info_and_every_execution_the_compute_holds(hybrid: Hybrid) -> None:
    """The orchestrator reconciles from the handshake: it must hear of the running executions and of those
    whose report still waits in the outbox (or it would fail them as lost before their news arrives)."""
    hybrid.active = ["e-running"]
    link = hybrid.link()
    await link.on_execution_progress(m.ExecutionProgress(execution_id="e-running", job_id="j-1"))
    await link.on_run_result(m.RunResult(execution_id="e-finished", job_id="j-1"))
    await connected(link)
    assert link.status is LinkStatus.CONNECTED and link.handshakes == 1
    handshake = hybrid.orchestrator.handshakes[0]
    assert handshake.node_info == hybrid.info
    assert handshake.active_execution_ids == ["e-running", "e-finished"]
    await wait_until(lambda: len(hybrid.orchestrator.reports) == 2, timeout_s=WAIT_S, what="the waiting reports")
    assert hybrid.timeline == ["handshake", "ExecutionProgress:e-running", "RunResult:e-finished"]


async def test_a_refused_handshake_is_retried_after_the_backoff_and_nothing_flows_until_accepted(
    hybrid: Hybrid,
) -> None:
    """A refused node keeps trying (an operator may approve it) and says why; its reports wait meanwhile."""
    hybrid.orchestrator.accept = False
    link = hybrid.link()
    await link.start()
    await link.on_bid_result(m.BidResult(execution_id="e-1", job_id="j-1", accepted=True))
    await wait_until(lambda: len(hybrid.orchestrator.handshakes) >= 3, timeout_s=WAIT_S, what="repeated handshakes")
    assert link.status is LinkStatus.DISCONNECTED and not link.connected.is_set()
    assert link.last_error == "handshake rejected by orchestrator due to node has been rejected"
    hybrid.orchestrator.accept = True
    await asyncio.wait_for(link.connected.wait(), WAIT_S)
    await wait_until(lambda: len(hybrid.orchestrator.reports) == 1, timeout_s=WAIT_S, what="the bid result")
    accepted_at = hybrid.timeline.index("handshake")
    assert set(hybrid.timeline[:accepted_at]) == {"handshake refused"}
    assert hybrid.timeline[accepted_at:] == ["handshake", "BidResult:e-1"]
    assert link.last_error == ""


async def test_reports_reach_the_orchestrator_in_the_order_they_were_made(hybrid: Hybrid) -> None:
    """A result overtaking its own progress report would move an execution backwards."""
    link = await connected(hybrid.link())
    await link.on_bid_result(m.BidResult(execution_id="e-1", job_id="j-1", accepted=True))
    await link.on_execution_progress(m.ExecutionProgress(execution_id="e-1", job_id="j-1",
                                                         state=ExecutionStateType.Running))
    await link.on_run_result(m.RunResult(execution_id="e-1", job_id="j-1"))
    await link.on_compute_error(m.ComputeError(execution_id="e-2", job_id="j-2", message="boom"))
    await wait_until(lambda: len(hybrid.orchestrator.reports) == 4, timeout_s=WAIT_S, what="four reports")
    assert hybrid.events("BidResult", "ExecutionProgress", "RunResult", "ComputeError") == [
        "BidResult:e-1", "ExecutionProgress:e-1", "RunResult:e-1", "ComputeError:e-2",
    ]
    progress, error = hybrid.orchestrator.reports[1], hybrid.orchestrator.reports[3]
    assert isinstance(progress, m.ExecutionProgress) and progress.state is ExecutionStateType.Running
    assert isinstance(error, m.ComputeError) and error.message == "boom" and error.job_id == "j-2"


async def test_work_for_the_own_node_reaches_its_compute_in_order_and_other_nodes_go_through_ncl(
    hybrid: Hybrid,
) -> None:
    """The orchestrator knows one directory: its own node answered in process, every other by the NCL link."""
    link = await connected(hybrid.link())
    own = own_compute(link)
    await own.ask_for_bid(offer("e-1"))
    await own.accept_bid(m.BidAccepted(execution_id="e-2"))
    await own.cancel_execution(m.CancelExecution(execution_id="e-3", reason="user asked"))
    await wait_until(lambda: len(hybrid.events("ask", "accept", "cancel")) == 3, timeout_s=WAIT_S, what="the work")
    assert hybrid.events("ask", "accept", "cancel") == ["ask:e-1", "accept:e-2", "cancel:e-3"]
    assert hybrid.compute.cancels[0].reason == "user asked"
    lines = [entry.line async for entry in own.stream_logs(m.LogStreamRequest(execution_id="e-1"))]
    assert lines == ["line 0 of e-1\n", "line 1 of e-1\n"]

    other = link.compute("n-other")
    assert other is not None and other is hybrid.remote.computes["n-other"]
    await other.ask_for_bid(offer("e-9"))
    assert hybrid.remote.timeline == ["ask:e-9"]
    assert "ask:e-9" not in hybrid.timeline


async def test_the_handshake_cancels_what_the_orchestrator_no_longer_wants(hybrid: Hybrid) -> None:
    """Reconciliation's answer becomes cancels on the compute, so an execution the orchestrator gave up
    on does not keep running on the node."""
    hybrid.active = ["e-unwanted", "e-kept"]
    hybrid.orchestrator.cancel_ids = ["e-unwanted"]
    await connected(hybrid.link())
    await wait_until(lambda: len(hybrid.compute.cancels) == 1, timeout_s=WAIT_S, what="the cancel")
    assert hybrid.timeline == ["handshake", "cancel:e-unwanted"]
    assert hybrid.compute.cancels[0].reason == "the orchestrator no longer wants this execution"


async def test_a_heartbeat_answered_false_makes_the_link_handshake_again(hybrid: Hybrid) -> None:
    """The orchestrator answers False when it no longer counts the node as connected (it restarted, or
    timed the node out): the link must register again, and then deliver again."""
    link = await connected(hybrid.link(heartbeat_interval_s=0.05))
    await wait_until(lambda: len(hybrid.orchestrator.beats) >= 1, timeout_s=WAIT_S, what="a heartbeat")
    beat = hybrid.orchestrator.beats[0]
    assert hybrid.info.compute_node_info is not None
    assert beat.node_id == NODE
    assert beat.available_capacity == hybrid.info.compute_node_info.available_capacity
    hybrid.orchestrator.alive = False
    await wait_until(lambda: len(hybrid.orchestrator.handshakes) >= 2 and link.status is LinkStatus.CONNECTED,
                     timeout_s=WAIT_S, what="a second handshake")
    assert link.handshakes >= 2
    await link.on_run_result(m.RunResult(execution_id="e-1", job_id="j-1"))
    await own_compute(link).ask_for_bid(offer("e-2"))
    await wait_until(lambda: "RunResult:e-1" in hybrid.timeline and "ask:e-2" in hybrid.timeline,
                     timeout_s=WAIT_S, what="delivery both ways after the new handshake")


async def test_node_left_holds_work_for_the_own_node_until_its_next_handshake(hybrid: Hybrid) -> None:
    """When the orchestrator gives its own node up, work for it waits in the outbox (as NCL stops its
    sender) and is delivered, once, after the node handshakes again."""
    link = await connected(hybrid.link(heartbeat_interval_s=0.05))
    own = own_compute(link)
    await own.ask_for_bid(offer("e-1"))
    await wait_until(lambda: "ask:e-1" in hybrid.timeline, timeout_s=WAIT_S, what="e-1 delivered")
    link.node_left(NODE)
    hybrid.orchestrator.alive = False  # as the orchestrator that gave the node up answers its heartbeats
    await own.ask_for_bid(offer("e-2"))
    await wait_until(lambda: "ask:e-2" in hybrid.timeline, timeout_s=WAIT_S, what="e-2 delivered")
    assert hybrid.events("handshake", "ask") == ["handshake", "ask:e-1", "handshake", "ask:e-2"]
    assert hybrid.remote.left == []


async def test_forgetting_the_own_node_drops_the_work_waiting_for_it(hybrid: Hybrid) -> None:
    """A deleted node comes back afresh: what was queued for it before must not reach it then."""
    link = hybrid.link()
    own = own_compute(link)
    await own.ask_for_bid(offer("e-stale"))
    link.forget(NODE)
    await connected(link)
    await own.ask_for_bid(offer("e-new"))
    await wait_until(lambda: "ask:e-new" in hybrid.timeline, timeout_s=WAIT_S, what="the new offer")
    assert hybrid.events("ask") == ["ask:e-new"]  # delivered in order: e-stale would have come first
    assert hybrid.remote.forgotten == []


async def test_node_left_and_forget_of_other_nodes_go_to_the_ncl_directory(hybrid: Hybrid) -> None:
    """The link stands in front of NCL for the orchestrator: what concerns another node must reach NCL."""
    link = hybrid.link()
    link.node_left("n-other")
    link.forget("n-gone")
    assert hybrid.remote.left == ["n-other"]
    assert hybrid.remote.forgotten == ["n-gone"]


async def test_stop_delivers_the_pending_reports_then_tells_the_orchestrator(hybrid: Hybrid) -> None:
    """A node's last reports (the executions it failed on its way out) must not be overtaken by its
    goodbye: the orchestrator would fail those executions as lost first."""
    link = await connected(hybrid.link())
    gate = asyncio.Event()
    hybrid.orchestrator.report_gate = gate
    await link.on_run_result(m.RunResult(execution_id="e-1", job_id="j-1"))
    await link.on_compute_error(m.ComputeError(execution_id="e-2", job_id="j-1", message="node stopping"))
    await wait_until(lambda: hybrid.orchestrator.receiving == ["e-1"], timeout_s=WAIT_S, what="e-1 handed over")
    stopping = asyncio.create_task(link.stop())
    await asyncio.sleep(0)  # one turn of the loop: the stop's first step, up to what it waits for
    assert hybrid.orchestrator.notices == [] and not stopping.done()
    gate.set()
    await asyncio.wait_for(stopping, WAIT_S)
    assert hybrid.timeline == ["handshake", "RunResult:e-1", "ComputeError:e-2", "shutdown"]
    assert hybrid.orchestrator.notices == [m.ShutdownNotice(node_id=NODE, reason="node stopping")]
    assert link.status is LinkStatus.STOPPED and not link.connected.is_set()


async def test_the_computes_own_calls_start_and_stop_the_link(hybrid: Hybrid) -> None:
    """The compute node talks to the link as to any OrchestratorService: its handshake starts the link,
    its shutdown notice stops it (with its reason passed on)."""
    link = hybrid.link()
    outcome = await link.handshake(m.Handshake(node_info=hybrid.info))
    assert outcome.accepted
    await asyncio.wait_for(link.connected.wait(), WAIT_S)
    assert await link.heartbeat(m.Heartbeat(node_id=NODE)) is True
    await link.shutdown_notice(m.ShutdownNotice(node_id=NODE, reason="operator asked"))
    assert link.status is LinkStatus.STOPPED
    assert [notice.reason for notice in hybrid.orchestrator.notices] == ["operator asked"]


async def test_reports_stored_before_a_crash_are_delivered_after_the_next_handshake_and_work_is_not(
    hybrid: Hybrid,
) -> None:
    """Reports survive the process: the next link over the same outbox file delivers them after its
    handshake, as sent by this node (the transport says who sent a report, whatever the report claims).
    Work does not: the compute died with the orchestrator, so the handshake after the restart lets the
    orchestrator find what the compute never got and place it again, which a stored offer would only
    duplicate."""
    before = hybrid.link()
    await before.on_run_result(m.RunResult(execution_id="e-1", job_id="j-1", node_id="n-spoofed"))
    await before.on_bid_result(m.BidResult(execution_id="e-2", job_id="j-2", accepted=False, reason="no capacity"))
    await own_compute(before).ask_for_bid(offer("e-3"))

    after = await connected(hybrid.link())
    await wait_until(lambda: len(hybrid.orchestrator.reports) == 2, timeout_s=WAIT_S,
                     what="what waited in the compute's outbox")
    assert hybrid.orchestrator.handshakes[0].active_execution_ids == ["e-1", "e-2"]
    assert hybrid.timeline[0] == "handshake"
    assert hybrid.events("RunResult", "BidResult") == ["RunResult:e-1", "BidResult:e-2"]
    result, bid = hybrid.orchestrator.reports
    assert isinstance(result, m.RunResult) and result.node_id == NODE == after.node_id
    assert isinstance(bid, m.BidResult) and bid.node_id == NODE
    assert not bid.accepted and bid.reason == "no capacity"
    await own_compute(after).ask_for_bid(offer("e-4"))
    await wait_until(lambda: "ask:e-4" in hybrid.timeline, timeout_s=WAIT_S, what="new work")
    assert "ask:e-3" not in hybrid.timeline


async def test_reports_left_as_ncl_frames_by_an_earlier_run_are_replayed_too(hybrid: Hybrid, tmp_path: Path) -> None:
    """A hybrid node that ran before this link existed left its reports as NCL frames in the same outbox
    stream: after an upgrade they still reach the orchestrator, after the handshake, and count as held."""
    box = Outbox(path=tmp_path / "compute.db")
    box.open()
    payload = dispatch.report_payload(m.RunResult(execution_id="e-old", job_id="j-old"), "batch")
    box.append(ORCHESTRATOR_STREAM, type_name(payload), dispatch.report_frame(payload, node_id=NODE, max_bytes=MAX))
    box.close()
    link = await connected(hybrid.link())
    await wait_until(lambda: len(hybrid.orchestrator.reports) == 1, timeout_s=WAIT_S, what="the NCL-era report")
    [report] = hybrid.orchestrator.reports
    assert isinstance(report, m.RunResult) and report.execution_id == "e-old" and report.node_id == link.node_id
    assert hybrid.orchestrator.handshakes[0].active_execution_ids == ["e-old"]


async def test_a_static_node_info_change_reaches_the_orchestrator_promptly(hybrid: Hybrid) -> None:
    """New labels change placements: they go at once, not with the next periodic check a minute later."""
    link = await connected(hybrid.link(heartbeat_interval_s=60.0, info_update_interval_s=60.0))
    hybrid.info = hybrid.info.model_copy(update={"labels": {"zone": "b"}})
    await link.update_node_info(m.NodeInfoUpdate(node_info=hybrid.info))
    await wait_until(lambda: len(hybrid.orchestrator.info_updates) == 1, timeout_s=WAIT_S, what="the node info")
    assert hybrid.orchestrator.info_updates[0].node_info.labels == {"zone": "b"}


async def test_announce_drain_tells_the_orchestrator_once_connected(hybrid: Hybrid) -> None:
    """A draining node gets no new work but keeps what it runs: the notice says draining, the link stays."""
    link = hybrid.link()
    assert await link.announce_drain() is False  # nobody to tell yet
    await connected(link)
    assert await link.announce_drain() is True
    assert hybrid.orchestrator.notices == [m.ShutdownNotice(node_id=NODE, reason="node draining", draining=True)]
    assert link.status is LinkStatus.CONNECTED



async def test_a_handshake_that_raises_unexpectedly_is_retried(hybrid: Hybrid) -> None:
    """A bug or a transient failure in the orchestrator's handshake must not cut the node off for good."""
    hybrid.orchestrator.handshake_errors.append(RuntimeError("unexpected"))
    link = hybrid.link()
    await link.start()
    await wait_until(link.connected.is_set, timeout_s=2.0, what="a handshake after the failed one")


async def test_a_heartbeat_that_raises_unexpectedly_does_not_stop_the_heartbeats(hybrid: Hybrid) -> None:
    """A node that stops beating is timed out by the orchestrator, and its link would never handshake again."""
    hybrid.orchestrator.heartbeat_errors.append(RuntimeError("unexpected"))
    link = await connected(hybrid.link(heartbeat_interval_s=0.05))
    await wait_until(lambda: len(hybrid.orchestrator.beats) >= 2, timeout_s=2.0,
                     what="heartbeats after the failed one")
    assert link.status is LinkStatus.CONNECTED


async def test_reports_this_link_left_are_reframed_for_an_ncl_link(hybrid: Hybrid) -> None:
    """A node that ran its compute in process, then (an upgrade to Compute.SeparateProcess) over NCL:
    what the local link stored and did not deliver becomes NCL frames, in place and in order, that the
    orchestrator's receiver decodes and the handshake counts as held; an NCL frame is left as it is."""
    box = hybrid.open_outbox("compute")
    payload = dispatch.report_payload(m.RunResult(execution_id="e-ncl", job_id="j-0"), "batch")
    box.append(ORCHESTRATOR_STREAM, type_name(payload), dispatch.report_frame(payload, node_id=NODE, max_bytes=MAX))
    before = hybrid.link()  # not started: its reports wait in the outbox, as after a kill -9
    await before.on_run_result(m.RunResult(execution_id="e-1", job_id="j-1",
                                           run_output=RunCommandResult(stdout="hi\n")))
    await before.on_bid_result(m.BidResult(execution_id="e-2", job_id="j-2", accepted=False, reason="no capacity"))
    assert [e.type for e in box.after(ORCHESTRATOR_STREAM, 0)] == ["RunResult", "local/RunResult", "local/BidResult"]

    count = reframe_local_reports(box, node_id=NODE, max_bytes=MAX, job_type=lambda _id: "batch")

    assert count == 2
    entries = box.after(ORCHESTRATOR_STREAM, 0)
    assert [(e.seq, e.type) for e in entries] == [(1, "RunResult"), (2, "RunResult"), (3, "BidResult")]
    decoded = [decode_message(e.body, max_bytes=MAX) for e in entries]
    assert [d.seq_num for d in decoded] == [1, 2, 3]
    result, bid = decoded[1].payload, decoded[2].payload
    assert isinstance(result, data.RunResult) and result.execution_id == "e-1"
    assert convert.run_result_from_ncl(result).run_output.stdout == "hi\n"
    assert isinstance(bid, data.BidResult) and bid.execution_id == "e-2" and not bid.accepted
    assert dispatch.held_execution_ids([], box, ORCHESTRATOR_STREAM, max_bytes=MAX) == ["e-ncl", "e-1", "e-2"]
    assert reframe_local_reports(box, node_id=NODE, max_bytes=MAX, job_type=lambda _id: "batch") == 0
