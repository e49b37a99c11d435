"""A compute node that speaks NCL v1 the way a Go Bacalhau v1.6-v1.9 compute does, for interop tests.

Written only from the protocol description (/work/shared/NCL.md §1.2-1.9, §2.1), never from our transport
code: nothing here imports `bacalhau.*`. Frames are built by hand (json + zlib.crc32 + struct) and sent with
raw nats-py, so a passing test means our orchestrator understands the bytes a Go compute puts on the wire,
not merely that our encoder agrees with our decoder.

What a Go v1.9 compute does, and what this peer does in the same order (NCL.md §1.6)::

    start() --> probe node.management.<id>.RegisterNode/v1 on its own connection   (expects no responders)
            --> connect(): new NATS connection
                  subscribe bacalhau.global.compute.<id>.in.msgs                    (before the handshake)
                  transport.HandshakeRequest on ...<id>.out.ctrl  --accepted-->  incoming tracker :=
                                                                                 response LastOrchestratorSeqNum
            --> heartbeats: transport.HeartbeatRequest every interval           (HandshakeRequired -> flagged;
                                                                                 reconnect() handshakes again)
            --> data plane: publish BidResult / RunResult / ComputeError on ...<id>.out.msgs
                  with Bacalhau-SeqNum = the peer's local event-log number (sparse, as in Go),
                  reply = <inbox>.<uuid4>, and wait for the ack: {} ok, {"error": ...} nack,
                  empty body + header Status 503 = no responders
            --> incoming AskForBid/BidAccepted/BidRejected/CancelExecution: decode, record, ack {}
                  (Go acks business errors too); an undecodable frame is nacked {"error", "delay"}
            --> shutdown_notice(): transport.ShutdownNoticeRequest, then close()

The asyncio side runs on a thread of its own, like a separate process would: the test body stays synchronous
and can run the real `bacalhau` CLI while the peer keeps heartbeating.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

T = TypeVar("T")

# -- wire constants, as NCL.md spells them ---------------------------------------------------------------
SCHEMA_JSON_V1 = 0x01
KEY_TYPE = "Bacalhau-Type"
KEY_LEGACY_TYPE = "Type"
KEY_ENCODING = "Bacalhau-PayloadEncoding"
KEY_LEGACY_ENCODING = "PayloadEncoding"
KEY_SOURCE = "Bacalhau-Source"
KEY_EVENT_TIME = "Bacalhau-EventTime"
KEY_SEQ = "Bacalhau-SeqNum"
KEY_MESSAGE_ID = "Bacalhau-MessageID"
KEY_ERROR_CODE = "Bacalhau-ErrorCode"
KEY_STATUS_CODE = "Bacalhau-StatusCode"

PROTOCOL_NCL_V1 = "ncl/v1"
PROTOCOL_BPROTOCOL_V2 = "bprotocol/v2"

# ExecutionStateType / ExecutionDesiredStateType integers (pkg/models/execution.go, NCL.md §1.5, §1.11)
EXEC_NEW, EXEC_ASK_FOR_BID, EXEC_ASK_FOR_BID_ACCEPTED, EXEC_BID_ACCEPTED = 1, 2, 3, 5
EXEC_COMPLETED, EXEC_FAILED = 9, 10
DESIRED_PENDING, DESIRED_RUNNING, DESIRED_STOPPED = 0, 1, 2

GO_NETWORK_TYPES = ("Default", "None", "Host", "Full", "HTTP", "Bridge")
GO_JOB_TYPES = ("batch", "service", "daemon", "ops")

LEGACY_REGISTRATION_TIMEOUT_S = 2.0  # pkg/nats/proxy/management_proxy.go
REQUEST_TIMEOUT_S = 10.0  # compute request timeout (handshake, heartbeat, info, shutdown)
ACK_WAIT_S = 30.0  # ordered publisher AckWait
NACK_DELAY_NS = 100_000_000  # first nack delay, 100 ms


# -- subjects (NCL.md §1.2) --------------------------------------------------------------------------------
def subject_out_ctrl(node_id: str) -> str:
    """Control requests compute -> orchestrator."""
    return f"bacalhau.global.compute.{node_id}.out.ctrl"


def subject_out_msgs(node_id: str) -> str:
    """Data-plane messages compute -> orchestrator (acked)."""
    return f"bacalhau.global.compute.{node_id}.out.msgs"


def subject_in_msgs(node_id: str) -> str:
    """Data-plane messages orchestrator -> compute (acked)."""
    return f"bacalhau.global.compute.{node_id}.in.msgs"


def subject_legacy_register(node_id: str) -> str:
    """The bprotocol registration a Go compute tries first."""
    return f"node.management.{node_id}.RegisterNode/v1"


# -- envelope (NCL.md §1.3) --------------------------------------------------------------------------------
async def end_other_tasks() -> None:
    """Cancel and await every other task of the running loop, as asyncio.run does before it closes one.

    A peer's loop is closed right after its NATS connection: nats-py's subscription readers, cancelled
    but not yet run, were otherwise finished by the garbage collector later, on the closed loop ("Event
    loop is closed"), and pytest blamed that unraisable exception on whichever test was running then.
    """
    current = asyncio.current_task()
    rest = [task for task in asyncio.all_tasks() if task is not current]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


class FrameError(ValueError):
    """The bytes are not a valid NCL v1 JSON envelope (too short, unknown schema, CRC mismatch, bad JSON)."""


def go_time_now() -> str:
    """The current UTC time as Go's RFC3339Nano (nine fraction digits, `Z`)."""
    ns = time.time_ns()
    seconds, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def encode_frame(
    msg_type: str, payload: Any, *, source: str, extra_meta: Mapping[str, str] | None = None
) -> tuple[dict[str, str], bytes]:
    """(NATS headers, body) of an NCL message: 0x01 + big-endian CRC-32 IEEE of the JSON + the JSON."""
    meta = {
        KEY_TYPE: msg_type,
        KEY_LEGACY_TYPE: msg_type,
        KEY_ENCODING: "json",
        KEY_LEGACY_ENCODING: "json",
        KEY_SOURCE: source,
        KEY_EVENT_TIME: str(time.time_ns()),
        **(extra_meta or {}),
    }
    body = json.dumps({"metadata": meta, "payload": payload}, separators=(",", ":")).encode()
    return meta, bytes([SCHEMA_JSON_V1]) + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF) + body


def decode_frame(data: bytes) -> tuple[dict[str, str], Any]:
    """(metadata, payload) of an NCL v1 JSON envelope; raises FrameError as Go's decoder would refuse it."""
    if len(data) < 5:
        raise FrameError(f"too short: {len(data)} bytes")
    if data[0] != SCHEMA_JSON_V1:
        raise FrameError(f"unsupported schema version byte {data[0]:#04x}")
    (crc,) = struct.unpack(">I", data[1:5])
    if zlib.crc32(data[5:]) & 0xFFFFFFFF != crc:
        raise FrameError("CRC check failed")
    try:
        envelope = json.loads(data[5:])
    except ValueError as exc:
        raise FrameError(f"body is not JSON: {exc}") from exc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("metadata"), dict) or "payload" not in envelope:
        raise FrameError(f"not an envelope: {str(envelope)[:200]}")
    meta = envelope["metadata"]
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise FrameError(f"metadata values must be strings: {meta}")
    if not (meta.get(KEY_TYPE) or meta.get(KEY_LEGACY_TYPE)):
        raise FrameError("no Bacalhau-Type (nor legacy Type) in the metadata")
    if (meta.get(KEY_ENCODING) or meta.get(KEY_LEGACY_ENCODING)) != "json":
        raise FrameError(f"unsupported payload encoding {meta.get(KEY_ENCODING)!r}")
    return meta, envelope["payload"]


def resources(cpu: float = 0.0, memory: int = 0, disk: int = 0, gpu: int = 0) -> dict[str, Any]:
    """A Go `models.Resources` JSON object (every field omitempty, so zero resources are `{}`)."""
    out: dict[str, Any] = {}
    if cpu:
        out["CPU"] = cpu
    if memory:
        out["Memory"] = memory
    if disk:
        out["Disk"] = disk
    if gpu:
        out["GPU"] = gpu
    return out


def event(message: str, topic: str = "Execution", details: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Go `models.Event` JSON object."""
    out: dict[str, Any] = {"Message": message, "Topic": topic, "Timestamp": go_time_now()}
    if details:
        out["Details"] = dict(details)
    return out


# -- what a Go compute accepts in AskForBid (NCL.md §2.1, §1.5, item 11) -----------------------------------
def go_compute_objections(execution: Any) -> list[str]:
    """Why a Go v1.9 compute would refuse this AskForBid execution (empty list: it would create it).

    NCL.md §2.1: ComputeState New (1) or BidAccepted (5), Revision <= 1, the execution and its job validate
    (IDs, namespace, job type, tasks), `Job.Meta` a JSON object (Go assigns into it; null would panic),
    `Job.State.StateType` a string name, `Task.Network.Type` a known string.
    """
    problems: list[str] = []
    if not isinstance(execution, dict):
        return [f"Execution is {type(execution).__name__}, not an object"]
    compute_state = (execution.get("ComputeState") or {}).get("StateType")
    if compute_state not in (EXEC_NEW, EXEC_BID_ACCEPTED):
        problems.append(
            f"Execution.ComputeState.StateType is {compute_state!r}; a Go compute's CreateExecution only accepts "
            f"New ({EXEC_NEW}) or BidAccepted ({EXEC_BID_ACCEPTED}) (pkg/compute/store/utils.go ValidateNewExecution)"
        )
    desired = (execution.get("DesiredState") or {}).get("StateType")
    if not isinstance(desired, int) or desired not in (DESIRED_PENDING, DESIRED_RUNNING):
        problems.append(f"Execution.DesiredState.StateType is {desired!r}; expected Pending (0) or Running (1)")
    revision = execution.get("Revision", 0)
    if not isinstance(revision, int) or revision > 1:
        problems.append(f"Execution.Revision is {revision!r}; Go requires <= 1")
    for key in ("ID", "Namespace", "JobID"):
        value = execution.get(key)
        if not isinstance(value, str) or not value or " " in value:
            problems.append(f"Execution.{key} is {value!r}; Go requires a non-blank string without spaces")
    job = execution.get("Job")
    if not isinstance(job, dict):
        problems.append(f"Execution.Job is {job!r}; Go refuses 'job is missing in the execution'")
        return problems
    if not isinstance(job.get("Meta"), dict):
        problems.append(f"Execution.Job.Meta is {job.get('Meta')!r}; Go writes into it and needs a JSON object")
    state_type = (job.get("State") or {}).get("StateType")
    if not isinstance(state_type, str):
        problems.append(f"Execution.Job.State.StateType is {state_type!r}; Go's JobStateType unmarshals a string name")
    for key in ("ID", "Name", "Namespace"):
        if not isinstance(job.get(key), str) or not job.get(key):
            problems.append(f"Execution.Job.{key} is {job.get(key)!r}; Go requires it")
    if job.get("Type") not in GO_JOB_TYPES:
        problems.append(f"Execution.Job.Type is {job.get('Type')!r}; Go requires one of {GO_JOB_TYPES}")
    tasks = job.get("Tasks")
    if not isinstance(tasks, list) or not tasks:
        problems.append(f"Execution.Job.Tasks is {tasks!r}; Go requires at least one task")
        return problems
    for task in tasks:
        network = (task or {}).get("Network")
        if network is not None and network.get("Type") not in (None, *GO_NETWORK_TYPES):
            problems.append(f"Task.Network.Type is {network.get('Type')!r}; Go accepts {GO_NETWORK_TYPES}")
        engine = (task or {}).get("Engine") or {}
        if not isinstance(engine.get("Type"), str) or not engine.get("Type"):
            problems.append(f"Task.Engine.Type is {engine.get('Type')!r}; Go requires it")
    return problems


# -- results of the peer's requests -------------------------------------------------------------------------
@dataclass
class Reply:
    """A decoded control-plane response (an NCL envelope) and the NATS headers it came with."""

    meta: dict[str, str]
    payload: Any
    headers: dict[str, str]
    raw: bytes

    @property
    def type(self) -> str:
        """The response's `Bacalhau-Type`."""
        return self.meta.get(KEY_TYPE) or self.meta.get(KEY_LEGACY_TYPE, "")

    @property
    def is_error(self) -> bool:
        """Whether the orchestrator answered with a BacError envelope."""
        return self.type == "BacError"

    @property
    def error_code(self) -> str:
        """The BacError `Code` ('' for a normal response)."""
        return str(self.payload.get("Code", "")) if self.is_error and isinstance(self.payload, dict) else ""


@dataclass
class Ack:
    """What came back to the reply inbox of a data-plane publish, parsed as Go's `ParseResult` does."""

    raw: bytes
    headers: dict[str, str]
    no_responders: bool = False
    error: str | None = None
    body: Any = None

    @property
    def ok(self) -> bool:
        """An ack `{}` (not a nack, not no-responders)."""
        return not self.no_responders and self.error is None


@dataclass
class Received:
    """A data-plane message the orchestrator sent to this peer, and how the peer answered it."""

    subject: str
    reply: str
    headers: dict[str, str]
    meta: dict[str, str]
    payload: Any
    answered_with: bytes = b""
    decode_error: str | None = None

    @property
    def type(self) -> str:
        """The message's `Bacalhau-Type`."""
        return self.meta.get(KEY_TYPE) or self.meta.get(KEY_LEGACY_TYPE, "")

    @property
    def seq(self) -> int | None:
        """The orchestrator's `Bacalhau-SeqNum` (None if absent)."""
        raw = self.meta.get(KEY_SEQ)
        return int(raw) if raw is not None and raw.isdigit() else None


@dataclass
class HeartbeatLog:
    """What the background heartbeats got back."""

    sent: int = 0
    answered: int = 0
    errors: list[str] = field(default_factory=list)


class GoStyleCompute:
    """A Go-shaped NCL v1 compute node: handshake, heartbeats, acked data plane, shutdown notice."""

    def __init__(
        self,
        node_id: str,
        nats_url: str,
        *,
        labels: Mapping[str, str] | None = None,
        engines: tuple[str, ...] = ("docker", "wasm"),
        publishers: tuple[str, ...] = ("noop", "local"),
        storage_sources: tuple[str, ...] = ("inline", "urlDownload"),
        heartbeat_interval_s: float = 15.0,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        ack_wait_s: float = ACK_WAIT_S,
    ) -> None:
        self.node_id = node_id
        self.nats_url = nats_url
        self.labels = dict(labels or {})
        self.engines = list(engines)
        self.publishers = list(publishers)
        self.storage_sources = list(storage_sources)
        self.heartbeat_interval_s = heartbeat_interval_s
        self.request_timeout_s = request_timeout_s
        self.ack_wait_s = ack_wait_s
        self.max_capacity = resources(cpu=4.0, memory=8 * 1024**3, disk=50 * 1024**3)
        # What heartbeats report (Go: the capacity tracker's free and queued resources).
        self.available_capacity = dict(self.max_capacity)
        self.queue_used_capacity: dict[str, Any] = {}
        self.start_time = go_time_now()

        # Sequence tracking (NCL.md §1.8): the last orchestrator Bacalhau-SeqNum processed, and this peer's own
        # local event log, whose numbers label what it publishes (sparse: not every local event is a message).
        self.last_orchestrator_seq = 0
        self.local_event_seq = 0
        self.handshake_required = False
        self.heartbeats = HeartbeatLog()
        self.received: queue.Queue[Received] = queue.Queue()

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"go-peer-{node_id}", daemon=True)
        self._nc: NATS | None = None
        self._inbox = ""
        self._pending_acks: dict[str, asyncio.Future[Msg]] = {}
        self._heartbeat_task: asyncio.Task[None] | None = None

    # -- the peer's thread ----------------------------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """Run `coro` on the peer's loop and wait for its result (the test thread blocks, the peer does not)."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=timeout_s)
        except TimeoutError:
            future.cancel()
            raise

    def start(self) -> GoStyleCompute:
        """Start the peer's event loop (no network traffic yet)."""
        if not self._thread.is_alive():
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop heartbeating, close the NATS connection and the peer's loop (no shutdown notice)."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._close_async(), timeout_s=10.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10.0)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()

    async def _close_async(self) -> None:
        await self._stop_heartbeats_async()
        await self._disconnect_async()
        await end_other_tasks()

    # -- NodeInfo (NCL.md §1.5 referenced models) ----------------------------------------------------------
    def node_info(self) -> dict[str, Any]:
        """This peer's NodeInfo exactly as Go marshals it (ComputeNodeInfo with lower-case `address`)."""
        return {
            "NodeID": self.node_id,
            "NodeType": "Compute",
            "Labels": dict(self.labels),
            "SupportedProtocols": [PROTOCOL_BPROTOCOL_V2, PROTOCOL_NCL_V1],
            "ComputeNodeInfo": {
                "ExecutionEngines": list(self.engines),
                "Publishers": list(self.publishers),
                "StorageSources": list(self.storage_sources),
                "MaxCapacity": dict(self.max_capacity),
                "QueueCapacity": {},
                "AvailableCapacity": dict(self.max_capacity),
                "MaxJobRequirements": dict(self.max_capacity),
                "RunningExecutions": 0,
                "EnqueuedExecutions": 0,
                "address": "127.0.0.1",
            },
            "BacalhauVersion": {
                "Major": "1",
                "Minor": "9",
                "GitVersion": "v1.9.3",
                "GitCommit": "e28960c758bc",
                "BuildDate": "2026-08-19T00:00:00Z",
                "GOOS": "linux",
                "GOARCH": "amd64",
            },
        }

    # -- step 1: the legacy bprotocol probe ----------------------------------------------------------------
    def probe_legacy_registration(self) -> str:
        """Send `node.management.<id>.RegisterNode/v1` on a separate connection, as Go does first.

        Returns "no responders", "timeout", or the raw reply text (a Go v1.9 orchestrator would answer
        `{"value": {"Accepted": false, ...}}`).
        """
        return self._call(self._probe_legacy_async(), timeout_s=LEGACY_REGISTRATION_TIMEOUT_S + 10)

    async def _probe_legacy_async(self) -> str:
        nc = await nats.connect(self.nats_url, name=self.node_id, allow_reconnect=False, connect_timeout=5)
        try:
            body = json.dumps({"Info": self.node_info()}).encode()
            reply = await nc.request(subject_legacy_register(self.node_id), body, timeout=LEGACY_REGISTRATION_TIMEOUT_S)
            return reply.data.decode(errors="replace")
        except NoRespondersError:
            return "no responders"
        except TimeoutError:
            return "timeout"
        finally:
            await nc.close()

    # -- step 2: connect = fresh connection, subscribe in.msgs, handshake -----------------------------------
    def connect(self) -> Reply:
        """Open a new NATS connection, subscribe to in.msgs, send HandshakeRequest; return the response."""
        return self._call(self._connect_async(), timeout_s=self.request_timeout_s + 10)

    def reconnect(self) -> Reply:
        """What Go does after HandshakeRequired or a failed health check: tear down, connect again."""
        return self.connect()

    async def _connect_async(self) -> Reply:
        await self._stop_heartbeats_async()
        await self._disconnect_async()
        self._nc = await nats.connect(
            self.nats_url, name=self.node_id, max_reconnect_attempts=-1, reconnect_time_wait=0.2, connect_timeout=5
        )
        nc = self._nc

        async def on_incoming(msg: Msg) -> None:
            await self._on_incoming(nc, msg)

        await nc.subscribe(subject_in_msgs(self.node_id), cb=on_incoming)
        self._inbox = self._nc.new_inbox()
        await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_ack)
        await self._nc.flush()
        reply = await self._request_async(
            subject_out_ctrl(self.node_id),
            "transport.HandshakeRequest",
            {
                "NodeInfo": self.node_info(),
                "StartTime": self.start_time,
                "LastOrchestratorSeqNum": self.last_orchestrator_seq,
            },
        )
        if (
            reply.type == "transport.HandshakeResponse"
            and isinstance(reply.payload, dict)
            and reply.payload.get("accepted")
        ):
            # "always trust the orchestrator": the incoming tracker is overwritten with its starting seq.
            self.last_orchestrator_seq = int(reply.payload.get("LastOrchestratorSeqNum") or 0)
            self.handshake_required = False
        return reply

    async def _disconnect_async(self) -> None:
        for future in self._pending_acks.values():
            if not future.done():
                future.cancel()
        self._pending_acks.clear()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None

    # -- control plane ---------------------------------------------------------------------------------------
    def request_ctrl(self, msg_type: str, payload: Any, *, node_id: str | None = None) -> Reply:
        """Any control request on `...<node_id>.out.ctrl` (default: this peer's subject)."""
        subject = subject_out_ctrl(node_id or self.node_id)
        return self._call(self._request_async(subject, msg_type, payload), timeout_s=self.request_timeout_s + 5)

    def request_raw(self, subject: str, data: bytes, headers: Mapping[str, str] | None = None) -> Reply:
        """Send hand-made bytes as a request and decode the envelope that comes back."""
        return self._call(
            self._request_raw_async(subject, data, dict(headers or {})), timeout_s=self.request_timeout_s + 5
        )

    async def _request_async(self, subject: str, msg_type: str, payload: Any) -> Reply:
        meta, data = encode_frame(msg_type, payload, source=self.node_id)
        return await self._request_raw_async(subject, data, meta)

    async def _request_raw_async(self, subject: str, data: bytes, headers: dict[str, str]) -> Reply:
        assert self._nc is not None, "connect() first"
        msg = await self._nc.request(subject, data, timeout=self.request_timeout_s, headers=headers or None)
        meta, payload = decode_frame(msg.data)
        return Reply(meta=meta, payload=payload, headers=dict(msg.headers or {}), raw=msg.data)

    def heartbeat_payload(self, node_id: str | None = None) -> dict[str, Any]:
        """HeartbeatRequest as Go sends it (QueueUsedCapacity here, QueueCapacity in NodeInfo)."""
        return {
            "NodeID": node_id or self.node_id,
            "AvailableCapacity": dict(self.available_capacity),
            "QueueUsedCapacity": dict(self.queue_used_capacity),
            "LastOrchestratorSeqNum": self.last_orchestrator_seq,
        }

    def heartbeat(self, node_id: str | None = None) -> Reply:
        """One HeartbeatRequest (as `node_id`, default this peer) on that node's out.ctrl subject."""
        return self.request_ctrl("transport.HeartbeatRequest", self.heartbeat_payload(node_id), node_id=node_id)

    def start_heartbeats(self) -> None:
        """Heartbeat every `heartbeat_interval_s` in the background; the first one after one interval, as Go."""
        self._call(self._start_heartbeats_async(), timeout_s=5.0)

    def stop_heartbeats(self) -> None:
        """Stop the background heartbeats (a compute that hangs or loses its link)."""
        self._call(self._stop_heartbeats_async(), timeout_s=10.0)

    async def _start_heartbeats_async(self) -> None:
        await self._stop_heartbeats_async()
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())

    async def _stop_heartbeats_async(self) -> None:
        task, self._heartbeat_task = self._heartbeat_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval_s)
            self.heartbeats.sent += 1
            try:
                reply = await self._request_async(
                    subject_out_ctrl(self.node_id), "transport.HeartbeatRequest", self.heartbeat_payload()
                )
            except Exception as exc:  # logged and retried next tick, as Go's control plane does
                self.heartbeats.errors.append(repr(exc))
                continue
            if reply.type == "transport.HeartbeatResponse":
                self.heartbeats.answered += 1
            else:
                self.heartbeats.errors.append(f"{reply.type}: {reply.payload}")
                if reply.error_code == "HandshakeRequired":
                    # Go stops the control loop and flags it; the next health check reconnects.
                    self.handshake_required = True
                    return

    def shutdown_notice(self, reason: str = "") -> Reply:
        """transport.ShutdownNoticeRequest, as Go's ControlPlane.Stop sends it."""
        payload: dict[str, Any] = {"NodeID": self.node_id, "LastOrchestratorSeqNum": self.last_orchestrator_seq}
        if reason:
            payload["Reason"] = reason
        self.stop_heartbeats()
        return self.request_ctrl("transport.ShutdownNoticeRequest", payload)

    # -- data plane: compute -> orchestrator -----------------------------------------------------------------
    def next_local_event(self, gap: int = 1) -> int:
        """Advance the peer's local event log by `gap` events; return the newest number."""
        self.local_event_seq += gap
        return self.local_event_seq

    def publish(self, msg_type: str, payload: Any, *, seq: int | None = None) -> tuple[int, Ack]:
        """Publish on out.msgs with `Bacalhau-SeqNum` (default: the next local event) and wait for the ack."""
        number = self.next_local_event() if seq is None else seq
        meta, data = encode_frame(
            msg_type,
            payload,
            source=self.node_id,
            extra_meta={KEY_SEQ: str(number), KEY_MESSAGE_ID: f"seq-{number}"},
        )
        return number, self.publish_raw(data, meta)

    def publish_raw(self, data: bytes, headers: Mapping[str, str] | None = None, *, node_id: str | None = None) -> Ack:
        """Publish hand-made bytes on `...<node_id>.out.msgs` with a reply inbox; return the parsed ack."""
        subject = subject_out_msgs(node_id or self.node_id)
        return self._call(self._publish_async(subject, data, dict(headers or {})), timeout_s=self.ack_wait_s + 5)

    async def _publish_async(self, subject: str, data: bytes, headers: dict[str, str]) -> Ack:
        assert self._nc is not None, "connect() first"
        reply = f"{self._inbox}.{uuid.uuid4()}"
        future: asyncio.Future[Msg] = self._loop.create_future()
        self._pending_acks[reply] = future
        try:
            await self._nc.publish(subject, data, reply=reply, headers=headers or None)
            msg = await asyncio.wait_for(future, self.ack_wait_s)
        finally:
            self._pending_acks.pop(reply, None)
        return parse_ack(msg.data, dict(msg.headers or {}))

    async def _on_ack(self, msg: Msg) -> None:
        future = self._pending_acks.get(msg.subject)
        if future is not None and not future.done():
            future.set_result(msg)

    # Go's compute message creator (NCL.md §1.5): BaseResponse {ExecutionID, JobID, JobType, Events}.
    @staticmethod
    def base_response(execution: Mapping[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
        """ExecutionID/JobID/JobType/Events of a compute -> orchestrator message about `execution`."""
        job = execution.get("Job") or {}
        return {
            "ExecutionID": execution["ID"],
            "JobID": execution["JobID"],
            "JobType": job.get("Type", ""),
            "Events": events,
        }

    def send_bid_result(self, execution: Mapping[str, Any], *, accepted: bool = True) -> tuple[int, Ack]:
        """BidResult (local state AskForBidAccepted/Rejected)."""
        self.next_local_event()  # the execution was created locally (state New): no message for it
        verdict = "accepted" if accepted else "rejected"
        payload = {
            **self.base_response(execution, [event(f"bid {verdict} by {self.node_id}", "Scheduling")]),
            "Accepted": accepted,
        }
        return self.publish("BidResult", payload)

    def run_result_payload(
        self, execution: Mapping[str, Any], *, stdout: str, stderr: str = "", exit_code: int = 0
    ) -> dict[str, Any]:
        """RunResult as Go's compute sends it: PublishResult null here, RunCommandResult with lower-case `stderr`."""
        return {
            **self.base_response(execution, []),
            "PublishResult": None,
            "RunCommandResult": {
                "Stdout": stdout,
                "StdoutTruncated": False,
                "stderr": stderr,
                "StderrTruncated": False,
                "ExitCode": exit_code,
                "ErrorMsg": "",
            },
        }

    def send_run_result(
        self, execution: Mapping[str, Any], *, stdout: str, stderr: str = "", exit_code: int = 0
    ) -> tuple[int, Ack]:
        """RunResult (local state Completed); the local log also passed Running and Publishing."""
        self.next_local_event(gap=2)
        return self.publish(
            "RunResult", self.run_result_payload(execution, stdout=stdout, stderr=stderr, exit_code=exit_code)
        )

    def send_compute_error(self, execution: Mapping[str, Any], message: str) -> tuple[int, Ack]:
        """ComputeError (local state Failed); the error text is Events[0].Message."""
        self.next_local_event()
        payload = self.base_response(execution, [event(message, "Execution", {"FailsExecution": "true"})])
        return self.publish("ComputeError", payload)

    # -- data plane: orchestrator -> compute -----------------------------------------------------------------
    async def _on_incoming(self, nc: NATS, msg: Msg) -> None:
        headers = dict(msg.headers or {})
        try:
            meta, payload = decode_frame(msg.data)
        except FrameError as exc:
            answer = json.dumps({"error": str(exc), "delay": NACK_DELAY_NS}).encode()
            self.received.put(Received(msg.subject, msg.reply, headers, {}, None, answer, decode_error=str(exc)))
            if msg.reply:
                await nc.publish(msg.reply, answer)
            return
        received = Received(msg.subject, msg.reply, headers, meta, payload)
        # Processed (stored locally in Go), then the tracker advances, then the ack (subscriber.go order).
        if received.seq is not None:
            self.last_orchestrator_seq = received.seq
        received.answered_with = b"{}"
        self.received.put(received)
        if msg.reply:
            # A plain publish without headers, as nats.go's msg.Respond (not nats-py's respond(), which
            # would echo the request's headers).
            await nc.publish(msg.reply, b"{}")

    def poll_received(self, msg_type: str | None = None, timeout_s: float = 0.0) -> Received | None:
        """The next message the orchestrator sent (of `msg_type` if given; others are dropped), or None."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                received = self.received.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if msg_type is None or received.type == msg_type:
                return received

    def next_received(self, msg_type: str | None = None, timeout_s: float = 30.0) -> Received:
        """The next message the orchestrator sent (of `msg_type` if given); fail after `timeout_s`."""
        received = self.poll_received(msg_type, timeout_s)
        if received is None:
            raise AssertionError(
                f"{self.node_id}: no {msg_type or 'message'} on {subject_in_msgs(self.node_id)} within {timeout_s:g}s"
            )
        return received


def parse_ack(data: bytes, headers: Mapping[str, str]) -> Ack:
    """Go's `ParseResult`: empty + Status 503 = no responders; JSON with `error` = nack; `{}` = ack."""
    if not data and headers.get("Status") == "503":
        return Ack(raw=data, headers=dict(headers), no_responders=True)
    try:
        body = json.loads(data) if data else {}
    except ValueError:
        return Ack(raw=data, headers=dict(headers), error=f"ack is not JSON: {data[:200]!r}")
    if not isinstance(body, dict):
        return Ack(raw=data, headers=dict(headers), error=f"ack is not a JSON object: {body!r}", body=body)
    error = body.get("error")
    return Ack(raw=data, headers=dict(headers), error=str(error) if error else None, body=body)
