"""Does the node slow down as its store grows? Reads and submissions at 10k, 100k and 1M jobs already stored.

    .venv/bin/python bench/store_scaling.py [--sizes 10000,100000,1000000] [--requests 50] [--duration 3]

For each size, a hybrid node starts on a BACALHAU_DIR whose job store was filled beforehand with that many
finished jobs, one execution each (bench/webui_jobs.py's `fill`: through the store up to 20,000 jobs, rows
in bulk beyond; a million takes several minutes and ~1.6 GB of temp space, deleted afterwards). Then:

    list       GET /api/v1/orchestrator/jobs?limit=10    what `bacalhau job list` asks (--limit 10)
    describe   GET /api/v1/orchestrator/jobs/<id>        what `bacalhau job describe` asks first
               (each the median of `--requests` warm requests on one keep-alive httpx client)
    submit     a short `wrk` run of small WASM jobs (bench/load.py) at `--connections`: accepted/s, p99

and the store's file size (jobs.db with its WAL) and the node's RSS (VmRSS), before and after the submit run.
Side by side: GET on the HTTP floor (bench/http_floor.py) with the same client, the per-request cost of
uvicorn + FastAPI + httpx alone. Targets (issue): list <= 20 ms and describe <= 10 ms at 1M. No assertion.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from http_floor import PATH as FLOOR_PATH
from http_floor import FloorServer
from hybrid_node import HybridNode, rss_mib
from load import JOBS_PATH, WrkResult, log_findings, run_wrk, submit_body
from webui_jobs import fill

TARGET_LIST_MS = 20.0
TARGET_DESCRIBE_MS = 10.0


@dataclass
class SizeResult:
    """Everything measured on one node holding `size` jobs."""

    size: int
    fill_s: float
    store_mb: float
    rss_mib: float  # after start and the reads
    rss_after_load_mib: float
    list_s: list[float]
    describe_s: list[float]
    wrk: WrkResult
    log_findings: dict[str, int]  # WARNING / ERROR lines and tracebacks in the node's log, by kind


def warm_latencies(send: Callable[[], httpx.Response], requests: int, warmup: int = 5) -> list[float]:
    """Seconds per request of `requests` calls of `send` after `warmup` untimed ones; each must answer 200."""
    samples = []
    for i in range(warmup + requests):
        started = time.perf_counter()
        resp = send()
        elapsed = time.perf_counter() - started
        if resp.status_code != 200:
            raise SystemExit(f"{resp.request.method} {resp.request.url} answered {resp.status_code}: {resp.text[:300]}")
        if i >= warmup:
            samples.append(elapsed)
    return samples


def floor_get(requests: int) -> list[float]:
    """GET on the HTTP floor's empty route, on a keep-alive client: the framework's own latency."""
    with FloorServer() as floor, httpx.Client(base_url=floor.url, timeout=30.0) as http:
        return warm_latencies(lambda: http.get(FLOOR_PATH), requests)


def store_mb(data_dir: Path) -> float:
    """Size of the job store on disk (jobs.db and its -wal / -shm), in MB."""
    return sum(p.stat().st_size for p in (data_dir / "orchestrator").glob("jobs.db*")) / 1e6


def measure_size(size: int, *, requests: int, connections: int, duration_s: float, body: bytes) -> SizeResult:
    """Fill a store with `size` jobs, start a node on it, and take every measurement."""
    fill_s = 0.0

    def prepare(data_dir: Path) -> None:
        nonlocal fill_s
        started = time.monotonic()
        fill(data_dir, size)
        fill_s = time.monotonic() - started

    with HybridNode(prepare=prepare, ready_timeout_s=300.0) as node, \
            httpx.Client(base_url=node.url, timeout=60.0) as http:
        listed = http.get(JOBS_PATH, params={"limit": 10}).json()
        ids = [item["ID"] for item in listed["Items"]]
        if not ids:
            raise SystemExit(f"the node with {size} jobs listed none: {listed}")
        list_s = warm_latencies(lambda: http.get(JOBS_PATH, params={"limit": 10}), requests)
        turn = iter(range(10**9))
        describe_s = warm_latencies(lambda: http.get(f"{JOBS_PATH}/{ids[next(turn) % len(ids)]}"), requests)
        store, rss = store_mb(node.data_dir), rss_mib(node.pid)
        wrk = run_wrk(node.url + JOBS_PATH, connections=connections, duration_s=duration_s, method="PUT", body=body)
        return SizeResult(size=size, fill_s=fill_s, store_mb=store, rss_mib=rss, rss_after_load_mib=rss_mib(node.pid),
                          list_s=list_s, describe_s=describe_s, wrk=wrk, log_findings=log_findings(node.log_path))


def measure(sizes: list[int], *, requests: int = 50, connections: int = 200, duration_s: float = 3.0
            ) -> tuple[list[float], list[SizeResult]]:
    """The floor's GET latencies, then each size's results (one node at a time)."""
    body = submit_body()
    floor = floor_get(requests)
    results = []
    for size in sizes:
        print(f"  [store scaling] filling and measuring {size:,} jobs ...", file=sys.stderr, flush=True)
        results.append(measure_size(size, requests=requests, connections=connections, duration_s=duration_s,
                                    body=body))
    return floor, results


def print_results(floor: list[float], results: list[SizeResult], connections: int) -> None:
    """One row per store size, the floor's GET median above them."""
    floor_ms = statistics.median(floor) * 1000
    print(f"\nStore scaling (medians of warm keep-alive requests; HTTP floor GET {floor_ms:.2f} ms)")
    print(f"  {'jobs':>9} {'fill s':>7} {'store MB':>9} {'RSS MiB':>8} {'after load':>10} {'list ms':>8} "
          f"{'describe ms':>11} {'submit/s':>9} {'p99 ms':>8} {'non-2xx':>7} {'sock err':>8}")
    for r in results:
        print(f"  {r.size:>9,} {r.fill_s:>7.0f} {r.store_mb:>9.0f} {r.rss_mib:>8.0f} {r.rss_after_load_mib:>10.0f} "
              f"{statistics.median(r.list_s) * 1000:>8.2f} {statistics.median(r.describe_s) * 1000:>11.2f} "
              f"{r.wrk.accepted_per_s:>9.0f} {r.wrk.latency_ms['99%']:>8.1f} {r.wrk.non_2xx:>7} "
              f"{r.wrk.socket_error_count:>8}")
    print(f"  submit: wrk at {connections} connections; targets at 1M: list <= {TARGET_LIST_MS:.0f} ms, "
          f"describe <= {TARGET_DESCRIBE_MS:.0f} ms")


def main(argv: list[str]) -> int:
    """Measure every size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated store sizes")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per read (default 50)")
    parser.add_argument("--connections", type=int, default=200, help="wrk connections for submit (default 200)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of wrk per size (default 3)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    floor, results = measure(sizes, requests=args.requests, connections=args.connections, duration_s=args.duration)
    print_results(floor, results, args.connections)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
