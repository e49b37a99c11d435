"""Simulated compute nodes for cluster benchmarks: many lightweight NCL peers multiplexed over a few NATS connections.

    python bench/ncl_peers.py --nats nats://127.0.0.1:4222 --nodes 1000 [--connections 8] [--heartbeat-s 15]

Each simulated node does what a compute node does on the wire (NCL.md §1.2-1.7), and nothing else:

    subscribe <id>.in.msgs ──> HandshakeRequest (realistic NodeInfo: engines docker/wasm/noop, large capacity)
    every heartbeat_s (first beat jittered, as our compute does) ──> HeartbeatRequest; HandshakeRequired ──> handshake again
    AskForBid ──> ack {} ──> BidResult(accepted) + RunResult(exit 0) on <id>.out.msgs, numbered 1, 2, 3 ...
    CancelExecution / BidAccepted / BidRejected ──> ack {}

Run as a script it is driven over stdin/stdout by `PeerProcess` (JSON lines): it handshakes every node
(the "storm", with bounded concurrency), prints {"event": "ready", ...}, starts heartbeating, and then
answers one line per command: `report` (counters, heartbeat round trips since the last `mark`),
`mark`, `times` (when each AskForBid arrived and each RunResult was acked, monotonic seconds,
comparable across processes on Linux), `stop`. Frames are built with our own NCL codec.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import nats

from bacalhau.models.clock import rfc3339_nano
from bacalhau.models.execution import RunCommandResult
from bacalhau.models.node import NodeInfo
from bacalhau.transport.ncl import control, data, subjects
from bacalhau.transport.ncl import metadata as meta
from bacalhau.transport.ncl.ack import encode_ack, parse_reply
from bacalhau.transport.ncl.envelope import decode
from bacalhau.transport.ncl.errors import NclError, RemoteError
from bacalhau.transport.ncl.event import Event
from bacalhau.transport.ncl.registry import decode_response, encode_message

REQUEST_TIMEOUT_S = 10.0  # Bacalhau's control-plane RequestTimeout
HANDSHAKE_ATTEMPTS = 5
MAX_BEATS_IN_FLIGHT = 5_000
TiB = 1024**4


def node_info(node_id: str, index: int) -> NodeInfo:
    """What a Python compute node advertises, with capacity large enough never to be the limit."""
    big = {"CPU": 1000.0, "Memory": 4 * TiB, "Disk": 100 * TiB}
    return NodeInfo.model_validate(
        {
            "NodeID": node_id,
            "NodeType": "Compute",
            "Labels": {"bench": "sim", "zone": f"z{index % 10}"},
            "SupportedProtocols": ["ncl/v1"],
            "ComputeNodeInfo": {
                "ExecutionEngines": ["docker", "wasm", "noop"],
                "Publishers": ["noop", "local", "s3", "ipfs"],
                "StorageSources": ["inline", "urlDownload", "s3", "ipfs", "local"],
                "MaxCapacity": big,
                "QueueCapacity": {},
                "AvailableCapacity": big,
                "MaxJobRequirements": big,
                "RunningExecutions": 0,
                "EnqueuedExecutions": 0,
                "address": "127.0.0.1",
            },
            "BacalhauVersion": {"Major": "1", "Minor": "9", "GitVersion": "v1.9.0-sim", "GOOS": "linux", "GOARCH": "amd64"},
        }
    )


class SimNode:
    """One simulated compute node's protocol state."""

    __slots__ = ("asks", "conn", "connected", "index", "info", "last_orch_seq", "node_id", "out_seq")

    def __init__(self, index: int, node_id: str, conn: int) -> None:
        self.index = index
        self.node_id = node_id
        self.conn = conn
        self.info = node_info(node_id, index)
        self.last_orch_seq = 0  # last Bacalhau-SeqNum handled from the orchestrator
        self.out_seq = 0  # last seq this node numbered one of its own messages with
        self.connected = False
        self.asks = 0


class PeerFleet:
    """Simulated nodes multiplexed over `connections` NATS clients, with counters for the benchmarks."""

    def __init__(self, *, nats_url: str, node_ids: Sequence[str], connections: int, heartbeat_s: float,
                 handshake_concurrency: int, seed: int = 0) -> None:
        self._url = nats_url
        count = max(1, min(connections, len(node_ids)))
        self.nodes = [SimNode(i, node_id, i % count) for i, node_id in enumerate(node_ids)]
        self._by_id = {n.node_id: n for n in self.nodes}
        self._ncs: list[Any] = [None] * count
        self._inboxes = [""] * count
        self._heartbeat_s = heartbeat_s
        self._handshake_sem = asyncio.Semaphore(max(1, handshake_concurrency))
        self._rng = random.Random(seed)
        self._beats: list[tuple[float, int]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._beats_in_flight = 0
        self.counters: dict[str, int] = dict.fromkeys(
            ("handshakes", "handshake_failures", "handshake_required", "hb_sent", "hb_ok", "hb_timeout", "hb_error",
             "hb_skipped", "asks", "duplicates", "other_msgs", "bid_acks", "run_acks", "nacks", "bad_frames"), 0)
        self.hb_rtt_ms: list[float] = []
        self.handshake_ms: list[float] = []
        self.ask_times: list[float] = []
        self.run_ack_times: list[float] = []

    # --- lifecycle ---------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the connections, subscribe every node's in.msgs (before its handshake) and the ack inboxes."""
        for k in range(len(self._ncs)):
            nc = await nats.connect(self._url, name=f"ncl-peers-{os.getpid()}-{k}", max_reconnect_attempts=-1,
                                    pending_size=64 * 1024 * 1024)
            self._ncs[k] = nc
            self._inboxes[k] = nc.new_inbox()
            await nc.subscribe(f"{self._inboxes[k]}.>", cb=self._on_ack)
        for node in self.nodes:
            await self._ncs[node.conn].subscribe(subjects.compute_in_msgs(node.node_id), cb=self._on_in_msg)
        for nc in self._ncs:
            await nc.flush()

    async def handshake_all(self) -> dict[str, Any]:
        """Handshake every node at once (bounded concurrency): the storm after an orchestrator restart."""
        start = time.monotonic()
        await asyncio.gather(*(self._handshake(node) for node in self.nodes))
        duration = time.monotonic() - start
        ok = sum(1 for n in self.nodes if n.connected)
        return {"nodes": len(self.nodes), "connected": ok, "duration_s": duration,
                "handshake_ms": self.handshake_ms, "failures": self.counters["handshake_failures"]}

    def start_heartbeats(self) -> None:
        """Beat every heartbeat_s from now on; the first beat of each node jittered in [0.1, 1] x interval."""
        now = time.monotonic()
        self._beats = [(now + self._rng.uniform(0.1, 1.0) * self._heartbeat_s, n.index) for n in self.nodes]
        heapq.heapify(self._beats)
        self._spawn(self._beat_loop())

    async def stop(self) -> None:
        """Cancel everything and close the connections (the nodes simply vanish)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for nc in self._ncs:
            if nc is not None:
                with contextlib.suppress(Exception):
                    await nc.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- control plane ------------------------------------------------------------------------------

    async def _request(self, node: SimNode, payload: Any, expected: type[Any]) -> Any:
        headers, body = encode_message(payload, source=node.node_id)
        reply = await self._ncs[node.conn].request(subjects.compute_out_ctrl(node.node_id), body, headers=headers,
                                                   timeout=REQUEST_TIMEOUT_S)
        return decode_response(reply.data, expected)

    async def _handshake(self, node: SimNode) -> None:
        async with self._handshake_sem:
            for attempt in range(HANDSHAKE_ATTEMPTS):
                request = control.HandshakeRequest(
                    NodeInfo=node.info, StartTime=rfc3339_nano(time.time_ns()),
                    LastOrchestratorSeqNum=node.last_orch_seq, ActiveExecutionIDs=[], LastComputeSeqNum=node.out_seq,
                )
                t0 = time.perf_counter()
                try:
                    response = await self._request(node, request, control.HandshakeResponse)
                except (TimeoutError, NclError, RemoteError, nats.errors.Error) as exc:
                    self.counters["handshake_failures"] += 1
                    print(f"handshake {node.node_id} attempt {attempt + 1}: {type(exc).__name__}: {exc}", file=sys.stderr)
                    await asyncio.sleep(min(10.0, 0.5 * 2**attempt))
                    continue
                self.handshake_ms.append((time.perf_counter() - t0) * 1000)
                if response.accepted:
                    node.last_orch_seq = response.starting_orchestrator_seq_num
                    node.connected = True
                    self.counters["handshakes"] += 1
                    return
                self.counters["handshake_failures"] += 1
                print(f"handshake {node.node_id} rejected: {response.reason}", file=sys.stderr)
                return

    async def _beat_loop(self) -> None:
        while True:
            now = time.monotonic()
            while self._beats and self._beats[0][0] <= now:
                due, index = heapq.heappop(self._beats)
                heapq.heappush(self._beats, (due + self._heartbeat_s, index))
                node = self.nodes[index]
                if not node.connected:
                    continue
                if self._beats_in_flight >= MAX_BEATS_IN_FLIGHT:
                    self.counters["hb_skipped"] += 1
                    continue
                self._beats_in_flight += 1
                self._spawn(self._beat(node))
            delay = self._beats[0][0] - time.monotonic() if self._beats else 1.0
            await asyncio.sleep(min(max(delay, 0.0), 0.05))

    async def _beat(self, node: SimNode) -> None:
        info = node.info.compute_node_info
        assert info is not None
        request = control.HeartbeatRequest(NodeID=node.node_id, AvailableCapacity=info.available_capacity,
                                           QueueUsedCapacity=info.queue_capacity,
                                           LastOrchestratorSeqNum=node.last_orch_seq)
        self.counters["hb_sent"] += 1
        t0 = time.perf_counter()
        try:
            await self._request(node, request, control.HeartbeatResponse)
        except TimeoutError:
            self.counters["hb_timeout"] += 1
        except RemoteError as exc:
            if exc.handshake_required:
                self.counters["handshake_required"] += 1
                node.connected = False
                self._spawn(self._handshake(node))
            else:
                self.counters["hb_error"] += 1
        except (NclError, nats.errors.Error):
            self.counters["hb_error"] += 1
        else:
            self.counters["hb_ok"] += 1
            self.hb_rtt_ms.append((time.perf_counter() - t0) * 1000)
        finally:
            self._beats_in_flight -= 1

    # --- data plane ---------------------------------------------------------------------------------

    async def _on_in_msg(self, msg: Any) -> None:
        node = self._by_id.get(msg.subject.split(".")[3])
        nc = self._ncs[node.conn] if node is not None else None
        if node is None or nc is None:
            return
        try:
            envelope = decode(msg.data)
        except NclError:
            self.counters["bad_frames"] += 1
            return
        seq = meta.seq_num(envelope.metadata)
        if seq is not None and seq <= node.last_orch_seq:
            self.counters["duplicates"] += 1
            if msg.reply:
                await nc.publish(msg.reply, encode_ack())
            return
        kind = meta.message_type(envelope.metadata)
        if kind == "AskForBid":
            execution = envelope.payload["Execution"]
            job = execution["Job"]
            self.ask_times.append(time.monotonic())
            self.counters["asks"] += 1
            node.asks += 1
            if seq is not None:
                node.last_orch_seq = seq
            if msg.reply:
                await nc.publish(msg.reply, encode_ack())
            ids = {"ExecutionID": execution["ID"], "JobID": job["ID"], "JobType": job["Type"]}
            await self._send(node, data.BidResult(**ids, Events=[_event("bid accepted", "Scheduling")], Accepted=True),
                             "bid")
            await self._send(node, data.RunResult(**ids, Events=[_event("Completed successfully", "Execution")],
                                                  RunCommandResult=RunCommandResult(ExitCode=0)), "run")
            return
        self.counters["other_msgs"] += 1
        if seq is not None:
            node.last_orch_seq = seq
        if msg.reply:
            await nc.publish(msg.reply, encode_ack())

    async def _send(self, node: SimNode, payload: Any, kind: str) -> None:
        node.out_seq += 1
        seq = node.out_seq
        headers, body = encode_message(payload, source=node.node_id, metadata=meta.data_plane_metadata(seq))
        reply = f"{self._inboxes[node.conn]}.{kind}.{node.index}.{seq}"
        await self._ncs[node.conn].publish(subjects.compute_out_msgs(node.node_id), body, reply=reply, headers=headers)

    async def _on_ack(self, msg: Any) -> None:
        kind = msg.subject.split(".")[-3]
        try:
            ok = parse_reply(msg.data, msg.headers).ok
        except NclError:
            ok = False
        if not ok:
            self.counters["nacks"] += 1
        elif kind == "run":
            self.counters["run_acks"] += 1
            self.run_ack_times.append(time.monotonic())
        else:
            self.counters["bid_acks"] += 1

    # --- reports ------------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """Counters, heartbeat round trips since the last mark, and how the work spread over the nodes."""
        worked = [n.asks for n in self.nodes if n.asks]
        return {"event": "report", "at": time.monotonic(), **self.counters, "hb_rtt_ms": self.hb_rtt_ms,
                "connected": sum(1 for n in self.nodes if n.connected),
                "nodes_with_work": len(worked), "max_asks_per_node": max(worked, default=0)}

    def mark(self) -> None:
        """Start a new window for heartbeat round trips."""
        self.hb_rtt_ms = []


def _event(message: str, topic: str) -> Event:
    return Event(Message=message, Topic=topic, Timestamp=rfc3339_nano(time.time_ns()))


# --- the peers process --------------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    ids = [f"{args.prefix}-{i:05d}" for i in range(args.first, args.first + args.nodes)]
    fleet = PeerFleet(nats_url=args.nats, node_ids=ids, connections=args.connections, heartbeat_s=args.heartbeat_s,
                      handshake_concurrency=args.handshake_concurrency, seed=args.first)
    await fleet.connect()
    storm = await fleet.handshake_all()
    fleet.start_heartbeats()
    _emit({"event": "ready", **storm})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    deadline = time.monotonic() + args.max_runtime_s
    try:
        while time.monotonic() < deadline:
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=deadline - time.monotonic())
            except TimeoutError:
                break
            command = line.decode().strip()
            if command in ("", "stop"):
                break  # EOF: the driver went away
            if command == "report":
                _emit(fleet.report())
            elif command == "mark":
                fleet.mark()
                _emit({"event": "marked"})
            elif command == "times":
                _emit({"event": "times", "ask_times": fleet.ask_times, "run_ack_times": fleet.run_ack_times})
            else:
                _emit({"event": "error", "error": f"unknown command {command!r}"})
    finally:
        await fleet.stop()


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class PeerProcess:
    """Drives a `ncl_peers.py` process from a benchmark: start, wait until every node shook hands, query."""

    def __init__(self, *, nats_url: str, nodes: int, first: int = 0, prefix: str = "sim", connections: int = 8,
                 heartbeat_s: float = 15.0, handshake_concurrency: int = 200, max_runtime_s: float = 3600.0,
                 address_space_bytes: int = 4 * 1024**3) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--nats", nats_url, "--nodes", str(nodes),
               "--first", str(first), "--prefix", prefix, "--connections", str(connections),
               "--heartbeat-s", str(heartbeat_s), "--handshake-concurrency", str(handshake_concurrency),
               "--max-runtime-s", str(max_runtime_s)]
        from cluster_env import limit_address_space

        self.node_ids = [f"{prefix}-{i:05d}" for i in range(first, first + nodes)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     start_new_session=True, preexec_fn=limit_address_space(address_space_bytes))
        self._lines: Queue[str] = Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        """The peers process's pid."""
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def _next(self, event: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except Empty:
                raise SystemExit(f"simulated nodes: no {event!r} within {timeout_s:g}s") from None
            obj: dict[str, Any] = json.loads(line)
            if obj.get("event") == event:
                return obj

    def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        """Block until every node handshook (or gave up); returns the storm's figures."""
        return self._next("ready", timeout_s)

    def ask(self, command: str, reply_event: str, timeout_s: float = 30.0) -> dict[str, Any]:
        """Send a command line and return the reply."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._next(reply_event, timeout_s)

    def report(self) -> dict[str, Any]:
        """Counters and heartbeat round trips since the last mark."""
        return self.ask("report", "report")

    def close(self) -> None:
        """Stop the process (the nodes vanish without a shutdown notice)."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self.proc.stdin is not None
                self.proc.stdin.write("stop\n")
                self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self) -> PeerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str]) -> int:
    """Run simulated nodes until told to stop (or --max-runtime-s)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nats", required=True, help="NATS URL of the orchestrator")
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--first", type=int, default=0, help="index of the first node (for several processes)")
    parser.add_argument("--prefix", default="sim", help="node IDs are <prefix>-<index>")
    parser.add_argument("--connections", type=int, default=8, help="NATS connections the nodes share")
    parser.add_argument("--heartbeat-s", type=float, default=15.0)
    parser.add_argument("--handshake-concurrency", type=int, default=200)
    parser.add_argument("--max-runtime-s", type=float, default=3600.0, help="exit after this long in any case")
    asyncio.run(_serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
