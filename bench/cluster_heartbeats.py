"""Orchestrator CPU and memory with 1,000 and 10,000 simulated compute nodes heartbeating every 15 s.

    .venv/bin/python bench/cluster_heartbeats.py [--nodes 1000,10000] [--window-s 60]
    .venv/bin/python bench/cluster_heartbeats.py --quick           # 20 s window

For each node count, on a fresh `bacalhau serve --orchestrator` (embedded nats-server) started as a
subprocess, the simulated nodes (bench/ncl_peers.py, one separate process, ~500 nodes per NATS
connection) first all handshake at once (the storm after an orchestrator restart, at most
`--handshake-concurrency` in flight), then heartbeat every 15 s (first beat jittered, as our compute
does). After one heartbeat interval of settling, the steady state is measured over the window: the
orchestrator's CPU (utime+stime from /proc, % of one core) and RSS, its nats-server's CPU, and the
heartbeat round trip seen by the nodes (p50/p99/max). Baseline side by side: the same orchestrator
with 0 nodes over the same window (what an idle orchestrator costs).

Memory: every process runs under an address-space limit and the run aborts above 4 GB RSS in total.
Target: < 25 % of one core at 10,000 nodes. No assertion: this is a measurement.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ncl_peers import PeerProcess

from cluster_env import ProcSample, Profiler, RssGuard, ServeProcess, children

TARGET_CPU_PCT = 25.0
NODES_PER_CONNECTION = 500


@dataclass
class Figures:
    """One node count's measurements."""

    nodes: int
    storm_s: float = float("nan")
    handshake_ms: list[float] = field(default_factory=list)
    storm_cpu_ms_per_handshake: float = float("nan")
    connected: int = 0
    beats_per_s: float = 0.0
    rtt_ms: list[float] = field(default_factory=list)
    cpu_pct: float = 0.0
    nats_cpu_pct: float = 0.0
    peers_cpu_pct: float = float("nan")
    rss_mb: float = 0.0
    nats_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    problems: dict[str, int] = field(default_factory=dict)
    profile: str = ""


def measure(nodes: int, *, window_s: float, heartbeat_s: float, handshake_concurrency: int,
            profile: bool) -> Figures:
    """Start an orchestrator, `nodes` simulated nodes, settle, and measure one steady window."""
    figures = Figures(nodes=nodes)
    with ServeProcess(orchestrator=True) as orch:
        nats_pid = (children(orch.pid) or [0])[0]
        peers: PeerProcess | None = None
        try:
            if nodes:
                before = ProcSample.of(orch.pid)
                peers = PeerProcess(nats_url=orch.nats_url, nodes=nodes, heartbeat_s=heartbeat_s,
                                    connections=max(1, min(20, nodes // NODES_PER_CONNECTION)),
                                    handshake_concurrency=handshake_concurrency)
            guard = RssGuard(lambda: [*orch.pids(), *([peers.pid] if peers else [])])
            if peers is not None:
                ready = peers.wait_ready(timeout_s=max(120.0, nodes / 20))
                storm_cpu_s = ProcSample.of(orch.pid).cpu_s - before.cpu_s
                figures.storm_s = ready["duration_s"]
                figures.handshake_ms = ready["handshake_ms"]
                figures.connected = ready["connected"]
                figures.storm_cpu_ms_per_handshake = 1000 * storm_cpu_s / max(1, figures.connected)
            # Settle: after one interval every node has started beating.
            settle_end = time.monotonic() + heartbeat_s
            while time.monotonic() < settle_end:
                guard.check()
                time.sleep(min(1.0, max(0.0, settle_end - time.monotonic())))
            start_counts: dict[str, Any] = {}
            if peers is not None:
                peers.ask("mark", "marked")
                start_counts = peers.report()
            first = [ProcSample.of(pid) for pid in (orch.pid, nats_pid or orch.pid)]
            peers_first = ProcSample.of(peers.pid) if peers else None
            profiler = Profiler(orch.pid, window_s) if profile and peers else None
            end = time.monotonic() + window_s
            while time.monotonic() < end:
                guard.check()
                time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            last = [ProcSample.of(pid) for pid in (orch.pid, nats_pid or orch.pid)]
            figures.cpu_pct = last[0].cpu_percent_since(first[0])
            figures.nats_cpu_pct = last[1].cpu_percent_since(first[1]) if nats_pid else float("nan")
            figures.rss_mb = last[0].rss_bytes / 1e6
            figures.nats_rss_mb = last[1].rss_bytes / 1e6 if nats_pid else float("nan")
            if peers is not None and peers_first is not None:
                figures.peers_cpu_pct = ProcSample.of(peers.pid).cpu_percent_since(peers_first)
                report: dict[str, Any] = peers.report()
                figures.rtt_ms = report["hb_rtt_ms"]
                figures.beats_per_s = (report["hb_ok"] - start_counts["hb_ok"]) / window_s
                figures.problems = {
                    k: report[k] for k in ("hb_timeout", "hb_error", "hb_skipped", "handshake_required",
                                           "handshake_failures") if report[k]
                }
            figures.peak_rss_mb = guard.peak_bytes / 1e6
            if profiler is not None:
                figures.profile = profiler.summary()
        finally:
            if peers is not None:
                peers.close()
    return figures


def _pct(samples: list[float], q: int) -> float:
    if not samples:
        return float("nan")
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def print_table(runs: list[Figures], window_s: float) -> None:
    """Idle baseline and each node count side by side; ratio of the largest to the smallest node count."""
    rows: list[tuple[str, list[float], str]] = [
        ("handshake storm, s (all nodes at once)", [f.storm_s for f in runs], ".2f"),
        ("handshakes / s", [f.connected / f.storm_s if f.storm_s == f.storm_s and f.storm_s else float("nan")
                            for f in runs], ".0f"),
        ("handshake p50 ms", [_pct(f.handshake_ms, 50) for f in runs], ".1f"),
        ("handshake p99 ms", [_pct(f.handshake_ms, 99) for f in runs], ".1f"),
        ("orchestrator CPU ms per handshake (storm)", [f.storm_cpu_ms_per_handshake for f in runs], ".2f"),
        ("heartbeats / s answered (steady window)", [f.beats_per_s for f in runs], ".0f"),
        ("heartbeat round trip p50 ms", [_pct(f.rtt_ms, 50) for f in runs], ".2f"),
        ("heartbeat round trip p99 ms", [_pct(f.rtt_ms, 99) for f in runs], ".2f"),
        ("heartbeat round trip max ms", [max(f.rtt_ms, default=float("nan")) for f in runs], ".1f"),
        ("orchestrator CPU % of one core (steady)", [f.cpu_pct for f in runs], ".1f"),
        ("nats-server CPU % (steady)", [f.nats_cpu_pct for f in runs], ".1f"),
        ("simulated nodes process CPU %", [f.peers_cpu_pct for f in runs], ".1f"),
        ("orchestrator RSS MB", [f.rss_mb for f in runs], ".0f"),
        ("nats-server RSS MB", [f.nats_rss_mb for f in runs], ".0f"),
        ("peak RSS, all processes MB", [f.peak_rss_mb for f in runs], ".0f"),
    ]
    width = max(len(r[0]) for r in rows)
    heads = ["idle (0)" if f.nodes == 0 else f"{f.nodes} nodes" for f in runs]
    scaled = [f for f in runs if f.nodes]
    ratio_head = f"{scaled[-1].nodes}/{scaled[0].nodes}" if len(scaled) > 1 else ""
    print(f"\nHeartbeats: steady window {window_s:g} s after one interval of settling (baseline: idle orchestrator)")
    print(f"  {'measurement':<{width}}" + "".join(f"  {h:>12}" for h in heads) + (f"  {ratio_head:>9}" if ratio_head else ""))
    big, small = (runs.index(scaled[-1]), runs.index(scaled[0])) if len(scaled) > 1 else (0, 0)
    for name, values, fmt in rows:
        line = f"  {name:<{width}}" + "".join(f"  {v:>12{fmt}}" for v in values)
        if ratio_head:
            b, s = values[big], values[small]
            line += f"  {b / s:>8.2f}x" if s and s == s and b == b else f"  {'-':>9}"
        print(line)
    idle = next((f for f in runs if f.nodes == 0), None)
    for f in scaled:
        extra = f", {f.cpu_pct - idle.cpu_pct:+.1f} points over idle" if idle else ""
        problems = ", ".join(f"{k} {v}" for k, v in f.problems.items()) or "none"
        print(f"  {f.nodes} nodes: {f.connected} connected, {f.cpu_pct:.1f} % CPU{extra}; problems: {problems}")
    if scaled:
        top = max(scaled, key=lambda f: f.nodes)
        verdict = "meets" if top.cpu_pct < TARGET_CPU_PCT else "misses"
        if top.nodes < 10_000:
            verdict += " (but the target is for 10,000 nodes)"
        print(f"  target: < {TARGET_CPU_PCT:.0f} % of one core at 10,000 nodes -> {top.nodes} nodes: "
              f"{top.cpu_pct:.1f} % {verdict}")


def main(argv: list[str]) -> int:
    """Measure idle, then each node count, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1000,10000", help="comma-separated node counts (default 1000,10000)")
    parser.add_argument("--window-s", type=float, default=60.0, help="steady-state window (default 60 s)")
    parser.add_argument("--heartbeat-s", type=float, default=15.0, help="heartbeat interval (default 15 s)")
    parser.add_argument("--handshake-concurrency", type=int, default=200, help="handshakes in flight (default 200)")
    parser.add_argument("--profile", action="store_true", help="py-spy the orchestrator in each steady window")
    parser.add_argument("--quick", action="store_true", help="20 s window")
    args = parser.parse_args(argv)
    if args.quick:
        args.window_s = 20.0
    counts = [0, *sorted({int(n) for n in args.nodes.split(",") if n.strip()})]
    runs = []
    for count in counts:
        print(f"... {count} nodes", file=sys.stderr, flush=True)
        runs.append(measure(count, window_s=args.window_s, heartbeat_s=args.heartbeat_s,
                            handshake_concurrency=args.handshake_concurrency, profile=args.profile))
    print_table(runs, args.window_s)
    for f in runs:
        if f.profile:
            print(f"\nWhere the orchestrator's CPU goes at {f.nodes} nodes (steady window):")
            print(f.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
