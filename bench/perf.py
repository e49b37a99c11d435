"""Every performance figure of the issue in one run, each next to its baseline measured in the same run.

    .venv/bin/python bench/perf.py [--quick] [--sizes 10000,100000,1000000] [--max-minutes 60]

Runs, one thing at a time (the machine is small: nothing else of ours runs meanwhile):

    baselines   raw wasmtime cold and cached (bench/wasm_overhead.py), `python -c pass`, the SQLite insert
                floor (bench/store_floor.py), the HTTP floor under wrk and its GET latency (bench/http_floor.py)
    wasm job    examples/hello.wat as a job on a hybrid node: server side and client round trip
    CLI         `bacalhau version --client`, `bacalhau job list`, `bacalhau wasm run hello.wasm` against
                that node (bench/cli_roundtrip.py)
    load        small WASM jobs PUT by wrk at 50 and 200 connections, a fresh node each (bench/load.py);
                the same at 200 on a hybrid node with its compute in a child process
                (Compute.SeparateProcess=true: two cores for the node's own work), and on a hybrid node
                whose data directory is in /dev/shm (what the disk costs), next to the default; each with
                the node's CPU per job (user, kernel) and its completions once wrk has stopped
    scaling     list / describe latency and a short submit run with 10k, 100k, 1M jobs stored
                (bench/store_scaling.py; the 1M fill takes minutes and ~1.6 GB of temp space)

and prints one report: figure, value (median where there are runs), baseline, difference or ratio,
target, meets / misses. `--quick` is for iterating: fewer runs, 3 s of wrk, 10k jobs only (about a
minute). The whole run is bounded by `--max-minutes`; every node is stopped on the way out. No assertion.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import cli_roundtrip
import load
import store_floor
import store_scaling
import wasm_overhead
from http_floor import FloorServer
from hybrid_node import ROOT, HybridNode, bacalhau_bin, hello_module

TARGET_WASM_RUN_MS = 200.0
TARGET_CLI_MS = 80.0  # version --client, job list


@dataclass
class Settings:
    """How much of everything to run."""

    wasm_runs: int
    wasm_warmup: int
    cli_runs: int
    cli_warmup: int
    connections: tuple[int, ...]
    load_s: float
    completion_timeout_s: float
    sizes: tuple[int, ...]
    read_requests: int
    scaling_load_s: float
    sqlite_s: float


QUICK = Settings(wasm_runs=10, wasm_warmup=2, cli_runs=5, cli_warmup=1, connections=(50, 200), load_s=3.0,
                 completion_timeout_s=60.0, sizes=(10_000,), read_requests=30, scaling_load_s=2.0, sqlite_s=1.0)
FULL = Settings(wasm_runs=30, wasm_warmup=3, cli_runs=20, cli_warmup=2, connections=(50, 200), load_s=8.0,
                completion_timeout_s=180.0, sizes=(10_000, 100_000, 1_000_000), read_requests=50,
                scaling_load_s=3.0, sqlite_s=2.0)


@dataclass
class Row:
    """One line of the report. `lower_is_better` decides how the target reads; `diff` prints value - baseline."""

    figure: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    diff: bool = False  # compare as a difference (value - baseline), else as a ratio
    target: float | None = None
    target_over_baseline: bool = False  # the target bounds value - baseline, not value
    lower_is_better: bool = True

    def comparison(self) -> str:
        """`+1.23 ms` or `0.45x` against the baseline, or nothing."""
        if self.baseline_value is None:
            return ""
        if self.diff:
            return f"{self.value - self.baseline_value:+,.{0 if not self.unit else 2}f} {self.unit}".rstrip()
        return f"{self.value / self.baseline_value:.2f}x" if self.baseline_value else ""

    def target_text(self) -> str:
        """`<= 80 ms`, `>= 1000 /s`, `<= +3 ms over baseline`, or nothing."""
        if self.target is None:
            return ""
        sign = "<=" if self.lower_is_better else ">="
        if self.target_over_baseline:
            return f"{sign} +{self.target:g} {self.unit}"
        return f"{sign} {self.target:g} {self.unit}"

    def verdict(self) -> str:
        """meets / MISSES against the target, or nothing."""
        if self.target is None:
            return ""
        measured = self.value - (self.baseline_value or 0.0) if self.target_over_baseline else self.value
        ok = measured <= self.target if self.lower_is_better else measured >= self.target
        return "meets" if ok else "MISSES"


def _fmt(value: float, unit: str) -> str:
    """Counts (no unit) and large values without decimals, the rest with two."""
    return f"{value:,.0f}" if not unit or abs(value) >= 100 else f"{value:.2f}"


def print_section(title: str, rows: Sequence[Row]) -> None:
    """A titled table of rows, columns sized to their contents."""
    table = [("figure", "value", "baseline", "vs baseline", "target", "verdict")]
    for row in rows:
        base = (f"{row.baseline} {_fmt(row.baseline_value, row.unit)}" if row.baseline_value is not None
                else row.baseline)
        table.append((row.figure, f"{_fmt(row.value, row.unit)} {row.unit}".rstrip(), base, row.comparison(), row.target_text(),
                      row.verdict()))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    print(f"\n{title}")
    for n, line in enumerate(table):
        cells = [line[0].ljust(widths[0]), line[1].rjust(widths[1]), line[2].ljust(widths[2]),
                 line[3].rjust(widths[3]), line[4].ljust(widths[4]), line[5]]
        print("  " + "  ".join(cells).rstrip())
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def ms(samples_s: Sequence[float]) -> float:
    """Median of durations in seconds, in ms."""
    return statistics.median(samples_s) * 1000.0


def progress(message: str) -> None:
    """A line on stderr: where the run is (the report itself goes to stdout at the end)."""
    print(f"[perf {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def context_line() -> str:
    """What the figures were taken on: commit, CPUs, load average before the run."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], capture_output=True,
                           text=True, check=False).stdout.strip()
    load1, load5, _ = os.getloadavg()
    return (f"commit {commit}{' + uncommitted changes in src/' if dirty else ''}; {os.cpu_count()} CPUs; "
            f"load average {load1:.2f} / {load5:.2f} before the run; Python {platform.python_version()}; "
            f"temp dir {tempfile.gettempdir()}")


class OutOfTime(BaseException):
    """The run's time limit passed (a BaseException: no phase's error handling swallows it)."""


@dataclass
class Baselines:
    """The floors every figure is compared with, all measured in this run."""

    cold_s: list[float]
    cached_s: list[float]
    python_s: list[float]
    sqlite: dict[str, float]
    floor_load: dict[int, load.LoadResult]
    floor_get_s: list[float]


@dataclass
class Report:
    """The report's sections as they are measured, and what failed on the way."""

    sections: list[tuple[str, list[Row]]]
    failures: list[str]
    loads: dict[int, load.LoadResult]
    child_process_loads: dict[int, load.LoadResult]
    tmpfs_loads: dict[int, load.LoadResult]
    scaling: list[store_scaling.SizeResult]

    def attempt(self, what: str, measure: Callable[[], list[Row]]) -> list[Row]:
        """`measure()`'s rows, or none and a note when it fails (a broken command does not end the run)."""
        try:
            return measure()
        except (Exception, SystemExit) as exc:
            lines = str(exc).strip().splitlines() or [repr(exc)]
            self.failures.append(f"{what} failed: {lines[-1]}")
            progress(f"{what} failed:\n  " + "\n  ".join(lines[-6:]))
            return []


def measure_baselines(settings: Settings, wasm: bytes, body: bytes) -> Baselines:
    """Raw wasmtime, python -c pass, SQLite inserts, the HTTP floor under wrk and its GET latency."""
    cold, cached = wasm_overhead.measure_raw(wasm, settings.wasm_runs, settings.wasm_warmup)
    python = cli_roundtrip.timed_command([sys.executable, "-c", "pass"], dict(os.environ), settings.cli_runs,
                                         settings.cli_warmup)
    sqlite = store_floor.measure(settings.sqlite_s)
    floor_load: dict[int, load.LoadResult] = {}
    for n in settings.connections:
        with FloorServer() as floor:
            floor_load[n] = load.LoadResult(
                wrk=load.floor_load(floor, connections=n, duration_s=settings.load_s, body=body),
                log_findings=load.log_findings(floor.log_path))
    return Baselines(cold_s=cold, cached_s=cached, python_s=python, sqlite=sqlite, floor_load=floor_load,
                     floor_get_s=store_scaling.floor_get(settings.read_requests))


def baseline_rows(base: Baselines) -> list[Row]:
    """The floors themselves."""
    return [
        Row("raw wasmtime, cold (Engine + compile + run)", ms(base.cold_s), "ms"),
        Row("raw wasmtime, cached Module (instantiate + _start)", ms(base.cached_s), "ms"),
        Row("python -c pass", ms(base.python_s), "ms"),
        *(Row(f"SQLite insert, {label}", rate, "rows/s") for label, rate in base.sqlite.items()),
        *(Row(f"HTTP floor PUT, {n} connections: accepted", r.wrk.accepted_per_s, "/s")
          for n, r in base.floor_load.items()),
        *(Row(f"HTTP floor PUT, {n} connections: p99", r.wrk.latency_ms["99%"], "ms")
          for n, r in base.floor_load.items()),
        Row("HTTP floor GET, keep-alive httpx", ms(base.floor_get_s), "ms"),
    ]


def wasm_job_rows(node: HybridNode, settings: Settings, wasm: bytes, base: Baselines) -> list[Row]:
    """examples/hello.wat as a job: server side and client round trip, against cached raw wasmtime."""
    api, server_side = wasm_overhead.measure_api(node, wasm, settings.wasm_runs, settings.wasm_warmup, 0.0)
    cached_ms = ms(base.cached_s)
    return [
        Row("server side: CreateTime -> ModifyTime", ms(server_side), "ms", "cached wasmtime", cached_ms, diff=True,
            target=wasm_overhead.TARGET_SERVER_SIDE_MS, target_over_baseline=True),
        Row("client round trip: PUT -> sees Completed", ms(api), "ms", "cached wasmtime", cached_ms, diff=True,
            target=wasm_overhead.TARGET_ROUND_TRIP_MS, target_over_baseline=True),
    ]


def cli_row(node: HybridNode, settings: Settings, args: list[str], expect: str, base: Baselines) -> list[Row]:
    """One `bacalhau` command against `node`, whole processes, against `python -c pass`."""
    samples = cli_roundtrip.timed_command([str(bacalhau_bin()), *args], node.env, settings.cli_runs,
                                          settings.cli_warmup, expect)
    name = "bacalhau " + " ".join(Path(a).name if "/" in a else a for a in args)
    target = TARGET_WASM_RUN_MS if args[:2] == ["wasm", "run"] else TARGET_CLI_MS
    return [Row(name, ms(samples), "ms", "python -c pass", ms(base.python_s), diff=True, target=target)]


def load_rows(n: int, r: load.LoadResult, base: Baselines, at_target: bool, who: str = "") -> list[Row]:
    """One load run's figures against the HTTP floor at the same concurrency (completions: cached wasmtime);
    `who` prefixes the figures' names of a run on something other than the default hybrid node, which
    gets no completions target (the issue's are the default node's)."""
    floor = base.floor_load[n].wrk
    cached_ms = ms(base.cached_s)
    rows = [
        Row(f"{n} conns: accepted submissions", r.wrk.accepted_per_s, "/s", "HTTP floor", floor.accepted_per_s,
            target=load.TARGET_SUBMITS_PER_S if at_target else None, lower_is_better=False),
        Row(f"{n} conns: submit latency p50", r.wrk.latency_ms["50%"], "ms", "HTTP floor", floor.latency_ms["50%"]),
        Row(f"{n} conns: submit latency p99", r.wrk.latency_ms["99%"], "ms", "HTTP floor", floor.latency_ms["99%"],
            target=load.TARGET_P99_MS if at_target else None),
        Row(f"{n} conns: non-2xx answers", r.wrk.non_2xx, "", "HTTP floor", floor.non_2xx, diff=True, target=0),
        Row(f"{n} conns: socket errors (dropped connections)", r.wrk.socket_error_count, "", "HTTP floor",
            floor.socket_error_count, diff=True, target=0),
        Row(f"{n} conns: completions ({r.completed} of {r.created} jobs"
            f"{'' if r.all_terminal else ', wait timed out'}{f', {r.failed} failed' if r.failed else ''})",
            r.completions_per_s, "/s", "cached wasmtime runs", 1000.0 / cached_ms if cached_ms else 0.0,
            target=None if who else load.TARGET_COMPLETIONS_PER_S, lower_is_better=False),
    ]
    # Why the completions are what they are: the executions' own rate once submissions stop (no row when
    # every job had ended by then), and where the node's CPU goes (serve process and compute child; kernel
    # time is mostly the files each execution creates). Per created job: a wait that timed out leaves
    # some of their CPU uncounted.
    if r.drained:
        rows.append(Row(f"{n} conns: completions after wrk ended ({r.drained} jobs)", r.drained_per_s, "/s",
                        "cached wasmtime runs", 1000.0 / cached_ms if cached_ms else 0.0))
    partial = "" if r.all_terminal else " (wait timed out: a lower bound)"
    user_ms, kernel_ms = r.cpu_ms_per_job()
    rows += [Row(f"{n} conns: node CPU per job, user{partial}", user_ms, "ms"),
             Row(f"{n} conns: node CPU per job, kernel{partial}", kernel_ms, "ms")]
    for row in rows:
        row.figure = who + row.figure
    return rows


def scaling_rows(s: store_scaling.SizeResult, base: Baselines, scaling_load_s: float) -> list[Row]:
    """One store size's figures: reads against the floor's GET, submissions against the floor's PUT."""
    floor = base.floor_load[s.wrk.connections].wrk if s.wrk.connections in base.floor_load else None
    floor_ms = ms(base.floor_get_s)
    return [
        Row(f"{s.size:>9,} jobs: list --limit 10", ms(s.list_s), "ms", "floor GET", floor_ms,
            target=store_scaling.TARGET_LIST_MS),
        Row(f"{s.size:>9,} jobs: describe", ms(s.describe_s), "ms", "floor GET", floor_ms,
            target=store_scaling.TARGET_DESCRIBE_MS),
        Row(f"{s.size:>9,} jobs: submissions ({s.wrk.connections} conns, {scaling_load_s:g} s)",
            s.wrk.accepted_per_s, "/s", "HTTP floor" if floor else "", floor.accepted_per_s if floor else None,
            target=load.TARGET_SUBMITS_PER_S, lower_is_better=False),
        Row(f"{s.size:>9,} jobs: submit p99", s.wrk.latency_ms["99%"], "ms", "HTTP floor" if floor else "",
            floor.latency_ms["99%"] if floor else None, target=load.TARGET_P99_MS),
        Row(f"{s.size:>9,} jobs: store file (jobs.db*)", s.store_mb, "MB"),
        Row(f"{s.size:>9,} jobs: node RSS, idle after the reads", s.rss_mib, "MiB"),
        Row(f"{s.size:>9,} jobs: node RSS, after the submit run", s.rss_after_load_mib, "MiB", "idle", s.rss_mib,
            diff=True),
    ]


def run(settings: Settings) -> None:
    """Measure everything in `settings` and print the report."""
    started = time.monotonic()
    context = context_line()
    wasm, body = hello_module(), load.submit_body()
    report = Report(sections=[], failures=[], loads={}, child_process_loads={}, tmpfs_loads={}, scaling=[])

    progress("baselines: raw wasmtime, python -c pass, SQLite, HTTP floor")
    base = measure_baselines(settings, wasm, body)
    report.sections.append(("Baselines (medians; rates for the floors)", baseline_rows(base)))

    progress("wasm job and CLI on a hybrid node")
    with tempfile.TemporaryDirectory() as tmp, HybridNode() as node:
        rows = report.attempt("wasm job", lambda: wasm_job_rows(node, settings, wasm, base))
        report.sections.append((f"WASM job overhead ({settings.wasm_runs} runs)", rows))
        module, expect = cli_roundtrip.hello_wasm_file(Path(tmp))
        rows = []
        for args, wanted in ((["version", "--client"], ""), (["job", "list"], ""),
                             (["wasm", "run", str(module)], expect)):
            rows += report.attempt(f"bacalhau {args[0]} {args[1]}",
                                   lambda args=args, wanted=wanted: cli_row(node, settings, args, wanted, base))
        report.sections.append((f"CLI against a local node ({settings.cli_runs} runs, whole processes)", rows))

    rows = []
    for n in settings.connections:
        progress(f"load: wrk {settings.load_s:g} s at {n} connections, then waiting for the jobs to finish")

        def one_load(n: int = n) -> list[Row]:
            with HybridNode() as node:
                result = load.load_node(node, connections=n, duration_s=settings.load_s, body=body,
                                        completion_timeout_s=settings.completion_timeout_s)
            report.loads[n] = result
            return load_rows(n, result, base, at_target=n == max(settings.connections))

        rows += report.attempt(f"load at {n} connections", one_load)

    most = max(settings.connections)
    progress(f"load: the same at {most} connections on a hybrid node with its compute in a child process")

    def child_process_load() -> list[Row]:
        with HybridNode(extra_config=["Compute.SeparateProcess=true"]) as node:
            result = load.load_node(node, connections=most, duration_s=settings.load_s, body=body,
                                    completion_timeout_s=settings.completion_timeout_s)
        report.child_process_loads[most] = result
        # No targets: the default layout has them; this row shows what the child process changes.
        return load_rows(most, result, base, at_target=False, who="compute in a child process, ")

    rows += report.attempt(f"child-process load at {most} connections", child_process_load)

    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        progress(f"load: the same at {most} connections on a hybrid node whose data directory is in /dev/shm")

        def tmpfs_load() -> list[Row]:
            with HybridNode(tmp_root=shm) as node:
                result = load.load_node(node, connections=most, duration_s=settings.load_s, body=body,
                                        completion_timeout_s=settings.completion_timeout_s)
            report.tmpfs_loads[most] = result
            # No targets either: the same code as the default row, without the disk (files cost no kernel
            # time to speak of in memory), so the two rows side by side say what the disk costs.
            return load_rows(most, result, base, at_target=False, who="data directory in /dev/shm, ")

        rows += report.attempt(f"tmpfs load at {most} connections", tmpfs_load)
    report.sections.append(
        (f"Load: small WASM jobs PUT by wrk for {settings.load_s:g} s (a fresh node per concurrency)", rows))

    rows = []
    for size in settings.sizes:
        progress(f"store scaling: {size:,} jobs (fill, reads, {settings.scaling_load_s:g} s of wrk)")

        def one_size(size: int = size) -> list[Row]:
            result = store_scaling.measure_size(size, requests=settings.read_requests,
                                                connections=max(settings.connections),
                                                duration_s=settings.scaling_load_s, body=body)
            report.scaling.append(result)
            return scaling_rows(result, base, settings.scaling_load_s)

        rows += report.attempt(f"store scaling at {size:,} jobs", one_size)
    report.sections.append(
        (f"Store scaling (medians of {settings.read_requests} warm keep-alive requests)", rows))

    print(f"\nbench/perf.py report ({time.strftime('%Y-%m-%d %H:%M')}, {time.monotonic() - started:.0f} s)")
    print(f"  {context}")
    for title, section_rows in report.sections:
        if section_rows:
            print_section(title, section_rows)
    print_notes(base.floor_load, report)


def print_notes(floor_load: dict[int, load.LoadResult], report: Report) -> None:
    """What else the run saw: failures, socket errors by kind, the servers' log findings, fill times."""
    print("\nNotes")
    for failure in report.failures:
        print(f"  FAILED: {failure}")
    for name, results in (("HTTP floor", floor_load), ("node", report.loads),
                          ("node, compute in a child process", report.child_process_loads),
                          ("node, data directory in /dev/shm", report.tmpfs_loads)):
        for n, r in results.items():
            errors = {kind: count for kind, count in r.wrk.socket_errors.items() if count}
            if errors:
                print(f"  {name}, {n} connections: wrk socket errors {errors}")
            if not r.log_findings:
                print(f"  {name}, {n} connections: log clean (no WARNING/ERROR line, no traceback)")
            for finding, count in sorted(r.log_findings.items(), key=lambda kv: -kv[1])[:6]:
                print(f"  {name}, {n} connections, log: {count} x {finding}")
    for s in report.scaling:
        print(f"  store of {s.size:,} jobs filled in {s.fill_s:.0f} s (before the node started)")
        for finding, count in sorted(s.log_findings.items(), key=lambda kv: -kv[1])[:6]:
            print(f"  node with {s.size:,} jobs, log: {count} x {finding}")
    print("  wrk drops the connections still waiting when its duration ends: requests in flight then are in\n"
          "  neither count, and the node may log them as client disconnects; `completions` counts every job the\n"
          "  store gained, including theirs.")


def main(argv: list[str]) -> int:
    """Parse the options, arm the time limit, run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, shorter wrk, 10k jobs only")
    parser.add_argument("--sizes", help="comma-separated store sizes for the scaling table")
    parser.add_argument("--connections", help="comma-separated wrk concurrencies (default 50,200)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop (stopping every node) after this long (default 15 quick, 60 full)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.sizes:
        settings = dataclasses.replace(settings, sizes=tuple(int(s) for s in args.sizes.split(",") if s))
    if args.connections:
        settings = dataclasses.replace(settings, connections=tuple(int(n) for n in args.connections.split(",") if n))
    limit_s = (args.max_minutes or (15.0 if args.quick else 60.0)) * 60

    def out_of_time(signum: int, frame: FrameType | None) -> None:
        raise OutOfTime(f"bench/perf.py ran longer than {limit_s / 60:g} minutes (--max-minutes)")

    signal.signal(signal.SIGALRM, out_of_time)  # raised in the main thread: every `with` stops its node
    signal.alarm(int(limit_s))
    try:
        run(settings)
    finally:
        signal.alarm(0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
