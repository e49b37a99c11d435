"""Placements per second: a queue of single-execution noop jobs over many simulated compute nodes.

    .venv/bin/python bench/cluster_placements.py [--jobs 10000] [--nodes 1000] [--concurrency 32]
    .venv/bin/python bench/cluster_placements.py --quick          # 1,000 jobs, 100 nodes

Two modes, each two runs on a fresh `bacalhau serve --orchestrator` (embedded nats-server) started as a
subprocess -- baseline: the same N jobs placed on ONE simulated node; measured: over M nodes (default 1,000):
  queue (the issue's measure)  N jobs are submitted while no node is connected, so each is Queued
      (QueueTimeout 1 h); then the nodes connect and the queue is drained. Placements/s is the rate at
      which AskForBids reach the nodes, first to last and over the middle 80 % (by then every node has
      joined: the first node's arrival wakes the queue, the rest join within the handshake storm).
  api  N jobs submitted through the API while the nodes are connected: ingest and placement together,
      bounded by the API (each PUT validates, stores the job and its evaluation).
The simulated nodes live in one separate process (bench/ncl_peers.py: NCL over a few NATS connections,
handshake, 15 s heartbeats, every AskForBid acked and answered at once with BidResult(accepted) +
RunResult, so executions complete). Jobs are submitted through `PUT /api/v1/orchestrator/jobs` as fast
as `--concurrency` requests in flight allow.

Why this baseline: the job store, the API, the NATS data plane and the peers are identical in both
runs; only the number of nodes the scheduler must filter and rank for every evaluation (and the
orchestrator keeps live) changes. The ratio is what 1,000 nodes cost the scheduling pipeline.

Placements/s = AskForBid messages received by the simulated nodes per second, from the first submit
to the last AskForBid (and over the middle 80 % of them: the steady rate). Executions completed/s =
RunResults acked by the orchestrator per second; jobs Completed/s from the jobs' own ModifyTime.
Target: >= 2,000 placements/s on 2 cores (Nomad's C2M: ~1,500/s with 3 schedulers). No assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from ncl_peers import PeerProcess

from cluster_env import ProcSample, Profiler, RssGuard, ServeProcess, children

TARGET_PLACEMENTS_S = 2000.0
NOOP_JOB: dict[str, Any] = {
    "Type": "batch",
    "Count": 1,
    "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}, "Publisher": {"Type": "noop"}}],
}
# The same job, willing to wait an hour in the queue for a node.
QUEUED_JOB: dict[str, Any] = {
    **NOOP_JOB,
    "Tasks": [{**NOOP_JOB["Tasks"][0], "Timeouts": {"QueueTimeout": 3600}}],
}


@dataclass
class RunFigures:
    """What one run measured."""

    nodes: int
    jobs: int
    submit_s: float = 0.0
    submit_ms: list[float] = field(default_factory=list)
    errors: int = 0
    placement_s: float = 0.0
    placement_mid_s: float = 0.0
    asks: int = 0
    executions_s: float = 0.0
    run_acks: int = 0
    jobs_completed: int = 0
    jobs_completed_s: float = 0.0
    orchestrator_cpu_pct: float = 0.0
    nats_cpu_pct: float = 0.0
    peers_cpu_pct: float = 0.0
    driver_cpu_pct: float = 0.0
    orchestrator_cpu_ms_per_job: float = 0.0
    peak_rss_mb: float = 0.0
    nodes_with_work: int = 0
    max_asks_per_node: int = 0
    handshake_storm_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    profile: str = ""


async def submit_all(
    url: str, jobs: int, concurrency: int, figures: RunFigures, job: dict[str, Any] = NOOP_JOB
) -> None:
    """PUT `jobs` noop jobs with at most `concurrency` requests in flight; latencies into `figures`."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(jobs):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as http:

        async def worker() -> None:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                error = ""
                try:
                    resp = await http.put("/api/v1/orchestrator/jobs", json={"Job": job})
                    if resp.status_code != 200:
                        error = f"HTTP {resp.status_code}: {resp.text[:300]}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                figures.submit_ms.append((time.perf_counter() - t0) * 1000)
                if error:
                    figures.errors += 1
                    if figures.errors <= 3:  # what went wrong, not just how often
                        figures.notes.append(f"submit error: {error}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def completed_jobs(url: str) -> list[dict[str, Any]]:
    """Every job the orchestrator holds (paged)."""
    items: list[dict[str, Any]] = []
    token = ""
    with httpx.Client(base_url=url, timeout=120.0) as http:
        for _ in range(10_000):  # bounded: at most 10 M jobs at 1,000 a page
            params: dict[str, Any] = {"next_token": token} if token else {"limit": 1000}
            body = http.get("/api/v1/orchestrator/jobs", params=params).json()
            items.extend(body.get("Items") or [])
            token = body.get("NextToken") or ""
            if not token:
                break
    return items


def count_queued(url: str) -> int:
    """How many jobs are Queued now."""
    return sum(1 for j in completed_jobs(url) if j["State"]["StateType"] == "Queued")


def run(
    *, nodes: int, jobs: int, concurrency: int, timeout_s: float, connections: int, queued: bool,
    profile_s: float = 0.0,
) -> RunFigures:
    """One fresh orchestrator, `nodes` simulated nodes, `jobs` jobs; returns the figures.

    queued: the jobs are submitted (and Queued) before any node connects, then the nodes drain the queue.
    """
    figures = RunFigures(nodes=nodes, jobs=jobs)
    # A long QueueBackoff: the queued jobs are retried when the nodes join, not on a timer meanwhile.
    config = ["Orchestrator.Scheduler.QueueBackoff=10m"] if queued else []
    with ServeProcess(orchestrator=True, config=config) as orch:
        if queued:
            t_submit = time.monotonic()
            asyncio.run(submit_all(orch.url, jobs, concurrency, figures, QUEUED_JOB))
            figures.submit_s = time.monotonic() - t_submit
            deadline = time.monotonic() + timeout_s
            while count_queued(orch.url) < jobs - figures.errors and time.monotonic() < deadline:
                time.sleep(0.5)
        with PeerProcess(nats_url=orch.nats_url, nodes=nodes, connections=min(connections, nodes)) as peers:
            _drive(figures, orch, peers, jobs=jobs, concurrency=concurrency, timeout_s=timeout_s,
                   queued=queued, profile_s=profile_s)
    return figures


def _drive(
    figures: RunFigures, orch: ServeProcess, peers: PeerProcess, *, jobs: int, concurrency: int,
    timeout_s: float, queued: bool, profile_s: float,
) -> None:
    guard = RssGuard(lambda: [*orch.pids(), peers.pid])
    nats_pids = children(orch.pid)
    before = [ProcSample.of(pid) for pid in (orch.pid, *nats_pids[:1], peers.pid)]
    profiler = Profiler(orch.pid, profile_s) if profile_s > 0 else None
    driver_before = _own_cpu_s()
    t0 = time.monotonic()
    t0_wall_ns = time.time_ns()
    ready = peers.wait_ready(timeout_s=max(60.0, figures.nodes / 20))
    figures.handshake_storm_s = ready["duration_s"]
    if ready["connected"] < figures.nodes:
        figures.notes.append(f"only {ready['connected']} of {figures.nodes} nodes shook hands")
    if not queued:
        orch.wait_for_nodes(count=ready["connected"], timeout_s=60.0)
        before = [ProcSample.of(pid) for pid in (orch.pid, *nats_pids[:1], peers.pid)]
        driver_before = _own_cpu_s()
        t0 = time.monotonic()
        t0_wall_ns = time.time_ns()
        asyncio.run(submit_all(orch.url, jobs, concurrency, figures))
        figures.submit_s = time.monotonic() - t0
    deadline = t0 + timeout_s
    last_progress, last_acks = time.monotonic(), -1
    accepted = jobs - figures.errors
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        report = peers.report()
        guard.check()
        if report["run_acks"] >= accepted:
            break
        if report["run_acks"] != last_acks:
            last_progress, last_acks = time.monotonic(), report["run_acks"]
        elif time.monotonic() - last_progress > 30:
            figures.notes.append(f"no progress for 30 s at {last_acks} executions completed")
            break
        time.sleep(0.2)
    else:
        figures.notes.append(f"stopped waiting after {timeout_s:g}s")
    after = [ProcSample.of(pid) for pid in (orch.pid, *nats_pids[:1], peers.pid)]
    cpu = [a.cpu_percent_since(b) for a, b in zip(after, before, strict=True)]
    figures.orchestrator_cpu_pct = cpu[0]
    figures.nats_cpu_pct = cpu[1] if nats_pids else 0.0
    figures.peers_cpu_pct = cpu[-1]
    figures.driver_cpu_pct = 100.0 * (_own_cpu_s() - driver_before) / max(after[0].at_s - t0, 1e-9)
    figures.orchestrator_cpu_ms_per_job = 1000.0 * (after[0].cpu_s - before[0].cpu_s) / max(jobs, 1)
    times = peers.ask("times", "times", timeout_s=60.0)
    asks = sorted(times["ask_times"])
    runs = sorted(times["run_ack_times"])
    figures.asks, figures.run_acks = len(asks), len(runs)
    figures.nodes_with_work = report.get("nodes_with_work", 0)
    figures.max_asks_per_node = report.get("max_asks_per_node", 0)
    # Through the API the clock starts at the first submit; draining a queue, at the first placement.
    start = asks[0] if queued and asks else t0
    if asks:
        figures.placement_s = len(asks) / max(asks[-1] - start, 1e-9)
        lo, hi = int(len(asks) * 0.1), int(len(asks) * 0.9) - 1
        if hi > lo:
            figures.placement_mid_s = (hi - lo) / max(asks[hi] - asks[lo], 1e-9)
    if runs:
        figures.executions_s = len(runs) / max(runs[-1] - start, 1e-9)
    # The job turns Completed in the evaluation after its RunResult: give the last ones a moment.
    done: list[dict[str, Any]] = []
    settle_deadline = time.monotonic() + 30
    while time.monotonic() < settle_deadline:
        done = [j for j in completed_jobs(orch.url) if j["State"]["StateType"] == "Completed"]
        if len(done) >= accepted:
            break
        time.sleep(0.5)
    figures.jobs_completed = len(done)
    if done:
        start_wall_ns = t0_wall_ns + int((start - t0) * 1e9)
        last_ns = max(j["ModifyTime"] for j in done)
        figures.jobs_completed_s = len(done) / max((last_ns - start_wall_ns) / 1e9, 1e-9)
    guard.check()
    figures.peak_rss_mb = guard.peak_bytes / 1e6
    if profiler is not None:
        figures.profile = profiler.summary()


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pct(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def print_figures(base: RunFigures, meas: RunFigures, *, queued: bool) -> None:
    """The side-by-side table, with the ratio measured / baseline."""
    start = "first AskForBid" if queued else "first submit"
    rows: list[tuple[str, float, float, str]] = [
        ("jobs submitted / s (API, all accepted)", base.jobs / base.submit_s, meas.jobs / meas.submit_s, ".0f"),
        ("submit latency p50 ms", _pct(base.submit_ms, 50), _pct(meas.submit_ms, 50), ".1f"),
        ("submit latency p99 ms", _pct(base.submit_ms, 99), _pct(meas.submit_ms, 99), ".1f"),
        (f"placements / s ({start} -> last AskForBid)", base.placement_s, meas.placement_s, ".0f"),
        ("placements / s (middle 80 % of AskForBids)", base.placement_mid_s, meas.placement_mid_s, ".0f"),
        ("executions completed / s (RunResult acked)", base.executions_s, meas.executions_s, ".0f"),
        ("jobs Completed / s (job ModifyTime)", base.jobs_completed_s, meas.jobs_completed_s, ".0f"),
        ("orchestrator CPU % of one core (placing)", base.orchestrator_cpu_pct, meas.orchestrator_cpu_pct, ".0f"),
        ("orchestrator CPU ms per job (placing, to the last RunResult)", base.orchestrator_cpu_ms_per_job,
         meas.orchestrator_cpu_ms_per_job, ".2f"),
        ("nats-server CPU %", base.nats_cpu_pct, meas.nats_cpu_pct, ".0f"),
        ("simulated nodes process CPU %", base.peers_cpu_pct, meas.peers_cpu_pct, ".0f"),
        ("this driver (API client) CPU %", base.driver_cpu_pct, meas.driver_cpu_pct, ".0f"),
        ("peak RSS, all processes MB", base.peak_rss_mb, meas.peak_rss_mb, ".0f"),
    ]
    width = max(len(r[0]) for r in rows)
    head_b, head_m = f"{base.nodes} node(s)", f"{meas.nodes} nodes"
    how = "queued before the nodes joined, then drained" if queued else "submitted through the API to connected nodes"
    print(f"\nPlacements: {meas.jobs} noop jobs {how} (baseline: the same on 1 node)")
    print(f"  {'measurement':<{width}}  {head_b:>12}  {head_m:>12}  {'ratio':>7}")
    for name, b, m, fmt in rows:
        ratio = m / b if b else float("nan")
        print(f"  {name:<{width}}  {b:>12{fmt}}  {m:>12{fmt}}  {ratio:>6.2f}x")
    for label, fig in (("baseline", base), ("measured", meas)):
        print(f"  {label}: {fig.asks}/{fig.jobs} AskForBids, {fig.run_acks} RunResults acked, "
              f"{fig.jobs_completed} jobs Completed, {fig.errors} submit errors; work went to "
              f"{fig.nodes_with_work} of {fig.nodes} nodes (max {fig.max_asks_per_node} on one); "
              f"handshake storm {fig.handshake_storm_s:.2f}s" + "".join(f"; {n}" for n in fig.notes))
    rate = meas.placement_mid_s if queued else meas.placement_s
    verdict = "meets" if rate >= TARGET_PLACEMENTS_S else "misses"
    print("  (CPU % are of one core over the run; the machine's other load shows in them, the ms per job less so)")
    print(f"  target: >= {TARGET_PLACEMENTS_S:.0f} placements/s on 2 cores (Nomad C2M ~1,500/s with 3 schedulers)"
          f" -> {rate:.0f}/s {verdict} it")


def main(argv: list[str]) -> int:
    """Run the baseline and the measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in the queue (default 10,000)")
    parser.add_argument("--nodes", type=int, default=1_000, help="simulated compute nodes (default 1,000)")
    parser.add_argument("--concurrency", type=int, default=32, help="submit requests in flight (default 32)")
    parser.add_argument("--connections", type=int, default=8, help="NATS connections the nodes share (default 8)")
    parser.add_argument("--timeout-s", type=float, default=0.0, help="give up a run after (default 60 s + 50 ms/job)")
    parser.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                        help="py-spy the orchestrator for the first SECONDS of the measured run (needs py-spy)")
    parser.add_argument("--quick", action="store_true", help="1,000 jobs over 100 nodes")
    parser.add_argument("--mode", choices=("queue", "api", "both"), default="both",
                        help="queue: drain a queue built before the nodes joined (the issue's measure); "
                             "api: submit to connected nodes; both (default)")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.nodes = 1_000, 100
    timeout_s = args.timeout_s or 60.0 + 0.05 * args.jobs
    common = {"jobs": args.jobs, "concurrency": args.concurrency, "timeout_s": timeout_s, "connections": args.connections}
    for queued in (True, False):
        if args.mode != "both" and queued != (args.mode == "queue"):
            continue
        base = run(nodes=1, queued=queued, **common)
        meas = run(nodes=args.nodes, queued=queued, profile_s=args.profile, **common)
        print_figures(base, meas, queued=queued)
        if meas.profile:
            print(f"\nWhere the orchestrator's CPU goes ({args.nodes} nodes, first {args.profile:g} s):")
            print(meas.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
