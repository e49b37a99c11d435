"""Our compute node can join a Go Bacalhau v1.9 orchestrator over NCL v1.

The mirror of test_go_compute_peer.py. No Go toolchain or Bacalhau binary exists here, so the Go side is
GoStyleOrchestrator (go_orchestrator_peer.py): a peer written only from the protocol description
(/work/shared/NCL.md), building every frame by hand and talking raw nats-py on a plain `nats-server`. The
compute is a real `bacalhau serve --compute` process pointed at that NATS server.

The tests share one NATS server, one peer and one compute node (module scope) and run in file order, since
the orchestrator's `Bacalhau-SeqNum` grows across them exactly as a Go orchestrator's event log would
(AskForBid seq 1, BidAccepted seq 2, AskForBid seq 3, BidRejected seq 4, direct AskForBid seq 5).

Assertion messages starting "Go interop:" state what NCL.md says a Go orchestrator expects of a compute.

NB on the integers: NCL.md's `ExecutionDesiredStateType` is Pending=0, Running=1, Stopped=2 (§1.11 "Stopped (2)";
go_compute_peer.DESIRED_*), and `ExecutionStateType` New=1.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from go_compute_peer import (
    DESIRED_PENDING,
    DESIRED_RUNNING,
    EXEC_NEW,
    KEY_ENCODING,
    KEY_LEGACY_ENCODING,
    KEY_LEGACY_TYPE,
    KEY_SOURCE,
    KEY_TYPE,
    PROTOCOL_NCL_V1,
    event,
)
from go_orchestrator_peer import GoStyleOrchestrator, Inbound, Records

from serve_node import _clean_env, find_free_port, missing_prerequisite

pytestmark = pytest.mark.scenario

NODE_ID = "node-x"
HELLO_WASM = Path(__file__).resolve().parents[1] / "wasm" / "build" / "hello.wasm"
HELLO_STDOUT = "hello from wasm"
ENTRY_TARGET = "/app/main.wasm"
NATS_SERVER = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "nats-server"
WAIT_S = 30.0
QUIET_S = 2.0  # "nothing happens within N s" windows
REJECT_QUIET_S = 4.0
STOP_TIMEOUT_S = 10.0
HEARTBEAT_INTERVAL_S = 1.0


# -- processes ----------------------------------------------------------------------------------------------
def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Until 127.0.0.1:port accepts a TCP connection (fail if `proc` exits first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"nats-server exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)  # poll interval, bounded by the deadline
    raise AssertionError(f"nats-server did not listen on 127.0.0.1:{port} within {timeout_s:g}s")


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL after `timeout_s`."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


@dataclass
class Cluster:
    """The plain NATS server, the Go-style orchestrator peer and our real compute node."""

    peer: GoStyleOrchestrator
    compute: subprocess.Popen[bytes]
    log_path: Path
    nats_port: int
    state: dict[str, Any] = field(default_factory=dict)

    def log_tail(self, lines: int = 80) -> str:
        """The compute node's log tail, for assertion messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no compute log: {exc})"
        return "compute log (tail):\n" + "\n".join(text.splitlines()[-lines:])

    def explain(self) -> str:
        """What the peer saw plus the compute's log."""
        return f"{self.peer.summary()}\n{self.log_tail()}"


@pytest.fixture(scope="module")
def cluster(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """nats-server + GoStyleOrchestrator + `bacalhau serve --compute --name node-x` joined to it."""
    if not NATS_SERVER.is_file():
        missing_prerequisite(f"nats-server binary not found at {NATS_SERVER}")
    if not HELLO_WASM.is_file():
        missing_prerequisite(f"{HELLO_WASM} not built (run tests/wasm/build.py)")
    base = tmp_path_factory.mktemp("go-orchestrator")
    nats_port = find_free_port()
    nats_log = (base / "nats.log").open("wb")
    nats_proc = subprocess.Popen(
        [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(nats_port)], stdout=nats_log, stderr=subprocess.STDOUT
    )
    peer: GoStyleOrchestrator | None = None
    compute: subprocess.Popen[bytes] | None = None
    log_path = base / "compute.log"
    try:
        wait_port(nats_port, nats_proc)
        peer = GoStyleOrchestrator(f"nats://127.0.0.1:{nats_port}").start()
        cmd = [str(bacalhau_bin), "serve", "--compute", "--name", NODE_ID]
        for setting in (
            f"Compute.Orchestrators=nats://127.0.0.1:{nats_port}",
            # Its own API (agent routes) on a free loopback port, not 1234: tests run in parallel.
            "API.Host=127.0.0.1",
            f"API.Port={find_free_port()}",
            "Publishers.Types.Local.Port=0",
            f"Compute.Heartbeat.Interval={HEARTBEAT_INTERVAL_S:g}s",
        ):
            cmd += ["-c", setting]
        with log_path.open("wb") as log:
            compute = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_clean_env({"BACALHAU_DIR": str(base / "bacalhau")}),
                start_new_session=True,
            )
        yield Cluster(peer=peer, compute=compute, log_path=log_path, nats_port=nats_port)
    finally:
        try:
            if compute is not None:
                stop_process(compute)
        finally:
            if peer is not None:
                peer.close()
            stop_process(nats_proc)
            nats_log.close()


# -- what Bacalhau v1.9 puts in an AskForBid ------------------------------------------------------------------
def now_ns() -> int:
    """Current time in Unix nanoseconds (Go's CreateTime/ModifyTime)."""
    return time.time_ns()


def normalised_wasm_job(job_id: str) -> dict[str, Any]:
    """A batch wasm job running hello.wasm, normalised as a Go orchestrator stores and sends it."""
    wasm = base64.b64encode(HELLO_WASM.read_bytes()).decode()
    created = now_ns()
    return {
        "ID": job_id,
        "Name": f"hello-{job_id[-8:]}",
        "Namespace": "default",
        "Type": "batch",
        "Priority": 0,
        "Count": 1,
        "Constraints": [],
        "Meta": {},
        "Labels": {},
        "Tasks": [
            {
                "Name": "main",
                "Engine": {"Type": "wasm", "Params": {"EntryModule": ENTRY_TARGET, "Parameters": []}},
                "Publisher": {"Type": "noop", "Params": {}},
                "Env": {},
                "Meta": {},
                "InputSources": [
                    {
                        "Source": {"Type": "inline", "Params": {"URL": f"data:application/wasm;base64,{wasm}"}},
                        "Alias": "",
                        "Target": ENTRY_TARGET,
                    }
                ],
                "ResultPaths": [],
                "Resources": {"CPU": "100m", "Memory": "64Mb", "Disk": "", "GPU": ""},
                "Network": {"Type": "None"},
                "Timeouts": {"ExecutionTimeout": 600, "QueueTimeout": 0, "TotalTimeout": 1800},
            }
        ],
        "State": {"StateType": "Pending", "Message": ""},
        "Version": 1,
        "Revision": 1,
        "CreateTime": created,
        "ModifyTime": created,
    }


def execution(desired: int) -> dict[str, Any]:
    """A full Execution for NODE_ID as Go's orchestrator sends it in AskForBid (new, revision 1, Job embedded)."""
    job_id = f"j-{uuid.uuid4()}"
    created = now_ns()
    return {
        "ID": f"e-{uuid.uuid4()}",
        "Namespace": "default",
        "EvalID": str(uuid.uuid4()),
        "Name": "",
        "NodeID": NODE_ID,
        "JobID": job_id,
        "Job": normalised_wasm_job(job_id),
        "AllocatedResources": {"Tasks": {}},
        "DesiredState": {"StateType": desired, "Message": "execution pending" if desired == DESIRED_PENDING else ""},
        "ComputeState": {"StateType": EXEC_NEW, "Message": ""},
        "PublishedResult": {"Type": "", "Params": None},
        "RunOutput": None,
        "PreviousExecution": "",
        "NextExecution": "",
        "FollowupEvalID": "",
        "PartitionIndex": 0,
        "Revision": 1,
        "CreateTime": created,
        "ModifyTime": created,
    }


def ask_for_bid(ex: dict[str, Any]) -> dict[str, Any]:
    """AskForBid payload."""
    return {"Events": [event("Requesting node for bid", "Scheduling")], "Execution": ex}


# -- probes ----------------------------------------------------------------------------------------------------
def msg_for(msg_type: str, execution_id: str) -> Any:
    """Probe: the first data-plane message of `msg_type` about `execution_id`."""

    def probe(records: Records) -> Inbound | None:
        return next((m for m in records.msgs if m.type == msg_type and m.execution_id == execution_id), None)

    return probe


def ctrl_count(msg_type: str, at_least: int) -> Any:
    """Probe: at least `at_least` control requests of `msg_type` (returns them)."""

    def probe(records: Records) -> list[Inbound] | None:
        found = [m for m in records.ctrl if m.type == msg_type]
        return found if len(found) >= at_least else None

    return probe


def require(cluster: Cluster, key: str) -> Any:
    """State left by an earlier test of this module (fail clearly if that test did not get there)."""
    if key not in cluster.state:
        pytest.fail(f"an earlier test in this module did not record {key!r}; run the module in order", pytrace=False)
    return cluster.state[key]


# -- 1. handshake and heartbeats ---------------------------------------------------------------------------------
def test_compute_handshakes_with_a_go_style_node_info(cluster: Cluster) -> None:
    handshakes = cluster.peer.wait_for(
        "the compute's transport.HandshakeRequest", ctrl_count("transport.HandshakeRequest", 1), WAIT_S
    )
    cluster.state["handshakes_before"] = len(handshakes)
    request = handshakes[0]
    assert request.subject == f"bacalhau.global.compute.{NODE_ID}.out.ctrl", request.subject
    meta = request.meta
    assert meta.get(KEY_TYPE) == "transport.HandshakeRequest", meta
    assert meta.get(KEY_LEGACY_TYPE) == "transport.HandshakeRequest", f"Go interop (NCL.md §1.3): legacy Type: {meta}"
    assert meta.get(KEY_ENCODING) == "json", meta
    assert meta.get(KEY_LEGACY_ENCODING) == "json", f"Go interop (NCL.md §2.1 item 4): legacy PayloadEncoding: {meta}"
    assert meta.get(KEY_SOURCE) == NODE_ID, f"Go interop (NCL.md §1.3): Bacalhau-Source = node id: {meta}"
    assert request.headers.get(KEY_TYPE) == "transport.HandshakeRequest", (
        f"NATS headers mirror metadata: {request.headers}"
    )

    info = request.payload.get("NodeInfo") or {}
    assert info.get("NodeID") == NODE_ID, info
    assert info.get("NodeType") == "Compute", f"Go interop (NCL.md §2.1 item 10): NodeType 'Compute': {info}"
    assert PROTOCOL_NCL_V1 in (info.get("SupportedProtocols") or []), (
        f"Go interop (NCL.md §2.1 item 10): SupportedProtocols must contain ncl/v1: {info.get('SupportedProtocols')}"
    )
    compute_info = info.get("ComputeNodeInfo")
    assert isinstance(compute_info, dict), f"Go interop: ComputeNodeInfo always present: {info}"
    assert "wasm" in (compute_info.get("ExecutionEngines") or []), compute_info
    assert "address" in compute_info, (
        f"Go interop (NCL.md §1.5): ComputeNodeInfo uses lower-case 'address': keys {sorted(compute_info)}"
    )
    assert "Address" not in compute_info, sorted(compute_info)
    assert isinstance(request.payload.get("LastOrchestratorSeqNum"), int), request.payload
    assert isinstance(request.payload.get("StartTime"), str), request.payload


def test_compute_heartbeats_every_interval(cluster: Cluster) -> None:
    first = cluster.peer.wait_for("a first heartbeat", ctrl_count("transport.HeartbeatRequest", 1), WAIT_S)
    start = len(first)
    beats = cluster.peer.wait_for(
        "three more heartbeats (interval 1s)",
        ctrl_count("transport.HeartbeatRequest", start + 3),
        HEARTBEAT_INTERVAL_S * 3 + 5,
    )
    recent = beats[-4:]
    gaps = [b.at - a.at for a, b in itertools.pairwise(recent)]
    assert all(0.3 <= g <= 3.0 for g in gaps), f"heartbeat gaps {gaps} for a 1s interval"
    payload = recent[-1].payload
    for key in ("NodeID", "AvailableCapacity", "QueueUsedCapacity", "LastOrchestratorSeqNum"):
        assert key in payload, f"Go interop (NCL.md §1.5): HeartbeatRequest needs {key}: {payload}"
    assert payload["NodeID"] == NODE_ID, payload
    assert recent[-1].meta.get(KEY_SOURCE) == NODE_ID, recent[-1].meta
    assert "QueueCapacity" not in payload, f"HeartbeatRequest uses QueueUsedCapacity, not QueueCapacity: {payload}"


# -- 2. a pending bid ----------------------------------------------------------------------------------------------
def test_pending_bid_is_acked_answered_with_a_bid_result_and_not_run(cluster: Cluster) -> None:
    cluster.peer.wait_for("the handshake", ctrl_count("transport.HandshakeRequest", 1), WAIT_S)
    ex = execution(DESIRED_PENDING)
    cluster.state["pending"] = ex
    ack = cluster.peer.publish(NODE_ID, "AskForBid", ask_for_bid(ex), seq=1)
    assert ack.ok and ack.raw == b"{}", (
        f"Go interop (NCL.md §1.4): the compute acks a data-plane message with plain {{}}: {ack}\n{cluster.explain()}"
    )
    bid = cluster.peer.wait_for(f"BidResult for {ex['ID']}", msg_for("BidResult", ex["ID"]), WAIT_S)
    payload = bid.payload
    assert payload.get("Accepted") is True, f"{payload}\n{cluster.log_tail()}"
    assert payload.get("ExecutionID") == ex["ID"], payload
    assert payload.get("JobID") == ex["JobID"], f"Go interop (NCL.md §2.1 item 12): JobID: {payload}"
    assert payload.get("JobType") == "batch", f"Go interop (NCL.md §1.5): JobType: {payload}"
    assert isinstance(payload.get("Events"), list), f"Go interop (NCL.md §1.5): Events list: {payload}"
    assert bid.subject == f"bacalhau.global.compute.{NODE_ID}.out.msgs", bid.subject
    assert bid.seq is not None, f"Go interop (NCL.md §1.3): data-plane messages carry Bacalhau-SeqNum: {bid.meta}"
    assert bid.meta.get("Bacalhau-MessageID") == f"seq-{bid.seq}", bid.meta
    assert bid.meta.get(KEY_SOURCE) == NODE_ID, bid.meta
    assert bid.reply, "Go interop (NCL.md §1.4): data-plane messages are published with a reply inbox"

    early = cluster.peer.stays_absent(msg_for("RunResult", ex["ID"]), QUIET_S)
    assert early is None, (
        f"Go interop (NCL.md §1.5): a pending bid (DesiredState Pending) must wait for BidAccepted, but a RunResult "
        f"arrived without it: {early.payload if early else None}\n{cluster.explain()}"
    )


# -- 3. BidAccepted runs it --------------------------------------------------------------------------------------
def test_bid_accepted_runs_the_execution_and_reports_stdout(cluster: Cluster) -> None:
    ex = require(cluster, "pending")
    ack = cluster.peer.publish(NODE_ID, "BidAccepted", {"Events": [], "ExecutionID": ex["ID"], "Accepted": True}, seq=2)
    assert ack.ok and ack.raw == b"{}", f"ack of BidAccepted: {ack}\n{cluster.explain()}"
    result = cluster.peer.wait_for(f"RunResult for {ex['ID']}", msg_for("RunResult", ex["ID"]), WAIT_S * 2)
    payload = result.payload
    run = payload.get("RunCommandResult")
    assert isinstance(run, dict), f"Go interop (NCL.md §1.5): RunResult carries RunCommandResult: {payload}"
    assert HELLO_STDOUT in str(run.get("Stdout")), f"stdout of hello.wasm: {run}\n{cluster.log_tail()}"
    assert "stderr" in run, f"Go interop (NCL.md §1.5): RunCommandResult uses lower-case 'stderr': keys {sorted(run)}"
    assert "Stderr" not in run, sorted(run)
    assert run.get("ExitCode") == 0, run
    assert payload.get("JobID") == ex["JobID"] and payload.get("JobType") == "batch", payload
    assert "PublishResult" in payload, f"Go interop (NCL.md §1.5): RunResult has PublishResult: {sorted(payload)}"

    msgs = cluster.peer.msgs_snapshot()
    seqs = [m.seq for m in msgs]
    assert all(s is not None for s in seqs), f"every data message carries Bacalhau-SeqNum: {seqs}"
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), (
        f"Go interop (NCL.md §1.8): compute Bacalhau-SeqNum increases per message: {seqs}\n{cluster.explain()}"
    )
    assert all(m.answered_with == b"{}" for m in msgs), [m.answered_with for m in msgs]
    cluster.state["completed"] = ex


# -- 4. BidRejected: never runs ----------------------------------------------------------------------------------
def test_bid_rejected_execution_never_runs(cluster: Cluster) -> None:
    require(cluster, "pending")
    ex = execution(DESIRED_PENDING)
    ack = cluster.peer.publish(NODE_ID, "AskForBid", ask_for_bid(ex), seq=3)
    assert ack.ok and ack.raw == b"{}", f"{ack}\n{cluster.explain()}"
    cluster.peer.wait_for(f"BidResult for {ex['ID']}", msg_for("BidResult", ex["ID"]), WAIT_S)
    ack = cluster.peer.publish(
        NODE_ID, "BidRejected", {"Events": [event("bid rejected", "Scheduling")], "ExecutionID": ex["ID"]}, seq=4
    )
    assert ack.ok and ack.raw == b"{}", f"ack of BidRejected: {ack}\n{cluster.explain()}"
    ran = cluster.peer.stays_absent(msg_for("RunResult", ex["ID"]), REJECT_QUIET_S)
    assert ran is None, f"a rejected bid ran: {ran.payload if ran else None}\n{cluster.explain()}"


# -- 5. a direct bid runs at once --------------------------------------------------------------------------------
def test_direct_bid_runs_without_bid_accepted(cluster: Cluster) -> None:
    ex = execution(DESIRED_RUNNING)
    ack = cluster.peer.publish(NODE_ID, "AskForBid", ask_for_bid(ex), seq=5)
    assert ack.ok and ack.raw == b"{}", f"{ack}\n{cluster.explain()}"
    result = cluster.peer.wait_for(
        f"RunResult for the direct bid {ex['ID']} (DesiredState Running, no BidAccepted)",
        msg_for("RunResult", ex["ID"]),
        WAIT_S * 2,
    )
    run = result.payload.get("RunCommandResult") or {}
    assert HELLO_STDOUT in str(run.get("Stdout")), f"{result.payload}\n{cluster.log_tail()}"
    assert run.get("ExitCode") == 0, run
    heartbeats = cluster.peer.wait_for(
        "a heartbeat reporting the processed orchestrator seq 5",
        lambda records: [
            m
            for m in records.ctrl
            if m.type == "transport.HeartbeatRequest" and m.payload.get("LastOrchestratorSeqNum") == 5
        ],
        WAIT_S,
    )
    assert heartbeats, "Go interop (NCL.md §2.1 item 12): heartbeat LastOrchestratorSeqNum = last processed seq"


# -- 6. HandshakeRequired -> re-handshake -----------------------------------------------------------------------
def test_handshake_required_makes_the_compute_handshake_again(cluster: Cluster) -> None:
    before = len(cluster.peer.ctrl_of("transport.HandshakeRequest"))
    assert before >= 1, cluster.explain()
    cluster.peer.require_handshake()
    rehandshake = cluster.peer.wait_for(
        "a second transport.HandshakeRequest after heartbeats were answered with BacError HandshakeRequired",
        ctrl_count("transport.HandshakeRequest", before + 1),
        WAIT_S,
    )
    errored = [m for m in cluster.peer.ctrl_of("transport.HeartbeatRequest") if b"HandshakeRequired" in m.answered_with]
    assert errored, "the peer never answered a heartbeat with HandshakeRequired before the re-handshake"
    assert rehandshake[-1].at >= errored[0].at, "re-handshake came before the HandshakeRequired error"
    # After the re-handshake the compute heartbeats normally again.
    count = len(cluster.peer.ctrl_of("transport.HeartbeatRequest"))
    cluster.peer.wait_for(
        "heartbeats after the re-handshake", ctrl_count("transport.HeartbeatRequest", count + 2), WAIT_S
    )
    assert cluster.compute.poll() is None, f"the compute exited: {cluster.compute.returncode}\n{cluster.log_tail()}"


# -- 7. graceful stop -> ShutdownNoticeRequest -------------------------------------------------------------------
def test_graceful_stop_sends_a_shutdown_notice(cluster: Cluster) -> None:
    stop_process(cluster.compute)
    notices = cluster.peer.wait_for(
        "transport.ShutdownNoticeRequest on SIGTERM", ctrl_count("transport.ShutdownNoticeRequest", 1), 5.0
    )
    payload = notices[0].payload
    assert payload.get("NodeID") == NODE_ID, payload
    assert "LastOrchestratorSeqNum" in payload, f"Go interop (NCL.md §1.5): {payload}"
    # A Go orchestrator announced no "drain" extension: it gets exactly Bacalhau's one notice, no drain notice.
    assert "Draining" not in payload and len(cluster.peer.ctrl_of("transport.ShutdownNoticeRequest")) == 1, notices
