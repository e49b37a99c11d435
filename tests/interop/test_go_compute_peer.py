"""A Go Bacalhau v1.6-v1.9 compute node can join our orchestrator over NCL v1.

No Go toolchain or Bacalhau binary exists here, so the Go side is GoStyleCompute (go_compute_peer.py): a
peer written only from the protocol description (/work/shared/NCL.md), building every frame by hand and
talking raw nats-py. The orchestrator is a real `bacalhau serve --orchestrator` process and every check a
user would make goes through the real `bacalhau` CLI (`node list`, `job run`, `job describe`).

Where a test asserts something NCL.md requires of an orchestrator so that a Go compute works, its assertion
message says so ("Go interop: ...") and names the NCL.md section. The lifecycle tests let the peer go on with
an AskForBid even when `go_compute_objections` finds something a Go compute would refuse: that check has a
test of its own, so one deviation does not hide the others.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from go_compute_peer import (
    DESIRED_PENDING,
    DESIRED_RUNNING,
    EXEC_COMPLETED,
    EXEC_FAILED,
    KEY_ENCODING,
    KEY_ERROR_CODE,
    KEY_LEGACY_ENCODING,
    KEY_LEGACY_TYPE,
    KEY_MESSAGE_ID,
    KEY_SEQ,
    KEY_STATUS_CODE,
    GoStyleCompute,
    Received,
    Reply,
    decode_frame,
    encode_frame,
    go_compute_objections,
    resources,
)
from orchestrator_node import DISCONNECT_TIMEOUT_S, OrchestratorNode, PeerFactory

from serve_node import missing_prerequisite

pytestmark = pytest.mark.scenario

HELLO_WASM = Path(__file__).resolve().parents[1] / "wasm" / "build" / "hello.wasm"
WAIT_S = 30.0
TERMINAL_JOB_STATES = ("Completed", "Failed", "Stopped")
BAC_ERROR_KEYS = {"Cause", "Hint", "Retryable", "FailsExecution", "Component", "HTTPStatusCode", "Details", "Code"}


# -- what a user sees, through the real CLI ------------------------------------------------------------------
def wait_until(
    what: str, probe: Callable[[], Any], *, timeout_s: float = WAIT_S, explain: Callable[[], str] = str
) -> Any:
    """Poll `probe()` until it returns something truthy; fail with `what` and `explain()` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.1)  # poll interval, bounded by the deadline
    raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}\n{explain()}")


def node_list(orchestrator: OrchestratorNode) -> list[dict[str, Any]]:
    """`bacalhau node list --output json`."""
    parsed = json.loads(orchestrator.ok("node", "list", "--output", "json").stdout)
    assert isinstance(parsed, list), parsed
    return parsed


def node_state(orchestrator: OrchestratorNode, node_id: str) -> dict[str, Any] | None:
    """The node's entry in `node list --output json`, or None."""
    return next((n for n in node_list(orchestrator) if n["Info"]["NodeID"] == node_id), None)


def wait_connection(
    orchestrator: OrchestratorNode, node_id: str, status: str, timeout_s: float = WAIT_S
) -> dict[str, Any]:
    """Wait until `node list` shows `node_id` with ConnectionState.Status `status`; return its entry."""

    def probe() -> dict[str, Any] | None:
        state = node_state(orchestrator, node_id)
        return state if state and state["ConnectionState"]["Status"] == status else None

    result: dict[str, Any] = wait_until(
        f"node {node_id} to be {status} in `bacalhau node list`",
        probe,
        timeout_s=timeout_s,
        explain=lambda: (
            f"node list: {json.dumps(node_list(orchestrator), indent=1)[:3000]}\n{orchestrator.log_excerpt(60)}"
        ),
    )
    return result


def submit_wasm_job(orchestrator: OrchestratorNode, directory: Path) -> str:
    """`bacalhau job run --wait=false --id-only job.json` of a wasm hello job (noop publisher); its ID."""
    if not HELLO_WASM.is_file():
        missing_prerequisite(f"{HELLO_WASM} not found (run: python tests/wasm/build.py)")
    from scenarios.scenario_jobs import wasm_job

    path = directory / f"job-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(wasm_job(HELLO_WASM, publisher="noop")))
    job_id = orchestrator.ok("job", "run", "--wait=false", "--id-only", str(path)).stdout.strip()
    assert job_id.startswith("j-"), job_id
    return job_id


def describe(orchestrator: OrchestratorNode, job_id: str) -> dict[str, Any]:
    """`bacalhau job describe <id> --output json`: {Job, History, Executions}."""
    parsed: dict[str, Any] = json.loads(orchestrator.ok("job", "describe", job_id, "--output", "json").stdout)
    return parsed


def wait_job_state(
    orchestrator: OrchestratorNode, job_id: str, state: str, timeout_s: float = WAIT_S
) -> dict[str, Any]:
    """Wait until `job describe` shows the job in `state`; fail early on another terminal state."""

    def probe() -> dict[str, Any] | None:
        described = describe(orchestrator, job_id)
        current = described["Job"]["State"]["StateType"]
        if current == state:
            return described
        assert current not in TERMINAL_JOB_STATES, (
            f"job {job_id} ended {current} ({described['Job']['State'].get('Message')!r}), expected {state}\n"
            f"executions: {json.dumps(executions_of(described), indent=1)[:3000]}\n{orchestrator.log_excerpt(60)}"
        )
        return None

    result: dict[str, Any] = wait_until(f"job {job_id} to be {state}", probe, timeout_s=timeout_s)
    return result


def executions_of(described: dict[str, Any]) -> list[dict[str, Any]]:
    """The executions in a `job describe --output json` document, with the embedded Job left out."""
    items = (described.get("Executions") or {}).get("Items") or []
    return [{k: v for k, v in e.items() if k != "Job"} for e in items]


# -- the protocol steps a Go compute takes -------------------------------------------------------------------
def assert_go_envelope(reply: Reply, expected_type: str) -> None:
    """The response is the NCL v1 JSON envelope Go decodes, with metadata mirrored into NATS headers (NCL.md §1.3)."""
    assert reply.raw[0] == 0x01, f"schema byte {reply.raw[0]:#04x}, expected 0x01 (NCL.md §1.3)"
    assert reply.type == expected_type, f"Bacalhau-Type {reply.type!r}, expected {expected_type!r}: {reply.payload}"
    assert reply.meta.get(KEY_LEGACY_TYPE) == expected_type, f"legacy Type missing or wrong: {reply.meta}"
    assert reply.meta.get(KEY_ENCODING) == "json" and reply.meta.get(KEY_LEGACY_ENCODING) == "json", reply.meta
    mirrored = {k: reply.headers.get(k) for k in reply.meta}
    assert mirrored == reply.meta, f"NATS headers {reply.headers} do not mirror the envelope metadata {reply.meta}"


def handshake(peer: GoStyleCompute) -> Reply:
    """Connect like a Go compute (fresh connection, subscribe in.msgs, HandshakeRequest) and require acceptance."""
    reply = peer.connect()
    assert_go_envelope(reply, "transport.HandshakeResponse")
    assert reply.payload.get("accepted") is True, f"handshake refused: {reply.payload}"
    return reply


def join(peer: GoStyleCompute) -> Reply:
    """Handshake and keep heartbeating in the background."""
    reply = handshake(peer)
    peer.start_heartbeats()
    return reply


def wait_ask_for_bid(peer: GoStyleCompute, job_id: str, timeout_s: float = WAIT_S) -> Received:
    """The AskForBid for `job_id` (other messages are skipped)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        received = peer.poll_received("AskForBid", timeout_s=max(0.0, deadline - time.monotonic()))
        if received is not None and received.payload["Execution"]["JobID"] == job_id:
            return received
    raise AssertionError(f"{peer.node_id} got no AskForBid for {job_id} within {timeout_s:g}s")


def accept_like_go(peer: GoStyleCompute, ask: Received) -> None:
    """What a Go compute does after bidding yes: BidResult and wait for BidAccepted (pending bid), or
    nothing at all (direct bid: New -> BidAccepted locally sends no message, NCL.md §1.5)."""
    execution = ask.payload["Execution"]
    if execution["DesiredState"]["StateType"] == DESIRED_PENDING:
        _, ack = peer.send_bid_result(execution, accepted=True)
        assert ack.ok, f"BidResult not acked: {ack}"
        accepted = peer.next_received("BidAccepted")
        assert accepted.payload["ExecutionID"] == execution["ID"], accepted.payload


# -- 1-4: joining, node list, heartbeats --------------------------------------------------------------------
def test_go_compute_joins_over_ncl_after_the_legacy_probe_finds_no_responder(
    orchestrator: OrchestratorNode, go_peer: PeerFactory
) -> None:
    peer = go_peer("go-compute-1", labels={"zone": "eu-west", "owner": "interop"})

    # A Go compute first tries bprotocol registration; it must not be accepted there (NCL.md §1.6.1, §2.1.3).
    outcome = peer.probe_legacy_registration()
    assert outcome == "no responders", (
        f"Go interop: node.management.<id>.RegisterNode/v1 answered {outcome!r}; a Go compute falls back to NCL only on "
        "no-responders or Accepted:false (NCL.md §2.1 item 3)"
    )

    reply = join(peer)  # handshake, then heartbeats in the background as Go does
    payload = reply.payload
    assert payload["reason"] == "node registered", payload
    for key in ("LastComputeSeqNum", "LastOrchestratorSeqNum"):
        assert isinstance(payload.get(key), int) and payload[key] >= 0, f"{key} must be a uint64: {payload}"
    assert "Accepted" not in payload and "Reason" not in payload, f"Go's tags are lower-case accepted/reason: {payload}"

    state = node_state(orchestrator, "go-compute-1")
    assert state is not None, f"the peer is not in `node list`: {node_list(orchestrator)}"
    assert state["ConnectionState"]["Status"] == "CONNECTED", state
    assert state["Membership"] == "APPROVED", state
    info = state["Info"]
    assert info["NodeType"] == "Compute", info
    assert info["Labels"] == {"zone": "eu-west", "owner": "interop"}, info
    assert "ncl/v1" in info["SupportedProtocols"], info
    assert info["ComputeNodeInfo"]["ExecutionEngines"] == ["docker", "wasm"], info
    assert info["ComputeNodeInfo"]["Publishers"] == ["noop", "local"], info
    assert info["ComputeNodeInfo"]["StorageSources"] == ["inline", "urlDownload"], info
    assert info["BacalhauVersion"]["GitVersion"] == "v1.9.3", info

    assert info["ComputeNodeInfo"]["address"] == "127.0.0.1", info["ComputeNodeInfo"]
    assert info["ComputeNodeInfo"]["MaxCapacity"]["CPU"] == 4.0, info["ComputeNodeInfo"]
    assert info["ComputeNodeInfo"]["MaxCapacity"]["Memory"] == 8 * 1024**3, info["ComputeNodeInfo"]

    # What a heartbeat reports is what `node list` shows (Go: QueueUsedCapacity -> ComputeNodeInfo.QueueCapacity).
    peer.available_capacity = resources(cpu=1.5, memory=2 * 1024**3, disk=50 * 1024**3)
    peer.queue_used_capacity = resources(cpu=0.5, memory=1024**3)
    beat = peer.heartbeat()
    assert_go_envelope(beat, "transport.HeartbeatResponse")
    assert isinstance(beat.payload.get("LastComputeSeqNum"), int), beat.payload
    state = node_state(orchestrator, "go-compute-1")
    assert state is not None
    compute_info = state["Info"]["ComputeNodeInfo"]
    assert compute_info["AvailableCapacity"]["CPU"] == 1.5, compute_info
    assert compute_info["AvailableCapacity"]["Memory"] == 2 * 1024**3, compute_info
    assert compute_info["QueueCapacity"]["CPU"] == 0.5, compute_info

    # Heartbeats keep it CONNECTED well past the 3 s disconnect timeout.
    wait_until(
        "heartbeats covering twice the disconnect timeout",
        lambda: peer.heartbeats.answered * peer.heartbeat_interval_s >= 2 * DISCONNECT_TIMEOUT_S,
        explain=lambda: f"heartbeats: {peer.heartbeats}",
    )
    assert peer.heartbeats.errors == [], peer.heartbeats
    state = node_state(orchestrator, "go-compute-1")
    assert state is not None and state["ConnectionState"]["Status"] == "CONNECTED", state


# -- 5: a job runs on the Go compute ----------------------------------------------------------------------
def test_job_runs_on_go_compute_and_completes_with_the_stdout_it_reported(
    orchestrator: OrchestratorNode, go_peer: PeerFactory, tmp_path: Path
) -> None:
    peer = go_peer("go-compute-run", labels={"zone": "eu-west"})
    join(peer)
    job_id = submit_wasm_job(orchestrator, tmp_path)

    ask = wait_ask_for_bid(peer, job_id)
    assert ask.answered_with == b"{}"
    assert ask.seq is not None and ask.seq > 0, f"AskForBid without a Bacalhau-SeqNum: {ask.meta}"
    assert ask.meta.get(KEY_MESSAGE_ID) == f"seq-{ask.seq}", ask.meta
    assert {k: ask.headers.get(k) for k in ask.meta} == ask.meta, f"headers {ask.headers} != metadata {ask.meta}"
    assert isinstance(ask.payload.get("Events"), list), ask.payload.keys()
    execution = ask.payload["Execution"]
    assert execution["NodeID"] == "go-compute-run" and execution["JobID"] == job_id, execution["ID"]
    assert isinstance(execution["ComputeState"]["StateType"], int), execution["ComputeState"]
    assert execution["DesiredState"]["StateType"] in (DESIRED_PENDING, DESIRED_RUNNING), execution["DesiredState"]
    job = execution["Job"]
    assert isinstance(job["Meta"], dict), f"Job.Meta must be a JSON object: {job['Meta']!r}"
    assert isinstance(job["State"]["StateType"], str), job["State"]
    assert job["Tasks"][0]["Engine"]["Type"] == "wasm", job["Tasks"]

    accept_like_go(peer, ask)
    marker = f"hello from a Go-style compute {uuid.uuid4()}\n"
    seq, ack = peer.send_run_result(execution, stdout=marker, stderr="warning: none\n")
    assert ack.ok and ack.raw == b"{}", f"RunResult (seq {seq}) not acked with {{}}: {ack}"

    described = wait_job_state(orchestrator, job_id, "Completed")
    [record] = described["Executions"]["Items"]
    assert record["NodeID"] == "go-compute-run", record["NodeID"]
    assert record["ComputeState"]["StateType"] == EXEC_COMPLETED, record["ComputeState"]
    assert record["RunOutput"]["Stdout"] == marker, record["RunOutput"]
    assert record["RunOutput"]["ExitCode"] == 0, record["RunOutput"]
    text = orchestrator.ok("job", "describe", job_id).stdout
    assert marker.strip() in text, f"the stdout the compute reported is not in `job describe`:\n{text}"


def test_ask_for_bid_carries_an_execution_a_go_compute_would_create(
    orchestrator: OrchestratorNode, go_peer: PeerFactory, tmp_path: Path
) -> None:
    peer = go_peer("go-compute-ask")
    join(peer)
    job_id = submit_wasm_job(orchestrator, tmp_path)
    execution = wait_ask_for_bid(peer, job_id).payload["Execution"]
    objections = go_compute_objections(execution)
    shown = {k: execution.get(k) for k in ("ID", "ComputeState", "DesiredState", "Revision")}
    assert objections == [], (
        "Go interop (NCL.md §2.1): a Go v1.9 compute would refuse this AskForBid (it logs the error, acks, and "
        "never bids, so the job would hang):\n- " + "\n- ".join(objections) + f"\nexecution: {shown}"
    )


def test_reconnecting_compute_resumes_from_the_sequence_numbers_it_reported(
    orchestrator: OrchestratorNode, go_peer: PeerFactory, tmp_path: Path
) -> None:
    peer = go_peer("go-compute-seq")
    join(peer)
    job_id = submit_wasm_job(orchestrator, tmp_path)
    ask = wait_ask_for_bid(peer, job_id)
    accept_like_go(peer, ask)
    compute_seq, ack = peer.send_run_result(ask.payload["Execution"], stdout="done\n")
    assert ack.ok, ack
    wait_job_state(orchestrator, job_id, "Completed")
    processed = peer.last_orchestrator_seq
    assert processed >= (ask.seq or 0) > 0, (processed, ask.meta)

    peer.stop_heartbeats()
    beat = peer.heartbeat()  # reports LastOrchestratorSeqNum = processed
    assert beat.type == "transport.HeartbeatResponse", beat.payload
    assert beat.payload["LastComputeSeqNum"] == compute_seq, (
        f"NCL.md §1.7: HeartbeatResponse.LastComputeSeqNum is the last Bacalhau-SeqNum the orchestrator processed "
        f"from this node ({compute_seq}): {beat.payload}"
    )

    # Go reconnects with a fresh connection and handshake while the orchestrator still has it CONNECTED.
    reply = join(peer)
    assert reply.payload["reason"] == "node reconnected", reply.payload
    assert reply.payload["LastOrchestratorSeqNum"] == processed, (
        f"NCL.md §1.7/§1.8: a reconnecting node starts after the orchestrator seq it reported ({processed}); the Go "
        f"compute overwrites its tracker with this value: {reply.payload}"
    )
    assert reply.payload["LastComputeSeqNum"] == compute_seq, reply.payload
    wait_connection(orchestrator, "go-compute-seq", "CONNECTED")
    assert describe(orchestrator, job_id)["Job"]["State"]["StateType"] == "Completed"


def test_stopping_a_job_sends_cancel_execution_to_the_go_compute(
    orchestrator: OrchestratorNode, go_peer: PeerFactory, tmp_path: Path
) -> None:
    peer = go_peer("go-compute-cancel")
    join(peer)
    job_id = submit_wasm_job(orchestrator, tmp_path)
    ask = wait_ask_for_bid(peer, job_id)
    accept_like_go(peer, ask)  # now "running" on the peer

    orchestrator.ok("job", "stop", job_id, "--reason", "interop says stop")
    cancel = peer.next_received("CancelExecution")
    assert cancel.payload["ExecutionID"] == ask.payload["Execution"]["ID"], cancel.payload
    assert isinstance(cancel.payload.get("Events"), list), cancel.payload
    assert cancel.seq is not None and ask.seq is not None and cancel.seq > ask.seq, (ask.meta, cancel.meta)
    assert cancel.answered_with == b"{}"
    wait_job_state(orchestrator, job_id, "Stopped")


def test_node_info_update_changes_what_node_list_shows(orchestrator: OrchestratorNode, go_peer: PeerFactory) -> None:
    peer = go_peer("go-compute-info", labels={"zone": "eu-west"})
    join(peer)
    peer.labels = {"zone": "eu-north", "gpu": "none"}
    reply = peer.request_ctrl("transport.UpdateNodeInfoRequest", {"NodeInfo": peer.node_info()})
    assert_go_envelope(reply, "transport.UpdateNodeInfoResponse")
    assert reply.payload.get("accepted") is True, reply.payload
    wait_until(
        "the new labels in `node list`",
        lambda: (node_state(orchestrator, "go-compute-info") or {}).get("Info", {}).get("Labels") == peer.labels,
        explain=lambda: str(node_state(orchestrator, "go-compute-info")),
    )


def test_bid_rejected_by_the_go_compute_is_recorded_and_not_run(
    orchestrator: OrchestratorNode, go_peer: PeerFactory, tmp_path: Path
) -> None:
    peer = go_peer("go-compute-nobid")
    join(peer)
    job_id = submit_wasm_job(orchestrator, tmp_path)
    ask = wait_ask_for_bid(peer, job_id)
    execution = ask.payload["Execution"]
    # A Go compute that cannot take the job (not enough resources) answers BidResult{Accepted: false} whatever
    # the desired state (bidder.go: AskForBidRejected).
    _, ack = peer.send_bid_result(execution, accepted=False)
    assert ack.ok, f"BidResult(Accepted=false) not acked: {ack}"

    def rejected() -> dict[str, Any] | None:
        described = describe(orchestrator, job_id)
        for item in described["Executions"]["Items"]:
            # Go records AskForBidRejected (4); BidRejected (8) also says "not running here".
            if item["ID"] == execution["ID"] and item["ComputeState"]["StateType"] in (4, 8):
                return item
        return None

    record = wait_until(
        f"execution {execution['ID']} to be rejected",
        rejected,
        explain=lambda: json.dumps(executions_of(describe(orchestrator, job_id)), indent=1)[:3000],
    )
    assert record["DesiredState"]["StateType"] == 2, record["DesiredState"]  # Stopped, as Go's OnBidComplete
    # The reason the compute gave (Events[0].Message) is what Go puts in ComputeState.Message.
    assert record["ComputeState"]["Message"] == "bid rejected by go-compute-nobid", record["ComputeState"]
    state = describe(orchestrator, job_id)["Job"]["State"]["StateType"]
    assert state != "Completed", state


# -- 6: ComputeError -------------------------------------------------------------------------------------
def test_compute_error_fails_the_job_with_the_error_the_compute_reported(
    orchestrator: OrchestratorNode, go_peer: PeerFactory, tmp_path: Path
) -> None:
    peer = go_peer("go-compute-err")
    join(peer)
    job_id = submit_wasm_job(orchestrator, tmp_path)
    reason = f"wasm: module trapped at go-peer {uuid.uuid4()}"
    asked: list[str] = []

    def fail_every_attempt() -> dict[str, Any] | None:
        # The orchestrator may retry on the same node; a Go compute would fail every attempt the same way.
        ask = peer.poll_received("AskForBid", timeout_s=0.2)
        if ask is not None and ask.payload["Execution"]["JobID"] == job_id:
            asked.append(ask.payload["Execution"]["ID"])
            _, ack = peer.send_compute_error(ask.payload["Execution"], reason)
            assert ack.ok, f"ComputeError not acked: {ack}"
        described = describe(orchestrator, job_id)
        return described if described["Job"]["State"]["StateType"] in TERMINAL_JOB_STATES else None

    described = wait_until(f"job {job_id} to end after ComputeError", fail_every_attempt)
    assert asked, "the peer was never asked to run the job"
    assert described["Job"]["State"]["StateType"] == "Failed", described["Job"]["State"]
    failed = [e for e in described["Executions"]["Items"] if e["ComputeState"]["StateType"] == EXEC_FAILED]
    assert failed, executions_of(described)
    assert all(reason in e["ComputeState"]["Message"] for e in failed), executions_of(described)
    text = orchestrator.ok("job", "describe", job_id).stdout
    assert reason in text, f"the compute's error is not in `job describe`:\n{text}"


# -- 7: duplicates, garbage, unknown types, unknown nodes ----------------------------------------------------
def test_duplicate_and_late_run_results_are_acked_but_recorded_once(
    orchestrator: OrchestratorNode, go_peer: PeerFactory, tmp_path: Path
) -> None:
    peer = go_peer("go-compute-dup")
    join(peer)
    job_id = submit_wasm_job(orchestrator, tmp_path)
    ask = wait_ask_for_bid(peer, job_id)
    execution = ask.payload["Execution"]

    # A BidResult even for a direct bid: Go's orchestrator accepts one while DesiredState is Pending or Running.
    bid_seq, ack = peer.send_bid_result(execution, accepted=True)
    assert ack.ok, f"BidResult (seq {bid_seq}) not acked: {ack}"
    if execution["DesiredState"]["StateType"] == DESIRED_PENDING:
        peer.next_received("BidAccepted")

    first = f"first result {uuid.uuid4()}\n"
    number = peer.next_local_event(gap=2)
    meta, frame = encode_frame(
        "RunResult",
        peer.run_result_payload(execution, stdout=first),
        source=peer.node_id,
        extra_meta={KEY_SEQ: str(number), KEY_MESSAGE_ID: f"seq-{number}"},
    )
    assert number > bid_seq
    original = peer.publish_raw(frame, meta)
    assert original.ok, f"RunResult not acked: {original}"
    # The dispatcher replays after a reconnect or a lost ack: the very same frame, same Bacalhau-SeqNum.
    replay = peer.publish_raw(frame, meta)
    assert replay.ok, (
        f"Go interop (NCL.md §1.9): a replayed RunResult must be acked (and dropped), got {replay}; a nack makes a Go "
        "compute's dispatcher back off and replay again"
    )
    # A late, different RunResult for the same execution (new seq) is also acked and discarded.
    late_seq, late = peer.send_run_result(execution, stdout="a late second result\n")
    assert late.ok, f"late RunResult (seq {late_seq}) should be acked and dropped like Go does: {late}"

    described = wait_job_state(orchestrator, job_id, "Completed")
    [record] = described["Executions"]["Items"]
    assert record["RunOutput"]["Stdout"] == first, record["RunOutput"]
    completions = [
        item
        for item in described["History"]["Items"]
        if item.get("ExecutionID") == execution["ID"]
        and (item.get("ExecutionState") or {}).get("New") == EXEC_COMPLETED
    ]
    assert len(completions) == 1, f"the result was recorded {len(completions)} times: {completions}"
    job_completions = [
        item for item in described["History"]["Items"] if (item.get("JobState") or {}).get("New") == "Completed"
    ]
    assert len(job_completions) == 1, job_completions


def test_undecodable_frame_on_the_data_plane_is_nacked(orchestrator: OrchestratorNode, go_peer: PeerFactory) -> None:
    peer = go_peer("go-compute-garbage")
    join(peer)
    meta, frame = encode_frame("RunResult", {"ExecutionID": "e-x"}, source=peer.node_id, extra_meta={KEY_SEQ: "7"})
    corrupted = frame[:1] + bytes(b ^ 0xFF for b in frame[1:5]) + frame[5:]  # wrong CRC
    ack = peer.publish_raw(corrupted, meta)
    assert not ack.no_responders, "the orchestrator has no subscriber on out.msgs for a handshaken node"
    assert ack.error, (
        f'Go interop (NCL.md §1.4): a frame with a bad CRC must be nacked {{"error": ...}}, got {ack.raw!r}'
    )
    assert isinstance(ack.body, dict) and set(ack.body) <= {"error", "delay"}, (
        f"a nack is plain JSON error/delay: {ack.raw!r}"
    )
    with pytest.raises(ValueError):
        decode_frame(ack.raw)  # plain JSON, not an envelope
    # The node is still fine afterwards.
    assert peer.heartbeat().type == "transport.HeartbeatResponse"


def test_control_message_without_a_handler_gets_a_not_found_bac_error(
    orchestrator: OrchestratorNode, go_peer: PeerFactory
) -> None:
    peer = go_peer("go-compute-nohandler")
    handshake(peer)
    # A registered type the control responder has no handler for (NCL.md §1.4).
    reply = peer.request_ctrl("RunResult", {"ExecutionID": "e-1", "JobID": "j-1", "JobType": "batch", "Events": []})
    assert_go_envelope(reply, "BacError")
    assert set(reply.payload) >= BAC_ERROR_KEYS, f"BacError JSON keys (NCL.md §1.4): {reply.payload}"
    assert reply.payload["Code"] == "NotFound", reply.payload
    assert reply.payload["Cause"] == "no handler found for message type: RunResult", reply.payload
    assert reply.meta.get(KEY_ERROR_CODE) == "NotFound" and reply.meta.get(KEY_STATUS_CODE) == "404", reply.meta

    # A type nobody registered: Go's responder fails to decode it and answers a BacError naming the type.
    reply = peer.request_ctrl("transport.TeleportRequest", {"NodeID": peer.node_id})
    assert_go_envelope(reply, "BacError")
    assert set(reply.payload) >= BAC_ERROR_KEYS, reply.payload
    assert "transport.TeleportRequest" in reply.payload["Cause"], reply.payload
    assert "unsupported message type" in reply.payload["Cause"] or "no handler found" in reply.payload["Cause"], (
        reply.payload
    )


def test_heartbeat_from_an_unknown_node_requires_a_handshake_then_the_handshake_works(
    orchestrator: OrchestratorNode, go_peer: PeerFactory
) -> None:
    stranger = go_peer("go-compute-stranger")
    known = go_peer("go-compute-known")
    handshake(known)
    # The stranger's heartbeat travels on its own subject before it ever handshook.
    known_conn_reply = known.heartbeat(node_id="go-compute-stranger")
    assert_go_envelope(known_conn_reply, "BacError")
    payload = known_conn_reply.payload
    assert payload["Code"] == "HandshakeRequired", (
        f"Go interop (NCL.md §2.1 item 6): only Code HandshakeRequired makes a Go compute re-handshake at once: {payload}"
    )
    assert payload["Retryable"] is True and payload["HTTPStatusCode"] == 428, payload
    assert payload["Cause"] == "node go-compute-stranger not connected - handshake required", payload
    assert known_conn_reply.meta.get(KEY_ERROR_CODE) == "HandshakeRequired", known_conn_reply.meta

    reply = join(stranger)
    assert reply.payload["reason"] == "node registered", reply.payload
    assert stranger.heartbeat().type == "transport.HeartbeatResponse"
    wait_connection(orchestrator, "go-compute-stranger", "CONNECTED")


# -- 8: leaving ----------------------------------------------------------------------------------------------
def test_shutdown_notice_disconnects_the_node_at_once(orchestrator: OrchestratorNode, go_peer: PeerFactory) -> None:
    peer = go_peer("go-compute-bye")
    join(peer)
    wait_connection(orchestrator, "go-compute-bye", "CONNECTED")

    reply = peer.shutdown_notice(reason="node shutting down")
    # "graceful shutdown", not "heartbeat timeout": the notice did it, not the (stopped) heartbeats.
    state = wait_connection(orchestrator, "go-compute-bye", "DISCONNECTED")
    assert state["ConnectionState"].get("LastError") == "graceful shutdown", state["ConnectionState"]
    assert state["Membership"] == "APPROVED", state
    assert reply.type == "transport.ShutdownNoticeResponse", (
        "Go interop (NCL.md §1.5, §1.7): ShutdownNoticeRequest is answered with transport.ShutdownNoticeResponse "
        f"{{LastComputeSeqNum}}, got {reply.type}: {reply.payload}"
    )
    assert_go_envelope(reply, "transport.ShutdownNoticeResponse")
    assert isinstance(reply.payload.get("LastComputeSeqNum"), int), reply.payload

    after = peer.heartbeat()
    assert after.error_code == "HandshakeRequired", (
        f"a heartbeat after the shutdown notice: {after.type} {after.payload}"
    )


def test_silent_compute_is_disconnected_after_the_timeout_and_rejoins(
    orchestrator: OrchestratorNode, go_peer: PeerFactory
) -> None:
    peer = go_peer("go-compute-silent")
    join(peer)
    wait_connection(orchestrator, "go-compute-silent", "CONNECTED")
    wait_until("a first answered heartbeat", lambda: peer.heartbeats.answered >= 1)

    peer.stop_heartbeats()
    silent_since = time.monotonic()
    state = wait_connection(orchestrator, "go-compute-silent", "DISCONNECTED", timeout_s=4 * DISCONNECT_TIMEOUT_S + 10)
    assert time.monotonic() - silent_since >= DISCONNECT_TIMEOUT_S - 0.5, "disconnected before the timeout"
    assert state["ConnectionState"].get("LastError") == "heartbeat timeout", (
        f"NCL.md §1.7: a node that stops heartbeating is DISCONNECTED with LastError 'heartbeat timeout': "
        f"{state['ConnectionState']}"
    )

    # Its next heartbeat is told to handshake again; the re-handshake is a reconnect of the same node.
    beat = peer.heartbeat()
    assert beat.error_code == "HandshakeRequired", f"{beat.type}: {beat.payload}"
    reply = join(peer)
    assert reply.payload["reason"] == "node reconnected", reply.payload
    state = wait_connection(orchestrator, "go-compute-silent", "CONNECTED")
    assert state["Membership"] == "APPROVED", state
