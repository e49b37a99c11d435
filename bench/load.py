"""Job submissions under load: small WASM jobs PUT by `wrk` at N concurrent connections, next to the HTTP floor.

    .venv/bin/python bench/load.py [--connections 50,200] [--duration 8]

For each concurrency, a fresh hybrid node (bench/hybrid_node.py) receives `inline_wasm_job(hello_module())`
as PUT /api/v1/orchestrator/jobs, body {"Job": ...}, from `wrk -t1 -c<N> -d<duration>s --latency` (Debian
package `wrk`, installed by scripts/setup). wrk is C: a Python load generator would eat as much of a
2-core machine's CPU as the node it measures. Then the node is polled (GET jobs-summary) until every job it
created is terminal. Printed per concurrency:

    accepted/s       2xx answers per second of wrk's run
    p50 / p99        submit latency (wrk's distribution: every answer, 2xx or not)
    non-2xx          answers with status >= 400 (wrk's "Non-2xx or 3xx responses")
    socket errors    wrk's connect / read / write / timeout errors. wrk drops the connections still waiting
                     when its duration ends; those requests are not counted anywhere (neither here nor as
                     answers), while the node may still create their jobs: hence `created` below
    created          jobs the node's store gained (jobs-summary Total, after minus before)
    completions/s    created / (first submit -> every created job terminal); failed ones are counted apart
    drain/s          jobs that ended after wrk's run / the time they took: the rate of executions once the
                     node no longer takes submissions at the same time
    CPU ms/job       the node's CPU time over the whole run (wrk and the drain) per created job, user and
                     kernel: on a disk where creating a file costs a lot of kernel time, that is where it shows

Side by side, in the same run: the HTTP floor (bench/http_floor.py, an empty FastAPI route on the node's
uvicorn settings) under the same wrk settings. Targets (issue): >= 1,000 submissions/s with p99 < 250 ms at
200 connections, >= 300 completions/s, no dropped connection. No assertion: this is a measurement.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from http_floor import PATH as FLOOR_PATH
from http_floor import FloorServer
from hybrid_node import HybridNode, cpu_seconds, hello_module, inline_wasm_job, rss_mib

JOBS_PATH = "/api/v1/orchestrator/jobs"
SUMMARY_PATH = "/api/v1/orchestrator/jobs-summary"
TARGET_SUBMITS_PER_S = 1000.0
TARGET_P99_MS = 250.0
TARGET_COMPLETIONS_PER_S = 300.0



class LoadTarget(Protocol):
    """What `load_node` needs of a node: a hybrid node, or a cluster's orchestrator (cluster_env)."""

    url: str

    @property
    def pid(self) -> int: ...

    @property
    def log_path(self) -> Path: ...


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass
class WrkResult:
    """What one `wrk` run printed, parsed."""

    connections: int
    duration_s: float
    requests: int
    non_2xx: int
    socket_errors: dict[str, int]  # connect, read, write, timeout
    latency_ms: dict[str, float]  # "50%", "75%", "90%", "99%"
    output: str = ""

    @property
    def accepted_per_s(self) -> float:
        """Answers below 400 per second of the run."""
        return (self.requests - self.non_2xx) / self.duration_s if self.duration_s else 0.0

    @property
    def socket_error_count(self) -> int:
        """All socket errors wrk saw, of every kind."""
        return sum(self.socket_errors.values())


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_wrk(output: str, connections: int) -> WrkResult:
    """The figures of wrk's `--latency` report."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if not done:
        raise SystemExit(f"wrk printed no request count:\n{output}")
    latency = {f"{p}%": _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.MULTILINE)}
    if len(latency) < 4:
        raise SystemExit(f"wrk printed no latency distribution:\n{output}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    socket_errors = dict(zip(("connect", "read", "write", "timeout"),
                             (int(n) for n in errors.groups()) if errors else (0, 0, 0, 0), strict=True))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        connections=connections, duration_s=_ms(done.group(2) + done.group(3)) / 1000.0,
        requests=int(done.group(1)), non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors, latency_ms=latency, output=output,
    )


def run_wrk(url: str, *, connections: int, duration_s: float, method: str = "GET", body: bytes | None = None,
            timeout_s: float = 10.0) -> WrkResult:
    """`wrk -t1 -c<connections> -d<duration_s>s --latency` against `url`, with `method` and a JSON `body`.

    wrk's timeout is raised from 2 s to `timeout_s` so that a slow answer is measured, not counted as an error.
    """
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "request.lua"
        lines = [f'wrk.method = "{method}"']
        if body is not None:
            (Path(tmp) / "body.json").write_bytes(body)
            # The body is read from a file: no quoting of the JSON inside Lua source.
            lines += ['wrk.headers["Content-Type"] = "application/json"',
                      f'local f = assert(io.open("{Path(tmp) / "body.json"}", "rb"))',
                      "wrk.body = f:read(\"*a\")", "f:close()"]
        script.write_text("\n".join(lines) + "\n")
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s:g}s", "--latency", f"--timeout={timeout_s:g}s",
               "-s", str(script), url]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + timeout_s + 30,
                                    check=False)
        except FileNotFoundError:
            raise SystemExit("wrk is not installed: run `bash scripts/setup` (Debian package wrk)") from None
    if result.returncode != 0:
        raise SystemExit(f"wrk failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return parse_wrk(result.stdout, connections)


def submit_body() -> bytes:
    """The body every load request PUTs: one small WASM job (examples/hello.wat, inline)."""
    return json.dumps({"Job": inline_wasm_job(hello_module())}).encode()


@dataclass
class LoadResult:
    """One load run against a node: wrk's view, and the node's (jobs created, how fast they finished)."""

    wrk: WrkResult
    created: int = 0
    completed: int = 0
    failed: int = 0  # Failed or Stopped
    completion_s: float = 0.0  # first submit -> all created jobs terminal (or the wait's end)
    all_terminal: bool = False
    rss_mib: float = 0.0  # the node's, right after wrk's run
    log_findings: dict[str, int] = field(default_factory=dict)
    drained: int = 0  # jobs that became terminal after the first look once wrk's run had ended
    drain_s: float = 0.0  # that first look -> all created jobs terminal (or the wait's end)
    cpu_user_s: float = 0.0  # the node's CPU time from the first submit to the end of the wait
    cpu_kernel_s: float = 0.0

    @property
    def completions_per_s(self) -> float:
        """Jobs Completed per second, from the first submit until the last one was terminal."""
        return self.completed / self.completion_s if self.completion_s else 0.0

    @property
    def drained_per_s(self) -> float:
        """Jobs that ended per second once wrk had stopped submitting."""
        return self.drained / self.drain_s if self.drain_s else 0.0

    def cpu_ms_per_job(self) -> tuple[float, float]:
        """The node's (user, kernel) CPU milliseconds per created job."""
        if not self.created:
            return 0.0, 0.0
        return self.cpu_user_s * 1000.0 / self.created, self.cpu_kernel_s * 1000.0 / self.created


def job_counts(http: httpx.Client) -> tuple[int, int, int]:
    """(total, Completed, Failed + Stopped) from the node's jobs summary."""
    summary = http.get(SUMMARY_PATH, params={"minutes": 1}).json()
    by_state = summary["ByState"]
    return summary["Total"], by_state.get("Completed", 0), by_state.get("Failed", 0) + by_state.get("Stopped", 0)


def load_node(node: LoadTarget, *, connections: int, duration_s: float, body: bytes,
              completion_timeout_s: float = 120.0, poll_s: float = 0.2) -> LoadResult:
    """Submit `body` with wrk for `duration_s` to `node`, then wait until every job it created is terminal."""
    with httpx.Client(base_url=node.url, timeout=30.0) as http:
        total0, completed0, failed0 = job_counts(http)
        user0, kernel0 = cpu_seconds(node.pid)
        started = time.monotonic()
        wrk = run_wrk(node.url + JOBS_PATH, connections=connections, duration_s=duration_s, method="PUT", body=body)
        wrk_ended = time.monotonic()
        result = LoadResult(wrk=wrk, rss_mib=rss_mib(node.pid))
        deadline = wrk_ended + completion_timeout_s
        ended_before_drain: int | None = None  # jobs ended at the first look after wrk, and when that was
        drain_started = wrk_ended
        while True:
            total, completed, failed = job_counts(http)
            now = time.monotonic()
            result.created, result.completed, result.failed = total - total0, completed - completed0, failed - failed0
            if ended_before_drain is None:
                ended_before_drain, drain_started = result.completed + result.failed, now
            result.completion_s = now - started
            result.drained = result.completed + result.failed - ended_before_drain
            result.drain_s = now - drain_started
            result.all_terminal = result.completed + result.failed >= result.created
            if result.all_terminal or now > deadline:
                break
            time.sleep(poll_s)
        user1, kernel1 = cpu_seconds(node.pid)
        result.cpu_user_s, result.cpu_kernel_s = user1 - user0, kernel1 - kernel0
    result.log_findings = log_findings(node.log_path)
    return result


def log_findings(path: Path) -> dict[str, int]:
    """How many lines of the node's log are each kind of trouble (levels, tracebacks), by first words."""
    found: dict[str, int] = {}
    if not path.exists():
        return found
    in_traceback = False
    for line in path.read_text(errors="replace").splitlines():
        match = re.match(r"\S+ \S+ (WARNING|ERROR|CRITICAL) (\S+): (.{0,80})", line)
        bare = re.match(r"(WARNING|ERROR|CRITICAL):\s+(.{0,80})", line)  # uvicorn's own format
        if match:
            key = f"{match.group(1)} {match.group(2)}: {match.group(3)}"
        elif bare:
            key = f"{bare.group(1)} {bare.group(2)}"
        elif line.startswith("Traceback"):
            in_traceback = True
            continue
        elif in_traceback and line and not line[0].isspace():
            # The exception that ended the traceback ("During handling ..." lines chain two of them).
            in_traceback = False
            if line.startswith("During handling") or line.startswith("The above exception"):
                continue
            key = f"raised {line[:100]}"
        else:
            continue
        key = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27,}", "<id>", key)
        found[key] = found.get(key, 0) + 1
    return found


def floor_load(server: FloorServer, *, connections: int, duration_s: float, body: bytes) -> WrkResult:
    """The same wrk run against the HTTP floor."""
    return run_wrk(server.url + FLOOR_PATH, connections=connections, duration_s=duration_s, method="PUT", body=body)


def measure(connections: list[int], duration_s: float, completion_timeout_s: float = 120.0
            ) -> dict[int, tuple[WrkResult, LoadResult]]:
    """For each concurrency: the floor's wrk result and a fresh node's load result."""
    body = submit_body()
    results: dict[int, tuple[WrkResult, LoadResult]] = {}
    for n in connections:
        with FloorServer() as floor:
            floor_result = floor_load(floor, connections=n, duration_s=duration_s, body=body)
        with HybridNode() as node:
            node_result = load_node(node, connections=n, duration_s=duration_s, body=body,
                                    completion_timeout_s=completion_timeout_s)
        results[n] = (floor_result, node_result)
    return results


def print_results(results: dict[int, tuple[WrkResult, LoadResult]]) -> None:
    """One table: the floor and the node at each concurrency; then the node's log findings."""
    print("\nSubmissions under load (wrk -t1, PUT small WASM jobs)")
    head = (f"  {'':<22} {'conns':>5} {'accepted/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>7} "
            f"{'sock err':>8} {'created':>7} {'done/s':>7} {'drain/s':>7} {'CPU ms/job u+k':>14} {'failed':>6} "
            f"{'RSS MiB':>7}")
    print(head)
    for n, (floor, load) in results.items():
        print(f"  {'HTTP floor (empty)':<22} {n:>5} {floor.accepted_per_s:>10.0f} {floor.latency_ms['50%']:>8.1f} "
              f"{floor.latency_ms['99%']:>8.1f} {floor.non_2xx:>7} {floor.socket_error_count:>8}")
        wrk = load.wrk
        done = f"{load.completions_per_s:.0f}" + ("" if load.all_terminal else "*")
        user_ms, kernel_ms = load.cpu_ms_per_job()
        cpu = f"{user_ms:.2f}+{kernel_ms:.2f}"
        drain = f"{load.drained_per_s:.0f}" if load.drained else "-"  # all ended before wrk did
        print(f"  {'node PUT /jobs':<22} {n:>5} {wrk.accepted_per_s:>10.0f} {wrk.latency_ms['50%']:>8.1f} "
              f"{wrk.latency_ms['99%']:>8.1f} {wrk.non_2xx:>7} {wrk.socket_error_count:>8} {load.created:>7} "
              f"{done:>7} {drain:>7} {cpu:>14} {load.failed:>6} {load.rss_mib:>7.0f}")
    if any(not load.all_terminal for _, load in results.values()):
        print("  * not every created job was terminal when the wait ended: completions/s so far")
    for n, (_, load) in results.items():
        errors = {k: v for k, v in load.wrk.socket_errors.items() if v}
        if errors:
            print(f"  {n} connections: socket errors {errors}")
        for finding, count in sorted(load.log_findings.items(), key=lambda kv: -kv[1])[:8]:
            print(f"  {n} connections, node log: {count} x {finding}")


def main(argv: list[str]) -> int:
    """Run the load at each concurrency and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", default="50,200", help="comma-separated concurrencies (default 50,200)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of wrk per run (default 8)")
    parser.add_argument("--completion-timeout", type=float, default=120.0,
                        help="seconds to wait for the created jobs to finish (default 120)")
    args = parser.parse_args(argv)
    connections = [int(n) for n in args.connections.split(",") if n]
    print_results(measure(connections, args.duration, args.completion_timeout))
    print(f"  targets: >= {TARGET_SUBMITS_PER_S:.0f} accepted/s with p99 < {TARGET_P99_MS:.0f} ms at 200 "
          f"connections; >= {TARGET_COMPLETIONS_PER_S:.0f} completions/s; no socket error")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
