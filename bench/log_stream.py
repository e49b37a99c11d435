"""What streaming a big job log costs the node: first-frame time, throughput and the node's memory.

    .venv/bin/python bench/log_stream.py --mib 100 1024 [--pause-s 5] [--rss-limit-mb 3000]

For each size, a wasm job (tests/wasm/src/bigout.c) writes exactly that many MiB of 64-byte lines to
stdout on a hybrid node started as a subprocess. Once it has completed, one client reads the whole log
over Bacalhau's websocket (`/api/v1/orchestrator/jobs/<id>/logs`) while a sampler thread reads the RSS of
`bacalhau serve` and of its children (the embedded nats-server) every 20 ms. Side by side, the baseline:
`cat` of the same stdout file into a pipe (time to first byte, total time). With `--pause-s`, the client
reads one frame, then nothing for that long (a slow client), then the rest.

The sampler kills the node if its RSS passes `--rss-limit-mb` (an unbounded stream would otherwise take
the machine down). No assertion: this is a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from hybrid_node import ROOT, HybridNode, inline_wasm_job
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

BIGOUT_C = ROOT / "tests" / "wasm" / "src" / "bigout.c"
SAMPLE_INTERVAL_S = 0.02
JOB_TIMEOUT_S = 300.0


def build_bigout(out_dir: Path) -> bytes:
    """Compile tests/wasm/src/bigout.c with the tests' own builder."""
    spec = importlib.util.spec_from_file_location("wasm_build", ROOT / "tests" / "wasm" / "build.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = builder
    spec.loader.exec_module(builder)
    built: dict[str, Path] = builder.build_modules(out_dir, [BIGOUT_C])
    return built["bigout"].read_bytes()


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


@dataclass
class RssSampler:
    """Samples RSS (MiB) of a process and of its children until stopped; kills them past a limit."""

    pid: int
    limit_mib: float
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # (t, serve MiB, children MiB)
    killed: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def now(self) -> tuple[float, float]:
        kids = sum(_rss_kib(c) for c in _children(self.pid))
        return _rss_kib(self.pid) / 1024, kids / 1024

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            serve, kids = self.now()
            self.samples.append((time.monotonic() - start, serve, kids))
            if serve + kids > self.limit_mib:
                self.killed = True
                for pid in [*_children(self.pid), self.pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                return

    def peak(self) -> tuple[float, float]:
        if not self.samples:
            return self.now()
        return max(s[1] for s in self.samples), max(s[2] for s in self.samples)


@dataclass
class StreamResult:
    first_frame_s: float
    total_s: float
    frames: int
    line_bytes: int
    error: str = ""


def stream_logs(url: str, job_id: str, *, pause_s: float, deadline_s: float) -> StreamResult:
    """Read the whole log over the websocket; with `pause_s`, stop reading that long after the first frame."""
    ws_url = url.replace("http://", "ws://") + f"/api/v1/orchestrator/jobs/{job_id}/logs"
    start = time.monotonic()
    first = 0.0
    frames = line_bytes = 0
    error = ""
    with connect(ws_url, max_size=None, open_timeout=10, close_timeout=5) as ws:
        try:
            while time.monotonic() - start < deadline_s:
                raw = ws.recv(timeout=deadline_s)
                if not first:
                    first = time.monotonic() - start
                    if pause_s:
                        time.sleep(pause_s)
                frame = json.loads(raw)
                if frame.get("error"):
                    error = json.dumps(frame["error"])[:300]
                    break
                frames += 1
                line_bytes += len(frame["value"]["Line"].encode())
        except ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code != 1000:
                error = f"connection closed: {exc}"
        except TimeoutError:
            error = "no frame before the deadline"
    return StreamResult(first, time.monotonic() - start, frames, line_bytes, error)


def cat_baseline(path: Path) -> tuple[float, float]:
    """(time to first byte, total time) of `cat path` read through a pipe."""
    start = time.monotonic()
    proc = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    first = 0.0
    while chunk := proc.stdout.read1(1 << 16):
        if not first and chunk:
            first = time.monotonic() - start
    proc.wait()
    return first, time.monotonic() - start


def run_job(http: httpx.Client, module: bytes, mib: int) -> str:
    job = inline_wasm_job(module)
    job["Tasks"][0]["Engine"]["Params"]["Parameters"] = [str(mib)]  # type: ignore[index]
    resp = http.put("/api/v1/orchestrator/jobs", json={"Job": job})
    resp.raise_for_status()
    job_id: str = resp.json()["JobID"]
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        state = http.get(f"/api/v1/orchestrator/jobs/{job_id}").json()["Job"]["State"]
        if state["StateType"] == "Completed":
            return job_id
        if state["StateType"] in ("Failed", "Stopped"):
            raise SystemExit(f"job {job_id} ended {state}")
        time.sleep(0.2)
    raise SystemExit(f"job {job_id} not completed after {JOB_TIMEOUT_S} s")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, nargs="+", default=[100], help="log sizes in MiB (default 100)")
    parser.add_argument("--pause-s", type=float, default=0.0, help="slow client: read nothing this long")
    parser.add_argument("--rss-limit-mb", type=float, default=3000.0, help="kill the node past this RSS")
    parser.add_argument("--deadline-s", type=float, default=600.0, help="give up streaming after this long")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        module = build_bigout(Path(tmp))
    rows = []
    with HybridNode() as node, httpx.Client(base_url=node.url, timeout=30.0) as http:
        for mib in args.mib:
            job_id = run_job(http, module, mib)
            stdout = next(p for p in node.data_dir.rglob("stdout") if p.stat().st_size == mib * 1024 * 1024)
            cat_first, cat_total = cat_baseline(stdout)
            sampler = RssSampler(node.pid, args.rss_limit_mb)
            before = sampler.now()
            sampler.start()
            try:
                result = stream_logs(node.url, job_id, pause_s=args.pause_s, deadline_s=args.deadline_s)
            except (OSError, ConnectionClosed) as exc:
                result = StreamResult(0.0, 0.0, 0, 0, f"{type(exc).__name__}: {exc}")
            finally:
                sampler.stop()
            peak = sampler.peak()
            rows.append((mib, before, peak, result, cat_first, cat_total, sampler.killed))
            if sampler.killed:
                break
    print(f"\nlog streaming over the websocket vs `cat` of the same file (pause {args.pause_s} s)")
    print(f"  {'MiB':>5} {'serve RSS MiB before/peak':>26} {'nats MiB before/peak':>21} {'first frame s':>13}"
          f" {'cat first s':>11} {'total s':>8} {'cat s':>6} {'MiB/s':>7} {'frames':>8} {'bytes ok':>8}")
    for mib, before, peak, r, cat_first, cat_total, killed in rows:
        ok = r.line_bytes == mib * 1024 * 1024
        rate = r.line_bytes / 1024 / 1024 / r.total_s if r.total_s else 0.0
        print(f"  {mib:>5} {before[0]:>12.0f}/{peak[0]:<13.0f} {before[1]:>10.0f}/{peak[1]:<10.0f}"
              f" {r.first_frame_s:>13.3f} {cat_first:>11.4f} {r.total_s:>8.2f} {cat_total:>6.2f} {rate:>7.1f}"
              f" {r.frames:>8} {ok!s:>8}" + ("  KILLED at RSS limit" if killed else "") + (f"  {r.error}" if r.error else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
